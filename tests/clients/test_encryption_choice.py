"""What a queue's or stream's encryption settings mean, as boto3 sees them: against a server
without a key (WEIR_ENCRYPTED=0) every request for encryption at rest is refused with a message
that names `--key-file`; against one with a key (WEIR_ENCRYPTED=1) it is accepted and reported
(and every queue and stream is sealed anyway, asked or not).

Run by tests/auth_clients.rs, once per kind of server, with WEIR_ENDPOINT.
"""

import os
import unittest
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["WEIR_ENDPOINT"]
ENCRYPTED = os.environ["WEIR_ENCRYPTED"] == "1"
REGION = "us-east-1"


def client(service):
    return boto3.client(
        service, endpoint_url=ENDPOINT, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class EncryptionChoice(unittest.TestCase):
    def refused(self, call, code):
        with self.assertRaises(ClientError) as caught:
            call()
        error = caught.exception.response["Error"]
        self.assertEqual(error["Code"], code)
        self.assertIn("--key-file", error["Message"])

    def test_queues(self):
        sqs = client("sqs")
        kms = {"KmsMasterKeyId": "alias/aws/sqs", "KmsDataKeyReusePeriodSeconds": "900"}
        for asked, reported in [(kms, ("KmsDataKeyReusePeriodSeconds", "900")),
                                ({"SqsManagedSseEnabled": "true"}, ("SqsManagedSseEnabled", "true"))]:
            name = unique("sse")
            if ENCRYPTED:
                url = sqs.create_queue(QueueName=name, Attributes=asked)["QueueUrl"]
                got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                self.assertEqual(got[reported[0]], reported[1])
            else:
                self.refused(lambda: sqs.create_queue(QueueName=name, Attributes=asked), "InvalidAttributeValue")
                url = sqs.create_queue(QueueName=name)["QueueUrl"]
                self.refused(lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes=asked), "InvalidAttributeValue")
                got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
                self.assertEqual(got["SqsManagedSseEnabled"], "false")
                self.assertNotIn("KmsMasterKeyId", got)
            # Turning encryption off is always accepted.
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"SqsManagedSseEnabled": "false"})

    def test_streams(self):
        k = client("kinesis")
        name = unique("sse")
        k.create_stream(StreamName=name, ShardCount=1)
        start = lambda: k.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
        if ENCRYPTED:
            start()
            summary = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            self.assertEqual((summary["EncryptionType"], summary["KeyId"]), ("KMS", "alias/aws/kinesis"))
            self.assertEqual(k.put_record(StreamName=name, PartitionKey="k", Data=b"x")["EncryptionType"], "KMS")
        else:
            self.refused(start, "InvalidArgumentException")
            self.assertEqual(k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["EncryptionType"], "NONE")
        k.stop_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
        self.assertEqual(k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["EncryptionType"], "NONE")


if __name__ == "__main__":
    unittest.main()
