"""Kinesis and Firehose under `weir serve --auth FILE`, as boto3 sees them: keys of the owning
account with and without identity policies, another account's key with and without a stream
policy (PutResourcePolicy), an explicit Deny, and SubscribeToShard's event stream path.

Run by tests/auth_clients.rs, which writes the credentials file, starts `weir serve` and passes
WEIR_ENDPOINT.
"""

import json
import os
import unittest
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["WEIR_ENDPOINT"]
REGION = "us-east-1"
OWNER = "111122223333"
OTHER = "444455556666"
ROLE = f"arn:aws:iam::{OWNER}:role/firehose"

ADMIN = ("AKIAADMIN00000001", "admin-secret")
# Owning account, identity policy: may put and describe streams, and Firehose PutRecord*.
WRITER = ("AKIAWRITER0000001", "writer-secret")
# Owning account, everything but an explicit Deny of kinesis:DeleteStream and firehose:Delete*.
KEEPER = ("AKIAKEEPER0000001", "keeper-secret")
BOB = ("AKIABOB0000000001", "bob-secret")


def client(service, key):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return None


DENIED = "AccessDeniedException"


class KinesisAuthorization(unittest.TestCase):
    def setUp(self):
        self.admin = client("kinesis", ADMIN)
        self.name = unique("authz")
        self.admin.create_stream(StreamName=self.name, ShardCount=1)
        self.arn = self.admin.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"]["StreamARN"]
        self.assertEqual(self.arn, f"arn:aws:kinesis:{REGION}:{OWNER}:stream/{self.name}")

    def test_an_identity_policy_limits_a_key_of_the_owning_account(self):
        writer = client("kinesis", WRITER)
        writer.put_record(StreamName=self.name, Data=b"w", PartitionKey="k")
        writer.put_records(StreamARN=self.arn, Records=[{"Data": b"x", "PartitionKey": "k"}])
        writer.describe_stream_summary(StreamName=self.name)
        self.assertEqual(error_code(lambda: writer.list_shards(StreamName=self.name)), DENIED)
        self.assertEqual(error_code(lambda: writer.delete_stream(StreamName=self.name)), DENIED)
        self.assertEqual(error_code(lambda: writer.list_streams()), DENIED)
        # The policy names this stream's ARN pattern only.
        other = unique("elsewhere")
        self.admin.create_stream(StreamName=other, ShardCount=1)
        self.assertEqual(error_code(lambda: writer.put_record(StreamName=other, Data=b"w", PartitionKey="k")), DENIED)
        # GetRecords is authorized on its iterator's stream: the admin may read, the writer not.
        shard = self.admin.list_shards(StreamName=self.name)["Shards"][0]["ShardId"]
        iterator = self.admin.get_shard_iterator(StreamName=self.name, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        self.assertEqual(error_code(lambda: writer.get_records(ShardIterator=iterator)), DENIED)
        records = self.admin.get_records(ShardIterator=iterator)["Records"]
        self.assertEqual([r["Data"] for r in records], [b"w", b"x"])

    def test_an_explicit_deny_wins(self):
        keeper = client("kinesis", KEEPER)
        keeper.put_record(StreamName=self.name, Data=b"k", PartitionKey="k")
        self.assertEqual(error_code(lambda: keeper.delete_stream(StreamName=self.name)), DENIED)
        # A stream policy that allows it does not lift the identity's Deny.
        self.admin.put_resource_policy(ResourceARN=self.arn, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OWNER}:user/keeper"},
            "Action": "kinesis:DeleteStream", "Resource": self.arn}]}))
        self.assertEqual(error_code(lambda: keeper.delete_stream(StreamName=self.name)), DENIED)
        # A Deny in the stream's policy stops even the account's root key.
        self.admin.put_resource_policy(ResourceARN=self.arn, Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": "*", "Action": "kinesis:PutRecord", "Resource": self.arn}]}))
        self.assertEqual(error_code(lambda: self.admin.put_record(StreamName=self.name, Data=b"a", PartitionKey="k")), DENIED)
        self.admin.delete_resource_policy(ResourceARN=self.arn)
        self.admin.put_record(StreamName=self.name, Data=b"a", PartitionKey="k")

    def test_another_account_needs_the_stream_policy(self):
        bob = client("kinesis", BOB)
        self.assertEqual(error_code(lambda: bob.put_record(StreamARN=self.arn, Data=b"b", PartitionKey="k")), DENIED)
        self.assertEqual(error_code(lambda: bob.describe_stream_summary(StreamARN=self.arn)), DENIED)
        self.assertEqual(self.admin.get_resource_policy(ResourceARN=self.arn)["Policy"], "{}")
        policy = {"Version": "2012-10-17", "Statement": [{
            "Sid": "bob-writes", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
            "Action": ["kinesis:PutRecord", "kinesis:DescribeStreamSummary"], "Resource": self.arn}]}
        self.admin.put_resource_policy(ResourceARN=self.arn, Policy=json.dumps(policy))
        self.assertEqual(json.loads(self.admin.get_resource_policy(ResourceARN=self.arn)["Policy"]), policy)
        bob.put_record(StreamARN=self.arn, Data=b"b", PartitionKey="k")
        bob.describe_stream_summary(StreamARN=self.arn)
        self.assertEqual(error_code(lambda: bob.list_shards(StreamARN=self.arn)), DENIED)
        self.assertEqual(error_code(lambda: bob.put_resource_policy(ResourceARN=self.arn, Policy=json.dumps(policy))), DENIED)
        self.assertEqual(error_code(lambda: bob.get_resource_policy(ResourceARN=self.arn)), DENIED)
        self.admin.delete_resource_policy(ResourceARN=self.arn)
        self.assertEqual(error_code(lambda: bob.put_record(StreamARN=self.arn, Data=b"b", PartitionKey="k")), DENIED)
        self.assertEqual(error_code(lambda: self.admin.delete_resource_policy(ResourceARN=self.arn)), "ResourceNotFoundException")

    def test_a_policy_is_checked_when_set(self):
        for bad in ["not json", json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "kinesis:*", "Resource": "*"}]})]:
            self.assertEqual(error_code(lambda: self.admin.put_resource_policy(ResourceARN=self.arn, Policy=bad)), "InvalidArgumentException")
        self.assertEqual(self.admin.get_resource_policy(ResourceARN=self.arn)["Policy"], "{}")

    def test_consumers_and_subscribe_to_shard_are_authorized(self):
        bob = client("kinesis", BOB)
        consumer = self.admin.register_stream_consumer(StreamARN=self.arn, ConsumerName="reader")["Consumer"]["ConsumerARN"]
        self.assertEqual(error_code(lambda: bob.describe_stream_consumer(ConsumerARN=consumer)), DENIED)
        start = {"Type": "TRIM_HORIZON"}
        self.assertEqual(error_code(lambda: bob.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition=start)), DENIED)
        # The owner passes authorization (the consumer may still be CREATING: not a denial).
        self.assertNotEqual(error_code(lambda: self.admin.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition=start)), DENIED)
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": OTHER},
            "Action": ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"], "Resource": f"{self.arn}/consumer/*"}]}
        self.admin.put_resource_policy(ResourceARN=self.arn, Policy=json.dumps(policy))
        self.assertEqual(bob.describe_stream_consumer(ConsumerARN=consumer)["ConsumerDescription"]["ConsumerName"], "reader")
        self.assertNotEqual(error_code(lambda: bob.subscribe_to_shard(ConsumerARN=consumer, ShardId="shardId-000000000000", StartingPosition=start)), DENIED)
        self.assertEqual(error_code(lambda: self.admin.put_resource_policy(ResourceARN=consumer, Policy=json.dumps(policy))), "InvalidArgumentException")


class FirehoseAuthorization(unittest.TestCase):
    def setUp(self):
        self.admin = client("firehose", ADMIN)
        self.name = unique("authz")
        self.admin.create_delivery_stream(
            DeliveryStreamName=self.name, DeliveryStreamType="DirectPut",
            S3DestinationConfiguration=dict(RoleARN=ROLE, BucketARN="arn:aws:s3:::authz"))

    def test_identity_policies_decide_and_other_accounts_are_refused(self):
        writer, keeper, bob = client("firehose", WRITER), client("firehose", KEEPER), client("firehose", BOB)
        writer.put_record(DeliveryStreamName=self.name, Record={"Data": b"w\n"})
        writer.put_record_batch(DeliveryStreamName=self.name, Records=[{"Data": b"x\n"}])
        self.assertEqual(error_code(lambda: writer.describe_delivery_stream(DeliveryStreamName=self.name)), DENIED)
        self.assertEqual(error_code(lambda: writer.list_delivery_streams()), DENIED)
        keeper.describe_delivery_stream(DeliveryStreamName=self.name)
        self.assertEqual(error_code(lambda: keeper.delete_delivery_stream(DeliveryStreamName=self.name)), DENIED)
        # Firehose has no resource policies: another account's key is refused everywhere.
        self.assertEqual(error_code(lambda: bob.put_record(DeliveryStreamName=self.name, Record={"Data": b"b"})), DENIED)
        self.assertEqual(error_code(lambda: bob.list_delivery_streams()), DENIED)
        self.assertIn(self.name, self.admin.list_delivery_streams()["DeliveryStreamNames"])
        self.admin.delete_delivery_stream(DeliveryStreamName=self.name)


if __name__ == "__main__":
    unittest.main()
