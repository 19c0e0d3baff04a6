"""The SQS API of `weir serve` as real clients see it: boto3 and the aws CLI.

Run by tests/sqs_clients.rs, which starts `weir serve` and passes its endpoint in
WEIR_ENDPOINT; by hand: `WEIR_ENDPOINT=http://127.0.0.1:9324 target/client-venv/bin/python -m
unittest -v tests/clients/test_sqs.py`.
"""

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import threading
import time
import unittest
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("WEIR_ENDPOINT", "http://127.0.0.1:9324")
ACCOUNT = "000000000000"
REGION = "us-east-1"


def client():
    return boto3.client(
        "sqs",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def md5_of_attributes(attributes):
    """SQS's MD5OfMessageAttributes, written independently of the server."""
    out = b""
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        out += struct.pack(">I", len(name.encode())) + name.encode()
        out += struct.pack(">I", len(data_type.encode())) + data_type.encode()
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            out += b"\x02" + struct.pack(">I", len(raw)) + raw
        else:
            raw = value["StringValue"].encode()
            out += b"\x01" + struct.pack(">I", len(raw)) + raw
    return hashlib.md5(out).hexdigest()


def arn(name):
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


class Lifecycle(unittest.TestCase):
    def setUp(self):
        self.sqs = client()

    def test_create_send_receive_delete_and_attributes(self):
        name = unique("life")
        url = self.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40", "DelaySeconds": "0"})["QueueUrl"]
        self.assertTrue(url.endswith(f"/{ACCOUNT}/{name}"), url)
        self.assertEqual(self.sqs.get_queue_url(QueueName=name)["QueueUrl"], url)
        # The same attributes again return the same queue.
        self.assertEqual(self.sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"], url)
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["VisibilityTimeout"], "40")
        self.assertEqual(attrs["QueueArn"], arn(name))
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"ReceiveMessageWaitTimeSeconds": "1", "MessageRetentionPeriod": "3600"})
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ReceiveMessageWaitTimeSeconds", "MessageRetentionPeriod"])["Attributes"]
        self.assertEqual(attrs, {"ReceiveMessageWaitTimeSeconds": "1", "MessageRetentionPeriod": "3600"})

        message_attributes = {
            "text": {"DataType": "String", "StringValue": "héllo"},
            "count": {"DataType": "Number.int", "StringValue": "42"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        }
        sent = self.sqs.send_message(QueueUrl=url, MessageBody="body ✓", MessageAttributes=message_attributes)
        self.assertEqual(sent["MD5OfMessageBody"], hashlib.md5("body ✓".encode()).hexdigest())
        self.assertEqual(sent["MD5OfMessageAttributes"], md5_of_attributes(message_attributes))

        got = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"], WaitTimeSeconds=1)
        (m,) = got["Messages"]
        self.assertEqual(m["Body"], "body ✓")
        self.assertEqual(m["MessageId"], sent["MessageId"])
        self.assertEqual(m["MD5OfBody"], sent["MD5OfMessageBody"])
        self.assertEqual(m["MD5OfMessageAttributes"], md5_of_attributes(m["MessageAttributes"]))
        self.assertEqual(m["MessageAttributes"]["blob"]["BinaryValue"], b"\x00\x01\xff")
        self.assertEqual(m["MessageAttributes"]["text"]["StringValue"], "héllo")
        self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "1")
        self.assertEqual(m["Attributes"]["SenderId"], ACCOUNT)
        self.assertIn("SentTimestamp", m["Attributes"])

        # Hidden while in flight; a visibility change to 0 brings it back with a new handle.
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0))
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        again = self.sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"][0]
        self.assertEqual(again["Attributes"]["ApproximateReceiveCount"], "2")
        with self.assertRaises(ClientError) as stale:
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=5)
        self.assertEqual(stale.exception.response["Error"]["Code"], "ReceiptHandleIsInvalid")
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
        self.assertEqual(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"],
                         {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"})

        self.sqs.delete_queue(QueueUrl=url)
        with self.assertRaises(self.sqs.exceptions.QueueDoesNotExist):
            self.sqs.get_queue_url(QueueName=name)

    def test_batches_purge_and_listing(self):
        prefix = unique("batch")
        urls = [self.sqs.create_queue(QueueName=f"{prefix}-{i}")["QueueUrl"] for i in range(3)]
        url = urls[0]
        entries = [{"Id": f"m{i}", "MessageBody": f"message {i}"} for i in range(10)]
        sent = self.sqs.send_message_batch(QueueUrl=url, Entries=entries)
        self.assertEqual(len(sent["Successful"]), 10)
        self.assertEqual(sent.get("Failed", []), [])
        received = []
        while len(received) < 10:
            got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            received += got.get("Messages", [])
        self.assertEqual(sorted(m["Body"] for m in received), sorted(e["MessageBody"] for e in entries))
        changed = self.sqs.change_message_visibility_batch(
            QueueUrl=url, Entries=[{"Id": f"c{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 60} for i, m in enumerate(received[:5])])
        self.assertEqual(len(changed["Successful"]), 5)
        deleted = self.sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received[:9])] + [{"Id": "bad", "ReceiptHandle": "forged"}])
        self.assertEqual(len(deleted["Successful"]), 9)
        self.assertEqual([(f["Id"], f["Code"], f["SenderFault"]) for f in deleted["Failed"]], [("bad", "ReceiptHandleIsInvalid", True)])
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=received[9]["ReceiptHandle"])

        self.sqs.send_message(QueueUrl=url, MessageBody="to purge")
        self.sqs.purge_queue(QueueUrl=url)
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))

        listed = self.sqs.list_queues(QueueNamePrefix=prefix)["QueueUrls"]
        self.assertEqual(sorted(listed), sorted(urls))
        pages = self.sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix, PaginationConfig={"PageSize": 2})
        paged = [u for page in pages for u in page.get("QueueUrls", [])]
        self.assertEqual(sorted(paged), sorted(urls))

    def test_long_poll_is_woken_by_a_send_from_another_connection(self):
        url = self.sqs.create_queue(QueueName=unique("poll"))["QueueUrl"]
        result = {}

        def poll():
            started = time.monotonic()
            result["got"] = client().receive_message(QueueUrl=url, WaitTimeSeconds=20)
            result["waited"] = time.monotonic() - started

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.5)
        self.sqs.send_message(QueueUrl=url, MessageBody="wake up")
        poller.join(25)
        self.assertEqual(result["got"]["Messages"][0]["Body"], "wake up")
        self.assertLess(result["waited"], 5)

    def test_long_poll_is_woken_when_a_visibility_timeout_runs_out(self):
        url = self.sqs.create_queue(QueueName=unique("vis"))["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody="comes back")
        self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=1)
        started = time.monotonic()
        got = client().receive_message(QueueUrl=url, WaitTimeSeconds=10)
        self.assertEqual(got["Messages"][0]["Body"], "comes back")
        self.assertLess(time.monotonic() - started, 4)


class Fifo(unittest.TestCase):
    def setUp(self):
        self.sqs = client()

    def test_order_groups_and_deduplication(self):
        url = self.sqs.create_queue(QueueName=unique("order") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        first = self.sqs.send_message(QueueUrl=url, MessageBody="a1", MessageGroupId="a", MessageDeduplicationId="d1")
        dup = self.sqs.send_message(QueueUrl=url, MessageBody="a1 again", MessageGroupId="a", MessageDeduplicationId="d1")
        self.assertEqual(dup["MessageId"], first["MessageId"])
        second = self.sqs.send_message(QueueUrl=url, MessageBody="a2", MessageGroupId="a", MessageDeduplicationId="d2")
        self.assertGreater(int(second["SequenceNumber"]), int(first["SequenceNumber"]))
        self.sqs.send_message(QueueUrl=url, MessageBody="b1", MessageGroupId="b", MessageDeduplicationId="d3")
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        bodies = [m["Body"] for m in got]
        self.assertLess(bodies.index("a1"), bodies.index("a2"))
        self.assertNotIn("a1 again", bodies)
        for m in got:
            self.assertIn(m["Attributes"]["MessageGroupId"], ("a", "b"))
            self.assertIn("SequenceNumber", m["Attributes"])
        # Nothing more while the groups are in flight.
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))
        with self.assertRaises(ClientError) as e:
            self.sqs.send_message(QueueUrl=url, MessageBody="no group", MessageDeduplicationId="x")
        self.assertEqual(e.exception.response["Error"]["Code"], "MissingParameter")

    def test_content_based_deduplication_and_group_blocking(self):
        url = self.sqs.create_queue(QueueName=unique("cbd") + ".fifo",
                                    Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        a = self.sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
        b = self.sqs.send_message(QueueUrl=url, MessageBody="same", MessageGroupId="g")
        self.assertEqual(a["MessageId"], b["MessageId"])
        self.sqs.send_message(QueueUrl=url, MessageBody="next", MessageGroupId="g")
        (m,) = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
        self.assertEqual(m["Body"], "same")
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url), "the group waits for its first message")
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        self.assertEqual(self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2)["Messages"][0]["Body"], "next")
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["FifoQueue", "ContentBasedDeduplication"])["Attributes"]
        self.assertEqual(attrs, {"FifoQueue": "true", "ContentBasedDeduplication": "true"})


class DeadLetters(unittest.TestCase):
    def setUp(self):
        self.sqs = client()

    def test_dead_letters_and_redrive_through_a_move_task(self):
        dlq_name = unique("dlq")
        dlq = self.sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
        src_name = unique("src")
        src = self.sqs.create_queue(QueueName=src_name)["QueueUrl"]
        policy = json.dumps({"deadLetterTargetArn": arn(dlq_name), "maxReceiveCount": "2"})
        self.sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": policy})
        redrive = json.loads(self.sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
        self.assertEqual(redrive, {"deadLetterTargetArn": arn(dlq_name), "maxReceiveCount": 2})
        self.assertEqual(self.sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"], [src])

        self.sqs.send_message(QueueUrl=src, MessageBody="poison")
        for _ in range(2):
            (m,) = self.sqs.receive_message(QueueUrl=src)["Messages"]
            self.sqs.change_message_visibility(QueueUrl=src, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=src))
        dead = self.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"][0]
        self.assertEqual(dead["Body"], "poison")
        self.sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=dead["ReceiptHandle"], VisibilityTimeout=0)

        with self.assertRaises(ClientError) as e:
            self.sqs.start_message_move_task(SourceArn=arn(src_name))
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")
        task = self.sqs.start_message_move_task(SourceArn=arn(dlq_name), MaxNumberOfMessagesPerSecond=10)
        self.assertTrue(task["TaskHandle"])
        self.assertIsInstance(self.sqs.list_message_move_tasks(SourceArn=arn(dlq_name))["Results"], list)
        back = self.sqs.receive_message(QueueUrl=src, WaitTimeSeconds=5)["Messages"][0]
        self.assertEqual(back["Body"], "poison")


class Errors(unittest.TestCase):
    def setUp(self):
        self.sqs = client()

    def code(self, call, **kwargs):
        with self.assertRaises(ClientError) as e:
            call(**kwargs)
        return e.exception.response["Error"]["Code"]

    def test_errors_as_the_sdk_raises_them(self):
        with self.assertRaises(self.sqs.exceptions.QueueDoesNotExist):
            self.sqs.get_queue_url(QueueName=unique("missing"))
        with self.assertRaises(self.sqs.exceptions.QueueDoesNotExist):
            self.sqs.send_message(QueueUrl=f"{ENDPOINT}/{ACCOUNT}/{unique('missing')}", MessageBody="x")
        name = unique("exists")
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        with self.assertRaises(self.sqs.exceptions.QueueNameExists):
            self.sqs.create_queue(QueueName=name, Attributes={"DelaySeconds": "5"})
        with self.assertRaises(self.sqs.exceptions.BatchEntryIdsNotDistinct):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}])
        with self.assertRaises(self.sqs.exceptions.EmptyBatchRequest):
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[])
        with self.assertRaises(self.sqs.exceptions.TooManyEntriesInBatchRequest):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"e{i}", "MessageBody": "x"} for i in range(11)])
        with self.assertRaises(self.sqs.exceptions.InvalidBatchEntryId):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "not valid!", "MessageBody": "x"}])
        with self.assertRaises(self.sqs.exceptions.InvalidAttributeName):
            self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NotAnAttribute"])
        with self.assertRaises(self.sqs.exceptions.ReceiptHandleIsInvalid):
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle="forged")
        with self.assertRaises(self.sqs.exceptions.InvalidMessageContents):
            self.sqs.send_message(QueueUrl=url, MessageBody="bad \x01 control")
        with self.assertRaises(self.sqs.exceptions.BatchRequestTooLong):
            self.sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": f"e{i}", "MessageBody": "x" * 110_000} for i in range(10)])
        self.assertEqual(self.code(self.sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11), "InvalidParameterValue")
        self.assertEqual(self.code(self.sqs.create_queue, QueueName=unique("q"), Attributes={"VisibilityTimeout": "43201"}), "InvalidAttributeValue")
        self.assertEqual(self.code(self.sqs.create_queue, QueueName="bad name"), "InvalidParameterValue")
        with self.assertRaises(self.sqs.exceptions.ResourceNotFoundException):
            self.sqs.cancel_message_move_task(TaskHandle="nope")

    def test_tags_and_permissions(self):
        url = self.sqs.create_queue(QueueName=unique("tags"))["QueueUrl"]
        try:
            self.sqs.tag_queue(QueueUrl=url, Tags={"team": "storage"})
        except self.sqs.exceptions.UnsupportedOperation:
            self.skipTest("the engine does not keep tags yet (waiting on the sqs-engine work)")
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"team": "storage"})
        self.sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
        self.assertNotIn("Tags", self.sqs.list_queue_tags(QueueUrl=url))
        self.sqs.add_permission(QueueUrl=url, Label="l1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
        policy = json.loads(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
        self.assertEqual([s["Sid"] for s in policy["Statement"]], ["l1"])
        self.sqs.remove_permission(QueueUrl=url, Label="l1")

    def test_untagging_and_listing_tags_of_an_untagged_queue(self):
        url = self.sqs.create_queue(QueueName=unique("untagged"))["QueueUrl"]
        self.assertNotIn("Tags", self.sqs.list_queue_tags(QueueUrl=url))
        self.sqs.untag_queue(QueueUrl=url, TagKeys=["nothing"])
        self.assertEqual(self.code(self.sqs.remove_permission, QueueUrl=url, Label="nope"), "InvalidParameterValue")


class AwsCli(unittest.TestCase):
    def aws(self, *args, check=True):
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION,
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")
        aws = os.path.join(os.path.dirname(sys.executable), "aws")
        done = subprocess.run([aws, "sqs", *args, "--endpoint-url", ENDPOINT, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=60)
        if check:
            self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def test_the_aws_cli_drives_a_queue(self):
        name = unique("cli")
        url = json.loads(self.aws("create-queue", "--queue-name", name).stdout)["QueueUrl"]
        sent = json.loads(self.aws("send-message", "--queue-url", url, "--message-body", "from the cli",
                                   "--message-attributes", '{"k":{"DataType":"String","StringValue":"v"}}').stdout)
        self.assertIn("MessageId", sent)
        got = json.loads(self.aws("receive-message", "--queue-url", url, "--message-attribute-names", "All",
                                  "--wait-time-seconds", "1").stdout)
        (m,) = got["Messages"]
        self.assertEqual(m["Body"], "from the cli")
        self.aws("delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
        listed = json.loads(self.aws("list-queues", "--queue-name-prefix", name).stdout)
        self.assertEqual(listed["QueueUrls"], [url])
        missing = self.aws("get-queue-url", "--queue-name", unique("missing"), check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("NonExistentQueue", missing.stderr)
        self.aws("delete-queue", "--queue-url", url)


if __name__ == "__main__":
    unittest.main()
