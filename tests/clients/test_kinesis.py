"""The Kinesis API of `weir serve` as real clients see it: boto3 and the aws CLI.

Run by tests/kinesis_clients.rs, which starts two servers: WEIR_ENDPOINT (provisioned streams
enforce Kinesis's throughput limits) and WEIR_SHORT_ITERATOR_ENDPOINT (shard iterators last
1.5 seconds, so that expiry is tested without waiting five minutes). By hand:
`WEIR_ENDPOINT=... WEIR_SHORT_ITERATOR_ENDPOINT=... target/client-venv/bin/python -m unittest -v
tests/clients/test_kinesis.py`.
"""

import base64
import json
import os
import subprocess
import sys
import time
import unittest
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("WEIR_ENDPOINT", "http://127.0.0.1:9324")
SHORT_ENDPOINT = os.environ.get("WEIR_SHORT_ITERATOR_ENDPOINT", ENDPOINT)
ACCOUNT = "000000000000"
REGION = "us-east-1"
DEADLINE = 30


def client(endpoint=ENDPOINT):
    return boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # One attempt: the tests look at the errors themselves, retries would hide them.
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def aws(*args, endpoint=ENDPOINT):
    """Runs the aws CLI of the venv; returns its parsed JSON output (or None)."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION)
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run([cli, "--endpoint-url", endpoint, *args], env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed: {out.stderr}")
    return json.loads(out.stdout) if out.stdout.strip() else None


def read_all(k, stream, shard_id, iterator_type="TRIM_HORIZON"):
    """Every record of a shard from the trim horizon to its end (closed) or tip (open):
    (records, child shards or None)."""
    it = k.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType=iterator_type)["ShardIterator"]
    records = []
    while True:
        out = k.get_records(ShardIterator=it)
        records.extend(out["Records"])
        if "NextShardIterator" not in out or out["NextShardIterator"] is None:
            return records, out.get("ChildShards", [])
        if not out["Records"] and out["MillisBehindLatest"] == 0:
            return records, None
        it = out["NextShardIterator"]


class Cli(unittest.TestCase):
    def test_the_commands_of_the_tutorials_work_as_people_copy_them(self):
        name = unique("Demo")
        aws("kinesis", "create-stream", "--stream-name", name, "--shard-count", "1")
        put = aws("kinesis", "put-record", "--stream-name", name, "--partition-key", "user1", "--data", "user signup")
        self.assertEqual(put["ShardId"], "shardId-000000000000")
        it = aws(
            "kinesis", "get-shard-iterator", "--stream-name", name, "--shard-id", "shardId-000000000000",
            "--shard-iterator-type", "TRIM_HORIZON",
        )["ShardIterator"]
        got = aws("kinesis", "get-records", "--shard-iterator", it)
        self.assertEqual(len(got["Records"]), 1)
        record = got["Records"][0]
        # awscli v1 sends a blob argument's text as is (base64-encoded on the wire), and prints
        # blobs as base64.
        self.assertEqual(base64.b64decode(record["Data"]), b"user signup")
        self.assertEqual(record["PartitionKey"], "user1")
        self.assertEqual(record["SequenceNumber"], put["SequenceNumber"])
        self.assertIn("NextShardIterator", got)
        described = aws("kinesis", "describe-stream", "--stream-name", name)["StreamDescription"]
        self.assertEqual(described["StreamARN"], f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}")
        self.assertEqual(described["StreamStatus"], "ACTIVE")
        listed = aws("kinesis", "list-streams")["StreamNames"]
        self.assertIn(name, listed)
        aws("kinesis", "delete-stream", "--stream-name", name)
        self.assertNotIn(name, aws("kinesis", "list-streams")["StreamNames"])

    def test_put_records_takes_a_batch_from_the_cli_and_answers_each_record(self):
        # PutRecords' JSON body is read typed on the server: the CLI's own encoding of it.
        name = unique("Batch")
        aws("kinesis", "create-stream", "--stream-name", name, "--shard-count", "2")
        records = json.dumps([{"PartitionKey": f"user{i}", "Data": f"event {i}"} for i in range(20)])
        out = aws("kinesis", "put-records", "--stream-name", name, "--records", records)
        self.assertEqual(out["FailedRecordCount"], 0)
        self.assertEqual(len(out["Records"]), 20)
        self.assertLessEqual({r["ShardId"] for r in out["Records"]}, {"shardId-000000000000", "shardId-000000000001"})
        self.assertTrue(all(r["SequenceNumber"].isdigit() for r in out["Records"]))
        self.assertEqual(out["EncryptionType"], "NONE")


class PutRecordsErrors(unittest.TestCase):
    """PutRecords' errors as Kinesis sends them, through the typed reading of its body."""

    def test_a_batch_with_a_bad_record_or_no_stream_is_refused_as_kinesis_refuses_it(self):
        k = client()
        name = unique("errors")
        k.create_stream(StreamName=name, ShardCount=1)
        with self.assertRaises(ClientError) as refused:
            k.put_records(StreamName=name, Records=[{"PartitionKey": "k" * 257, "Data": b"x"}])
        self.assertEqual(refused.exception.response["Error"]["Code"], "ValidationException")
        self.assertEqual(refused.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        with self.assertRaises(k.exceptions.ResourceNotFoundException):
            k.put_records(StreamName=unique("missing"), Records=[{"PartitionKey": "k", "Data": b"x"}])
        out = k.put_records(StreamName=name, Records=[{"PartitionKey": "k", "Data": b"\x00\xff"}])
        self.assertEqual(out["FailedRecordCount"], 0)
        it = k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")
        got = k.get_records(ShardIterator=it["ShardIterator"])["Records"]
        self.assertEqual([r["Data"] for r in got], [b"\x00\xff"])


class Streams(unittest.TestCase):
    def setUp(self):
        self.k = client()

    def test_split_and_merge_are_read_through_child_shards_in_order(self):
        name = unique("lineage")
        self.k.create_stream(StreamName=name, ShardCount=1)
        expected = []

        def put(tag, n=6):
            for i in range(n):
                data = f"{tag}-{i}".encode()
                self.k.put_record(StreamName=name, PartitionKey=f"key-{i}", Data=data)
                expected.append(data)

        put("before-split")
        self.k.split_shard(StreamName=name, ShardToSplit="shardId-000000000000", NewStartingHashKey=str(2**127))
        put("after-split")
        shards = self.k.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
        self.assertEqual([s["ShardId"] for s in shards], ["shardId-000000000001", "shardId-000000000002"])
        self.assertEqual(shards[0]["ParentShardId"], "shardId-000000000000")
        self.k.merge_shards(StreamName=name, ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000002")
        put("after-merge")
        merged = self.k.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
        self.assertEqual(merged[0]["ShardId"], "shardId-000000000003")
        self.assertEqual(merged[0]["AdjacentParentShardId"], "shardId-000000000002")
        every = self.k.list_shards(StreamName=name)["Shards"]
        self.assertEqual(len(every), 4)
        self.assertIn("EndingSequenceNumber", every[0]["SequenceNumberRange"])

        # Read the lineage as a consumer does: a shard's parents before it, children from
        # ChildShards at a closed shard's end.
        done, got, queue = set(), [], ["shardId-000000000000"]
        parents = {s["ShardId"]: [p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p] for s in every}
        while queue:
            shard = queue.pop(0)
            if shard in done or any(p not in done for p in parents[shard]):
                if shard not in done:
                    queue.append(shard)
                continue
            records, children = read_all(self.k, name, shard)
            got.extend(r["Data"] for r in records)
            for a, b in zip(records, records[1:]):
                self.assertLess(int(a["SequenceNumber"]), int(b["SequenceNumber"]), "numbers sort as numbers")
            done.add(shard)
            if shard != "shardId-000000000003":
                self.assertTrue(children, f"{shard} is closed: its end names its children")
                queue.extend(c["ShardId"] for c in children)
        self.assertEqual(sorted(got), sorted(expected))
        # One key's records, read along the lineage, keep their order.
        for i in range(6):
            mine = [d for d in got if d.endswith(f"-{i}".encode())]
            self.assertEqual(mine, [f"{t}-{i}".encode() for t in ("before-split", "after-split", "after-merge")])

    def test_update_shard_count_retention_encryption_tags_and_mode(self):
        name = unique("admin")
        self.k.create_stream(StreamName=name, ShardCount=2)
        out = self.k.update_shard_count(StreamName=name, TargetShardCount=4, ScalingType="UNIFORM_SCALING")
        self.assertEqual((out["CurrentShardCount"], out["TargetShardCount"]), (2, 4))
        summary = self.k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(summary["OpenShardCount"], 4)
        self.k.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
        with self.assertRaises(self.k.exceptions.InvalidArgumentException):
            self.k.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=24)
        self.k.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=36)
        # This server has no key (no --key-file): encryption at rest is refused, not pretended.
        with self.assertRaises(self.k.exceptions.InvalidArgumentException) as caught:
            self.k.start_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
        self.assertIn("--key-file", caught.exception.response["Error"]["Message"])
        summary = self.k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual((summary["RetentionPeriodHours"], summary["EncryptionType"]), (36, "NONE"))
        put = self.k.put_record(StreamName=name, PartitionKey="k", Data=b"x")
        self.assertEqual(put.get("EncryptionType", "NONE"), "NONE")
        self.k.stop_stream_encryption(StreamName=name, EncryptionType="KMS", KeyId="alias/aws/kinesis")
        self.assertEqual(self.k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["EncryptionType"], "NONE")
        self.k.add_tags_to_stream(StreamName=name, Tags={"team": "data", "env": "dev"})
        self.k.remove_tags_from_stream(StreamName=name, TagKeys=["env"])
        tags = self.k.list_tags_for_stream(StreamName=name)
        self.assertEqual(tags["Tags"], [{"Key": "team", "Value": "data"}])
        self.assertFalse(tags["HasMoreTags"])
        arn = summary["StreamARN"]
        self.k.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        self.assertEqual(self.k.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"], "ON_DEMAND")

    def test_errors_are_raised_as_the_sdk_names_them(self):
        k = self.k
        with self.assertRaises(k.exceptions.ResourceNotFoundException):
            k.describe_stream(StreamName=unique("missing"))
        name = unique("errors")
        k.create_stream(StreamName=name, ShardCount=1)
        with self.assertRaises(k.exceptions.ResourceInUseException):
            k.create_stream(StreamName=name, ShardCount=1)
        with self.assertRaises(k.exceptions.InvalidArgumentException):
            k.get_records(ShardIterator="0123456789abcdef" * 4)
        with self.assertRaises(k.exceptions.ResourceNotFoundException):
            k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000009", ShardIteratorType="LATEST")
        with self.assertRaises(k.exceptions.InvalidArgumentException):
            k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber="999999")
        with self.assertRaises(k.exceptions.InvalidArgumentException):
            k.merge_shards(StreamName=name, ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000000")
        with self.assertRaises(ClientError) as e:
            k.put_record(StreamName=name, PartitionKey="k", Data=b"x" * (1 << 20))
        self.assertEqual(e.exception.response["Error"]["Code"], "ValidationException")

    def test_pages_of_streams_and_shards(self):
        prefix = unique("page")
        for i in range(3):
            self.k.create_stream(StreamName=f"{prefix}-{i}", ShardCount=3)
        seen, kwargs = [], {"Limit": 1, "ExclusiveStartStreamName": prefix}
        while True:
            out = self.k.list_streams(**kwargs)
            seen.extend(n for n in out["StreamNames"] if n.startswith(prefix))
            if not out["HasMoreStreams"] or not seen or not out["StreamNames"][-1].startswith(prefix):
                break
            kwargs = {"Limit": 1, "NextToken": out["NextToken"]}
        self.assertEqual(seen, [f"{prefix}-{i}" for i in range(3)])
        first = self.k.list_shards(StreamName=f"{prefix}-0", MaxResults=2)
        self.assertEqual(len(first["Shards"]), 2)
        rest = self.k.list_shards(NextToken=first["NextToken"])
        self.assertEqual([s["ShardId"] for s in rest["Shards"]], ["shardId-000000000002"])


class Throughput(unittest.TestCase):
    def test_provisioned_shards_refuse_writes_past_their_limits_per_record(self):
        k = client()
        name = unique("limits")
        k.create_stream(StreamName=name, ShardCount=1)
        failed = 0
        for _ in range(4):
            out = k.put_records(StreamName=name, Records=[{"PartitionKey": f"k{i}", "Data": b"x"} for i in range(500)])
            failed += out["FailedRecordCount"]
            for r in out["Records"]:
                if "ErrorCode" in r:
                    self.assertEqual(r["ErrorCode"], "ProvisionedThroughputExceededException")
                else:
                    self.assertIn("SequenceNumber", r)
        self.assertGreater(failed, 0, "2,000 records in well under a second exceed 1,000 a second")
        # 4.5 MB at once goes through (a full bucket takes one large write) and leaves the
        # shard in debt for over three seconds: the next put is refused.
        fresh = unique("limits")
        k.create_stream(StreamName=fresh, ShardCount=1)
        out = k.put_records(StreamName=fresh, Records=[{"PartitionKey": "k", "Data": b"x" * 900_000}] * 5)
        self.assertEqual(out["FailedRecordCount"], 0)
        with self.assertRaises(k.exceptions.ProvisionedThroughputExceededException):
            k.put_record(StreamName=fresh, PartitionKey="k", Data=b"x")

    def test_on_demand_streams_take_what_a_shard_would_refuse(self):
        k = client()
        name = unique("ondemand")
        k.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})
        summary = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        self.assertEqual(summary["StreamModeDetails"]["StreamMode"], "ON_DEMAND")
        self.assertEqual(summary["OpenShardCount"], 4)
        for _ in range(4):
            out = k.put_records(StreamName=name, Records=[{"PartitionKey": "one-key", "Data": b"x"}] * 500)
            self.assertEqual(out["FailedRecordCount"], 0)
        with self.assertRaises(ClientError):
            k.update_shard_count(StreamName=name, TargetShardCount=8, ScalingType="UNIFORM_SCALING")


class Iterators(unittest.TestCase):
    def test_iterators_expire_and_fresh_ones_read_on(self):
        k = client(SHORT_ENDPOINT)
        name = unique("expiry")
        k.create_stream(StreamName=name, ShardCount=1)
        k.put_record(StreamName=name, PartitionKey="k", Data=b"one")
        it = k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out = k.get_records(ShardIterator=it)
        self.assertEqual([r["Data"] for r in out["Records"]], [b"one"])
        # The server was started with iterators that last 1.5 s.
        time.sleep(2)
        with self.assertRaises(k.exceptions.ExpiredIteratorException):
            k.get_records(ShardIterator=out["NextShardIterator"])
        last = out["Records"][-1]["SequenceNumber"]
        k.put_record(StreamName=name, PartitionKey="k", Data=b"two")
        it = k.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000", ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=last)["ShardIterator"]
        self.assertEqual([r["Data"] for r in k.get_records(ShardIterator=it)["Records"]], [b"two"])


class FanOut(unittest.TestCase):
    def test_consumers_register_list_and_subscribe(self):
        k = client()
        name = unique("fanout")
        k.create_stream(StreamName=name, ShardCount=1)
        arn = k.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        consumer = k.register_stream_consumer(StreamARN=arn, ConsumerName="reader")["Consumer"]
        self.assertTrue(consumer["ConsumerARN"].startswith(f"{arn}/consumer/reader:"))
        self.assertEqual(consumer["ConsumerStatus"], "CREATING")
        with self.assertRaises(k.exceptions.ResourceInUseException):
            k.register_stream_consumer(StreamARN=arn, ConsumerName="reader")
        k.register_stream_consumer(StreamARN=arn, ConsumerName="other")
        names = [c["ConsumerName"] for c in k.list_stream_consumers(StreamARN=arn)["Consumers"]]
        self.assertEqual(names, ["reader", "other"])
        deadline = time.time() + DEADLINE
        while k.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
            self.assertLess(time.time(), deadline)
            time.sleep(0.1)
        k.put_record(StreamName=name, PartitionKey="k", Data=b"first")
        sub = k.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"], ShardId="shardId-000000000000", StartingPosition={"Type": "TRIM_HORIZON"})
        got = []
        for event in sub["EventStream"]:
            records = event["SubscribeToShardEvent"]["Records"]
            got.extend(r["Data"] for r in records)
            if got == [b"first"]:
                k.put_record(StreamName=name, PartitionKey="k", Data=b"second")
            if len(got) >= 2:
                self.assertTrue(event["SubscribeToShardEvent"]["ContinuationSequenceNumber"])
                break
        sub["EventStream"].close()
        self.assertEqual(got, [b"first", b"second"])
        k.deregister_stream_consumer(StreamARN=arn, ConsumerName="other")
        with self.assertRaises(k.exceptions.ResourceNotFoundException):
            k.describe_stream_consumer(StreamARN=arn, ConsumerName="other")
        with self.assertRaises(k.exceptions.ResourceInUseException):
            k.delete_stream(StreamName=name)
        k.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


if __name__ == "__main__":
    unittest.main()
