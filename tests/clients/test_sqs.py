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
        self.assertIn("DeadLetterQueueSourceArn", self.sqs.receive_message(
            QueueUrl=dlq, WaitTimeSeconds=2, VisibilityTimeout=0,
            MessageSystemAttributeNames=["DeadLetterQueueSourceArn"])["Messages"][0]["Attributes"])
        task = self.sqs.start_message_move_task(SourceArn=arn(dlq_name), MaxNumberOfMessagesPerSecond=10)
        listed = self.sqs.list_message_move_tasks(SourceArn=arn(dlq_name), MaxResults=10)["Results"]
        self.assertEqual(listed[0]["SourceArn"], arn(dlq_name))
        self.assertEqual(listed[0]["MaxNumberOfMessagesPerSecond"], 10)
        self.assertIn(listed[0]["Status"], ("RUNNING", "COMPLETED"))
        if listed[0]["Status"] == "RUNNING":
            self.assertEqual(listed[0]["TaskHandle"], task["TaskHandle"])
        back = self.sqs.receive_message(QueueUrl=src, WaitTimeSeconds=5, AttributeNames=["All"])["Messages"][0]
        self.assertEqual(back["Body"], "poison")
        deadline = time.monotonic() + 10
        while self.sqs.list_message_move_tasks(SourceArn=arn(dlq_name))["Results"][0]["Status"] != "COMPLETED":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        done = self.sqs.list_message_move_tasks(SourceArn=arn(dlq_name))["Results"][0]
        self.assertEqual(done["ApproximateNumberOfMessagesMoved"], 1)
        self.assertNotIn("TaskHandle", done)

    def test_a_move_task_to_a_destination_is_cancelled_midway(self):
        dlq_name, dest_name = unique("dlq"), unique("dest")
        dlq = self.sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
        dest = self.sqs.create_queue(QueueName=dest_name)["QueueUrl"]
        self.sqs.create_queue(QueueName=unique("src"), Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": arn(dlq_name), "maxReceiveCount": 3})})
        self.sqs.send_message_batch(QueueUrl=dlq, Entries=[{"Id": f"m{i}", "MessageBody": f"m{i}"} for i in range(6)])
        task = self.sqs.start_message_move_task(SourceArn=arn(dlq_name), DestinationArn=arn(dest_name),
                                                MaxNumberOfMessagesPerSecond=1)
        with self.assertRaises(self.sqs.exceptions.UnsupportedOperation):
            self.sqs.start_message_move_task(SourceArn=arn(dlq_name), DestinationArn=arn(dest_name))
        moved = self.sqs.cancel_message_move_task(TaskHandle=task["TaskHandle"])["ApproximateNumberOfMessagesMoved"]
        self.assertLess(moved, 6)
        listed = self.sqs.list_message_move_tasks(SourceArn=arn(dlq_name))["Results"][0]
        self.assertEqual((listed["Status"], listed["DestinationArn"]), ("CANCELLED", arn(dest_name)))
        counts = self.sqs.get_queue_attributes(QueueUrl=dest, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        self.assertEqual(counts["ApproximateNumberOfMessages"], str(moved))
        with self.assertRaises(self.sqs.exceptions.ResourceNotFoundException):
            self.sqs.cancel_message_move_task(TaskHandle=task["TaskHandle"])


class Attributes(unittest.TestCase):
    def setUp(self):
        self.sqs = client()

    def test_every_attribute_round_trips(self):
        name = unique("all") + ".fifo"
        policy = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "s", "Effect": "Allow", "Principal": "*", "Action": "SQS:SendMessage", "Resource": arn(name)}]})
        allow = json.dumps({"redrivePermission": "denyAll"})
        settable = {
            "DelaySeconds": "0", "MaximumMessageSize": "4096", "MessageRetentionPeriod": "7200",
            "ReceiveMessageWaitTimeSeconds": "3", "VisibilityTimeout": "50", "ContentBasedDeduplication": "true",
            "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId",
            "Policy": policy, "RedriveAllowPolicy": allow,
        }
        started = int(time.time())
        url = self.sqs.create_queue(QueueName=name, Attributes=dict(settable, FifoQueue="true"))["QueueUrl"]
        got = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for key, value in settable.items():
            if key in ("Policy", "RedriveAllowPolicy"):
                self.assertEqual(json.loads(got[key]), json.loads(value), key)
            else:
                self.assertEqual(got[key], value, key)
        self.assertEqual(got["FifoQueue"], "true")
        self.assertEqual(got["QueueArn"], arn(name))
        self.assertEqual(got["SqsManagedSseEnabled"], "false")
        for key in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"):
            self.assertEqual(got[key], "0", key)
        self.assertLessEqual(abs(int(got["CreatedTimestamp"]) - started), 60)
        self.assertEqual(got["LastModifiedTimestamp"], got["CreatedTimestamp"])
        time.sleep(1.1)
        # This server has no key (no --key-file): asking for encryption at rest is refused,
        # so that no queue claims an encryption it does not have.
        for asked in ({"SqsManagedSseEnabled": "true"}, {"KmsMasterKeyId": "alias/aws/sqs"}):
            with self.assertRaises(ClientError) as caught:
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes=dict(asked, VisibilityTimeout="61"))
            self.assertEqual(caught.exception.response["Error"]["Code"], "InvalidAttributeValue")
            self.assertIn("--key-file", caught.exception.response["Error"]["Message"])
            with self.assertRaises(ClientError):
                self.sqs.create_queue(QueueName=unique("sealed"), Attributes=asked)
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"SqsManagedSseEnabled": "false", "VisibilityTimeout": "60"})
        after = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertGreater(int(after["LastModifiedTimestamp"]), int(got["LastModifiedTimestamp"]))
        self.assertEqual((after["SqsManagedSseEnabled"], after["VisibilityTimeout"]), ("false", "60"))
        self.assertNotIn("KmsMasterKeyId", after)
        # A standard queue's defaults, SQS's current 1 MiB message size included.
        plain = self.sqs.create_queue(QueueName=unique("plain"))["QueueUrl"]
        defaults = self.sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=["All"])["Attributes"]
        self.assertEqual(defaults["MaximumMessageSize"], "1048576")
        self.assertEqual(defaults["MessageRetentionPeriod"], "345600")
        self.assertNotIn("FifoQueue", defaults)
        big = "x" * 1048576
        self.sqs.send_message(QueueUrl=plain, MessageBody=big)
        with self.assertRaises(ClientError) as e:
            self.sqs.send_message(QueueUrl=plain, MessageBody=big + "x")
        self.assertEqual(e.exception.response["Error"]["Code"], "InvalidParameterValue")
        with self.assertRaises(self.sqs.exceptions.InvalidAttributeValue):
            self.sqs.set_queue_attributes(QueueUrl=plain, Attributes={"MaximumMessageSize": "1048577"})


class Messages(unittest.TestCase):
    def setUp(self):
        self.sqs = client()

    def test_system_attributes_and_custom_data_types(self):
        url = self.sqs.create_queue(QueueName=unique("sys") + ".fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        attributes = {
            "count": {"DataType": "Number.int", "StringValue": "7"},
            "doc": {"DataType": "String.json", "StringValue": '{"k": [1, 2]}'},
            "img": {"DataType": "Binary.png", "BinaryValue": b"\x89PNG"},
        }
        trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
        sent = self.sqs.send_message(QueueUrl=url, MessageBody="traced", MessageGroupId="g1",
                                     MessageDeduplicationId="dedup-1", MessageAttributes=attributes,
                                     MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": trace}})
        self.assertEqual(sent["MD5OfMessageAttributes"], md5_of_attributes(attributes))
        got = self.sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        (m,) = got["Messages"]
        self.assertEqual(m["MessageAttributes"], attributes)
        self.assertEqual(m["MD5OfMessageAttributes"], sent["MD5OfMessageAttributes"])
        a = m["Attributes"]
        self.assertEqual(a["AWSTraceHeader"], trace)
        self.assertEqual(a["MessageDeduplicationId"], "dedup-1")
        self.assertEqual(a["MessageGroupId"], "g1")
        self.assertEqual(a["SequenceNumber"], sent["SequenceNumber"])
        self.assertEqual(a["SenderId"], ACCOUNT)
        only = self.sqs.receive_message(QueueUrl=url, AttributeNames=["MessageGroupId"], VisibilityTimeout=0)
        self.assertEqual(only.get("Messages", []), [], "the group is in flight")

    def test_fifo_receive_attempts_and_deduplication_per_group(self):
        url = self.sqs.create_queue(QueueName=unique("groups") + ".fifo", Attributes={
            "FifoQueue": "true", "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId"})["QueueUrl"]
        a = self.sqs.send_message(QueueUrl=url, MessageBody="a", MessageGroupId="a", MessageDeduplicationId="same")
        b = self.sqs.send_message(QueueUrl=url, MessageBody="b", MessageGroupId="b", MessageDeduplicationId="same")
        self.assertNotEqual(a["MessageId"], b["MessageId"], "deduplication is per group")
        dup = self.sqs.send_message(QueueUrl=url, MessageBody="a again", MessageGroupId="a", MessageDeduplicationId="same")
        self.assertEqual(dup["MessageId"], a["MessageId"])
        first = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-1")["Messages"]
        self.assertEqual(sorted(m["Body"] for m in first), ["a", "b"])
        retried = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-1")["Messages"]
        self.assertEqual(sorted(m["ReceiptHandle"] for m in retried), sorted(m["ReceiptHandle"] for m in first))
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url, ReceiveRequestAttemptId="attempt-2"))


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

    def test_engine_errors_as_the_sdk_raises_them(self):
        url = self.sqs.create_queue(QueueName=unique("errs"))["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody="x")
        (m,) = self.sqs.receive_message(QueueUrl=url, VisibilityTimeout=0)["Messages"]
        with self.assertRaises(self.sqs.exceptions.MessageNotInflight):
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=30)
        self.sqs.purge_queue(QueueUrl=url)
        with self.assertRaises(self.sqs.exceptions.PurgeQueueInProgress) as e:
            self.sqs.purge_queue(QueueUrl=url)
        self.assertEqual(e.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)
        self.sqs.tag_queue(QueueUrl=url, Tags={f"k{i}": "v" for i in range(50)})
        with self.assertRaises(self.sqs.exceptions.OverLimit):
            self.sqs.tag_queue(QueueUrl=url, Tags={"k50": "v"})
        with self.assertRaises(self.sqs.exceptions.InvalidAttributeName):
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"DeduplicationScope": "messageGroup"})

    def test_tags_and_permissions(self):
        name = unique("tags")
        url = self.sqs.create_queue(QueueName=name, tags={"team": "storage", "tier": "1"})["QueueUrl"]
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"team": "storage", "tier": "1"})
        self.sqs.tag_queue(QueueUrl=url, Tags={"team": "queues", "env": "dev"})
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"team": "queues", "tier": "1", "env": "dev"})
        self.sqs.untag_queue(QueueUrl=url, TagKeys=["team", "tier", "env"])
        self.assertNotIn("Tags", self.sqs.list_queue_tags(QueueUrl=url))
        self.sqs.add_permission(QueueUrl=url, Label="l1", AWSAccountIds=["111122223333"], Actions=["SendMessage"])
        self.sqs.add_permission(QueueUrl=url, Label="l2", AWSAccountIds=["111122223333", "444455556666"],
                                Actions=["ReceiveMessage", "DeleteMessage"])
        policy = json.loads(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
        self.assertEqual([s["Sid"] for s in policy["Statement"]], ["l1", "l2"])
        self.assertEqual(policy["Statement"][0]["Action"], "SQS:SendMessage")
        self.assertEqual(policy["Statement"][0]["Resource"], arn(name))
        self.assertEqual(self.code(self.sqs.add_permission, QueueUrl=url, Label="l1", AWSAccountIds=["111122223333"],
                                   Actions=["SendMessage"]), "InvalidParameterValue")
        self.sqs.remove_permission(QueueUrl=url, Label="l1")
        self.sqs.remove_permission(QueueUrl=url, Label="l2")
        self.assertNotIn("Attributes", self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]))

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

    def test_the_aws_cli_tags_permits_and_moves(self):
        # Each aws command starts a Python process (about a second): few commands, boto3 for
        # the rest.
        sqs = client()
        name, dlq_name = unique("cli-src"), unique("cli-dlq")
        dlq = json.loads(self.aws("create-queue", "--queue-name", dlq_name, "--tags", "team=storage").stdout)["QueueUrl"]
        self.aws("tag-queue", "--queue-url", dlq, "--tags", "env=dev")
        tags = json.loads(self.aws("list-queue-tags", "--queue-url", dlq).stdout)["Tags"]
        self.assertEqual(tags, {"team": "storage", "env": "dev"})
        self.aws("add-permission", "--queue-url", dlq, "--label", "ops", "--aws-account-ids", "111122223333",
                 "--actions", "SendMessage", "ReceiveMessage")
        got = json.loads(self.aws("get-queue-attributes", "--queue-url", dlq, "--attribute-names", "Policy",
                                  "CreatedTimestamp").stdout)["Attributes"]
        self.assertEqual(json.loads(got["Policy"])["Statement"][0]["Sid"], "ops")
        self.assertTrue(got["CreatedTimestamp"].isdigit())
        redrive = json.dumps({"deadLetterTargetArn": arn(dlq_name), "maxReceiveCount": "1"})
        src = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        sqs.send_message(QueueUrl=dlq, MessageBody="dead")
        task = json.loads(self.aws("start-message-move-task", "--source-arn", arn(dlq_name),
                                   "--destination-arn", arn(name), "--max-number-of-messages-per-second", "5").stdout)
        self.assertIn("TaskHandle", task)
        listed = json.loads(self.aws("list-message-move-tasks", "--source-arn", arn(dlq_name)).stdout)["Results"]
        self.assertEqual(listed[0]["MaxNumberOfMessagesPerSecond"], 5)
        self.assertEqual(sqs.receive_message(QueueUrl=src, WaitTimeSeconds=5)["Messages"][0]["Body"], "dead")
        sqs.purge_queue(QueueUrl=src)
        again = self.aws("purge-queue", "--queue-url", src, check=False)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("PurgeQueueInProgress", again.stderr)

if __name__ == "__main__":
    unittest.main()
