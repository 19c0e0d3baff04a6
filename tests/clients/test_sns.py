"""The SNS API of `weir serve` as real clients see it: boto3 and the aws CLI.

Run by tests/sns_clients.rs, which starts `weir serve` and passes its endpoint in
WEIR_ENDPOINT; by hand: `WEIR_ENDPOINT=http://127.0.0.1:9324 target/client-venv/bin/python -m
unittest -v tests/clients/test_sns.py`.
"""

import base64
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request
import uuid

import boto3
from botocore.config import Config

ENDPOINT = os.environ.get("WEIR_ENDPOINT", "http://127.0.0.1:9324")
ACCOUNT = "000000000000"
REGION = "us-east-1"


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(what, predicate, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Endpoint:
    """A small HTTP server standing in for a subscriber: it records every POST (headers and
    body) and answers with the statuses queued in `answers` (then 200); `delivered` has the
    posts it answered 200."""

    def __init__(self):
        self.received = []
        self.delivered = []
        self.answers = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer.lock:
                    outer.received.append((headers, body))
                    status = outer.answers.pop(0) if outer.answers else 200
                    if status == 200:
                        outer.delivered.append((headers, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def posts(self, kind=None):
        with self.lock:
            return [(h, b) for h, b in self.received if kind is None or h.get("x-amz-sns-message-type") == kind]

    def confirm(self, sns, topic_arn):
        """Waits for the confirmation request and visits its SubscribeURL, as an endpoint would."""
        (headers, body), = wait_for("the confirmation request", lambda: self.posts("SubscriptionConfirmation"))
        doc = json.loads(body)
        self.confirmation = (headers, doc)
        with urllib.request.urlopen(doc["SubscribeURL"]) as answer:
            return answer.read().decode()


class Queues:
    """Queues that receive a topic's deliveries."""

    def __init__(self):
        self.sqs = client("sqs")

    def make(self, name, **attributes):
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def drain(self, url, expect, seconds=10):
        got = []
        deadline = time.time() + seconds
        while len(got) < expect and time.time() < deadline:
            batch = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                             MessageAttributeNames=["All"], AttributeNames=["All"]).get("Messages", [])
            for m in batch:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            got.extend(batch)
        return got


class Topics(unittest.TestCase):
    def setUp(self):
        self.sns = client("sns")

    def test_topic_lifecycle_attributes_and_tags(self):
        name = unique("life")
        arn = self.sns.create_topic(Name=name, Attributes={"DisplayName": "Life"},
                                    Tags=[{"Key": "team", "Value": "a"}])["TopicArn"]
        self.assertEqual(arn, f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}")
        self.assertEqual(self.sns.create_topic(Name=name)["TopicArn"], arn, "creating it again returns it")
        attrs = self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        self.assertEqual((attrs["DisplayName"], attrs["Owner"], attrs["TopicArn"]), ("Life", ACCOUNT, arn))
        self.assertEqual(attrs["SubscriptionsConfirmed"], "0")
        self.assertIn("__default_statement_ID", attrs["Policy"])
        self.assertEqual(json.loads(attrs["EffectiveDeliveryPolicy"])["http"]["defaultHealthyRetryPolicy"]["numRetries"], 3)
        policy = json.dumps({"http": {"defaultHealthyRetryPolicy": {"numRetries": 5, "minDelayTarget": 2, "maxDelayTarget": 4}}})
        self.sns.set_topic_attributes(TopicArn=arn, AttributeName="DeliveryPolicy", AttributeValue=policy)
        self.sns.set_topic_attributes(TopicArn=arn, AttributeName="DisplayName", AttributeValue="Renamed")
        attrs = self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]
        self.assertEqual(attrs["DisplayName"], "Renamed")
        self.assertEqual(json.loads(attrs["DeliveryPolicy"]), json.loads(policy))
        self.sns.tag_resource(ResourceArn=arn, Tags=[{"Key": "env", "Value": "test"}])
        self.sns.untag_resource(ResourceArn=arn, TagKeys=["team"])
        self.assertEqual(self.sns.list_tags_for_resource(ResourceArn=arn)["Tags"], [{"Key": "env", "Value": "test"}])
        self.sns.add_permission(TopicArn=arn, Label="pub", AWSAccountId=["111122223333"], ActionName=["Publish"])
        policy = json.loads(self.sns.get_topic_attributes(TopicArn=arn)["Attributes"]["Policy"])
        self.assertIn("pub", [s["Sid"] for s in policy["Statement"]])
        self.sns.remove_permission(TopicArn=arn, Label="pub")
        arns = [t["TopicArn"] for t in self.sns.get_paginator("list_topics").paginate().build_full_result()["Topics"]]
        self.assertIn(arn, arns)
        self.sns.delete_topic(TopicArn=arn)
        self.sns.delete_topic(TopicArn=arn)  # gone already: fine, as SNS
        with self.assertRaises(self.sns.exceptions.NotFoundException):
            self.sns.get_topic_attributes(TopicArn=arn)

    def test_listing_pages_through_many_topics(self):
        prefix = unique("page")
        made = {self.sns.create_topic(Name=f"{prefix}-{i:03}")["TopicArn"] for i in range(105)}
        first = self.sns.list_topics()
        self.assertEqual(len(first["Topics"]), 100)
        self.assertIn("NextToken", first)
        every = {t["TopicArn"] for t in self.sns.get_paginator("list_topics").paginate().build_full_result()["Topics"]}
        self.assertTrue(made <= every)
        for arn in made:
            self.sns.delete_topic(TopicArn=arn)


class FanOut(unittest.TestCase):
    def setUp(self):
        self.sns = client("sns")
        self.queues = Queues()

    def test_fan_out_with_filter_policies_raw_and_enveloped(self):
        topic = self.sns.create_topic(Name=unique("orders"))["TopicArn"]
        all_url, all_arn = self.queues.make(unique("all"))
        big_url, big_arn = self.queues.make(unique("big"))
        body_url, body_arn = self.queues.make(unique("body"))
        raw_sub = self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=all_arn,
                                     Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=big_arn,
                           Attributes={"FilterPolicy": json.dumps({"amount": [{"numeric": [">=", 100]}]})})
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=body_arn, ReturnSubscriptionArn=True,
                           Attributes={"FilterPolicy": json.dumps({"kind": ["refund"]}), "FilterPolicyScope": "MessageBody",
                                       "RawMessageDelivery": "true"})
        attrs = self.sns.get_subscription_attributes(SubscriptionArn=raw_sub)["Attributes"]
        self.assertEqual((attrs["Protocol"], attrs["Endpoint"], attrs["RawMessageDelivery"]), ("sqs", all_arn, "true"))
        self.assertEqual((attrs["PendingConfirmation"], attrs["ConfirmationWasAuthenticated"]), ("false", "true"))
        small = {"amount": {"DataType": "Number", "StringValue": "5"}, "tag": {"DataType": "String", "StringValue": "x"},
                 "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}}
        big = {"amount": {"DataType": "Number", "StringValue": "500"}}
        self.sns.publish(TopicArn=topic, Message=json.dumps({"kind": "order"}), MessageAttributes=small)
        published = self.sns.publish(TopicArn=topic, Message=json.dumps({"kind": "refund"}), Subject="money back",
                                     MessageAttributes=big)
        raw = self.queues.drain(all_url, 2)
        self.assertEqual(sorted(json.loads(m["Body"])["kind"] for m in raw), ["order", "refund"])
        with_attrs = next(m for m in raw if json.loads(m["Body"])["kind"] == "order")
        self.assertEqual(with_attrs["MessageAttributes"]["tag"], {"StringValue": "x", "DataType": "String"})
        self.assertEqual(with_attrs["MessageAttributes"]["blob"]["BinaryValue"], b"\x00\xff")
        (wrapped,) = self.queues.drain(big_url, 1)
        envelope = json.loads(wrapped["Body"])
        self.assertEqual((envelope["Type"], envelope["TopicArn"], envelope["Subject"]), ("Notification", topic, "money back"))
        self.assertEqual(envelope["MessageId"], published["MessageId"])
        self.assertEqual(envelope["MessageAttributes"]["amount"], {"Type": "Number", "Value": "500"})
        for field in ["Timestamp", "SignatureVersion", "Signature", "SigningCertURL", "UnsubscribeURL"]:
            self.assertIn(field, envelope)
        (refund,) = self.queues.drain(body_url, 1)
        self.assertEqual(json.loads(refund["Body"]), {"kind": "refund"})
        # Changing a subscription's attributes takes effect for the next publish.
        self.sns.set_subscription_attributes(SubscriptionArn=raw_sub, AttributeName="RawMessageDelivery",
                                             AttributeValue="false")
        self.sns.publish(TopicArn=topic, Message="now wrapped")
        (again,) = self.queues.drain(all_url, 1)
        self.assertEqual(json.loads(again["Body"])["Message"], "now wrapped")
        subs = self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        self.assertEqual(sorted(s["Endpoint"] for s in subs), sorted([all_arn, big_arn, body_arn]))

    def test_json_message_structure_and_publish_batch(self):
        topic = self.sns.create_topic(Name=unique("struct"))["TopicArn"]
        url, arn = self.queues.make(unique("q"))
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        self.sns.publish(TopicArn=topic, MessageStructure="json",
                         Message=json.dumps({"default": "for everyone", "sqs": "for queues"}))
        (m,) = self.queues.drain(url, 1)
        self.assertEqual(m["Body"], "for queues")
        entries = [{"Id": f"e{i}", "Message": f"batch {i}"} for i in range(3)]
        entries.append({"Id": "bad", "Message": "x", "MessageGroupId": "g"})
        result = self.sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
        self.assertEqual(sorted(s["Id"] for s in result["Successful"]), ["e0", "e1", "e2"])
        (failed,) = result["Failed"]
        self.assertEqual((failed["Id"], failed["Code"], failed["SenderFault"]), ("bad", "InvalidParameter", True))
        self.assertEqual(sorted(m["Body"] for m in self.queues.drain(url, 3)), ["batch 0", "batch 1", "batch 2"])

    def test_a_fifo_topic_feeds_fifo_queues_in_order(self):
        topic = self.sns.create_topic(Name=unique("t") + ".fifo",
                                      Attributes={"FifoTopic": "true", "ContentBasedDeduplication": "true"})["TopicArn"]
        attrs = self.sns.get_topic_attributes(TopicArn=topic)["Attributes"]
        self.assertEqual((attrs["FifoTopic"], attrs["ContentBasedDeduplication"]), ("true", "true"))
        queues = [self.queues.make(unique("f") + ".fifo", FifoQueue="true") for _ in range(2)]
        for _, arn in queues:
            self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
        sequences = []
        for i in range(6):
            r = self.sns.publish(TopicArn=topic, Message=f"m{i}", MessageGroupId=f"g{i % 2}")
            sequences.append(r["SequenceNumber"])
        self.assertEqual(sequences, sorted(sequences))
        dup = self.sns.publish(TopicArn=topic, Message="m0", MessageGroupId="g0")
        self.assertEqual(dup["SequenceNumber"], sequences[0], "deduplicated on the body")
        for url, _ in queues:
            got = self.queues.drain(url, 6)
            by_group = {}
            for m in got:
                by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
            self.assertEqual(by_group, {"g0": ["m0", "m2", "m4"], "g1": ["m1", "m3", "m5"]})
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.publish(TopicArn=topic, Message="no group")
        standard_url, standard_arn = self.queues.make(unique("std"))
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=standard_arn)


class HttpSubscribers(unittest.TestCase):
    def setUp(self):
        self.sns = client("sns")
        self.queues = Queues()
        self.endpoint = Endpoint()

    def tearDown(self):
        self.endpoint.close()

    def test_confirmation_then_notifications_with_snss_headers(self):
        topic = self.sns.create_topic(Name=unique("web"))["TopicArn"]
        pending = self.sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=self.endpoint.url)
        self.assertEqual(pending["SubscriptionArn"], "pending confirmation")
        listed = self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        self.assertEqual([s["SubscriptionArn"] for s in listed], ["PendingConfirmation"])
        self.assertEqual(self.sns.get_topic_attributes(TopicArn=topic)["Attributes"]["SubscriptionsPending"], "1")
        self.sns.publish(TopicArn=topic, Message="before confirmation")  # not delivered
        answer = self.endpoint.confirm(self.sns, topic)
        self.assertIn("<ConfirmSubscriptionResult>", answer)
        headers, doc = self.endpoint.confirmation
        self.assertEqual(headers["x-amz-sns-topic-arn"], topic)
        self.assertEqual(doc["MessageId"], headers["x-amz-sns-message-id"])
        self.assertEqual(headers["user-agent"], "Amazon Simple Notification Service Agent")
        sub = self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
        self.assertTrue(sub.startswith(topic + ":"), sub)
        attrs = self.sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
        self.assertEqual((attrs["PendingConfirmation"], attrs["Protocol"], attrs["Endpoint"]), ("false", "http", self.endpoint.url))
        published = self.sns.publish(TopicArn=topic, Message="after confirmation", Subject="hi",
                                     MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
        (headers, body), = wait_for("the notification", lambda: self.endpoint.posts("Notification"))
        self.assertEqual(headers["x-amz-sns-message-id"], published["MessageId"])
        self.assertEqual(headers["x-amz-sns-subscription-arn"], sub)
        self.assertEqual(headers["content-type"], "text/plain; charset=UTF-8")
        doc = json.loads(body)
        self.assertEqual((doc["Message"], doc["Subject"], doc["TopicArn"]), ("after confirmation", "hi", topic))
        self.assertEqual(doc["MessageAttributes"]["k"], {"Type": "String", "Value": "v"})
        self.assertTrue(doc["UnsubscribeURL"].endswith(sub))
        # Raw delivery: the message as is, and the header that says so.
        self.sns.set_subscription_attributes(SubscriptionArn=sub, AttributeName="RawMessageDelivery", AttributeValue="true")
        self.sns.publish(TopicArn=topic, Message="raw body")
        raw = wait_for("the raw notification", lambda: [p for p in self.endpoint.posts("Notification") if p[1] == b"raw body"])
        self.assertEqual(raw[0][0]["x-amz-sns-rawdelivery"], "true")
        # The UnsubscribeURL ends the subscription.
        urllib.request.urlopen(doc["UnsubscribeURL"]).read()
        with self.assertRaises(self.sns.exceptions.NotFoundException):
            self.sns.get_subscription_attributes(SubscriptionArn=sub)
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.confirm_subscription(TopicArn=topic, Token="not-a-token")

    def test_failures_are_retried_then_dead_lettered(self):
        topic = self.sns.create_topic(Name=unique("retry"))["TopicArn"]
        dlq_url, dlq_arn = self.queues.make(unique("dlq"))
        policy = {"healthyRetryPolicy": {"numRetries": 2, "minDelayTarget": 1, "maxDelayTarget": 1}}
        self.sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=self.endpoint.url,
                           Attributes={"DeliveryPolicy": json.dumps(policy),
                                       "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})})
        self.endpoint.confirm(self.sns, topic)
        sub = self.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"][0]["SubscriptionArn"]
        attrs = self.sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]
        self.assertEqual(json.loads(attrs["EffectiveDeliveryPolicy"])["healthyRetryPolicy"]["numRetries"], 2)
        # Two failures, then success: delivered on the third attempt, same message id throughout.
        self.endpoint.answers = [500, 503]
        published = self.sns.publish(TopicArn=topic, Message="flaky")
        def flaky():
            return [h for h, b in self.endpoint.posts("Notification") if json.loads(b)["Message"] == "flaky"]
        attempts = wait_for("three attempts", lambda: len(flaky()) >= 3 and flaky())
        self.assertEqual({h["x-amz-sns-message-id"] for h in attempts}, {published["MessageId"]})
        pending = lambda: self.sns.get_subscription_attributes(SubscriptionArn=sub)["Attributes"]["PendingDeliveries"]
        wait_for("nothing pending", lambda: pending() == "0")
        self.assertNotIn("Messages", self.queues.sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=0))
        # Three failures: the policy runs out and the notification goes to the dead-letter queue.
        self.endpoint.answers = [500, 500, 500]
        doomed = self.sns.publish(TopicArn=topic, Message="doomed")
        (dead,) = self.queues.drain(dlq_url, 1, seconds=20)
        self.assertEqual(json.loads(dead["Body"])["MessageId"], doomed["MessageId"])
        # A 4xx is final at once.
        self.endpoint.answers = [410]
        rejected = self.sns.publish(TopicArn=topic, Message="rejected")
        (dead,) = self.queues.drain(dlq_url, 1, seconds=20)
        self.assertEqual(json.loads(dead["Body"])["MessageId"], rejected["MessageId"])
        tries = [h for h, b in self.endpoint.posts("Notification") if json.loads(b)["Message"] == "rejected"]
        self.assertEqual(len(tries), 1)

    def test_a_dead_endpoint_does_not_slow_publishes_or_other_subscriptions(self):
        topic = self.sns.create_topic(Name=unique("slow"))["TopicArn"]
        dead = Endpoint()
        dead.answers = [500] * 1000
        try:
            self.sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=dead.url)
            dead.answers = []
            dead.confirm(self.sns, topic)
            dead.answers = [500] * 1000
            self.sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=self.endpoint.url)
            self.endpoint.confirm(self.sns, topic)
            started = time.time()
            for i in range(20):
                self.sns.publish(TopicArn=topic, Message=f"n{i}")
            self.assertLess(time.time() - started, 10)
            wait_for("every notification at the live endpoint", lambda: len(self.endpoint.posts("Notification")) >= 20)
        finally:
            dead.close()


class Errors(unittest.TestCase):
    def setUp(self):
        self.sns = client("sns")

    def test_errors_as_the_sdk_raises_them(self):
        missing = f"arn:aws:sns:{REGION}:{ACCOUNT}:{unique('missing')}"
        for call in [lambda: self.sns.get_topic_attributes(TopicArn=missing),
                     lambda: self.sns.publish(TopicArn=missing, Message="x"),
                     lambda: self.sns.subscribe(TopicArn=missing, Protocol="http", Endpoint="http://127.0.0.1:9/"),
                     lambda: self.sns.get_subscription_attributes(SubscriptionArn=missing + ":sub-999999")]:
            with self.assertRaises(self.sns.exceptions.NotFoundException):
                call()
        with self.assertRaises(self.sns.exceptions.ResourceNotFoundException):
            self.sns.list_tags_for_resource(ResourceArn=missing)
        topic = self.sns.create_topic(Name=unique("err"))["TopicArn"]
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.create_topic(Name="bad name!")
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.set_topic_attributes(TopicArn=topic, AttributeName="NoSuchAttribute", AttributeValue="x")
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.set_topic_attributes(TopicArn=topic, AttributeName="DeliveryPolicy",
                                          AttributeValue='{"http":{"defaultHealthyRetryPolicy":{"numRetries":500}}}')
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="a@example.com")
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint="not-an-arn")
        with self.assertRaises(self.sns.exceptions.InvalidParameterException):
            self.sns.publish(TopicArn=topic, Message="x", MessageStructure="json")
        with self.assertRaises(self.sns.exceptions.InvalidParameterValueException):
            self.sns.publish(TopicArn=topic, Message="x", MessageAttributes={"n": {"DataType": "Number", "StringValue": "ten"}})
        with self.assertRaises(self.sns.exceptions.BatchEntryIdsNotDistinctException):
            self.sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "a", "Message": "1"}, {"Id": "a", "Message": "2"}])
        with self.assertRaises(self.sns.exceptions.TooManyEntriesInBatchRequestException):
            self.sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": f"e{i}", "Message": "x"} for i in range(11)])
        with self.assertRaises(self.sns.exceptions.InvalidBatchEntryIdException):
            self.sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": "not ok!", "Message": "x"}])
        with self.assertRaises(self.sns.exceptions.BatchRequestTooLongException):
            self.sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=[{"Id": f"e{i}", "Message": "x" * 100_000} for i in range(3)])
        with self.assertRaises(self.sns.exceptions.TagLimitExceededException):
            self.sns.tag_resource(ResourceArn=topic, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])


class AwsCli(unittest.TestCase):
    def aws(self, *args, check=True):
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION,
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")
        aws = os.path.join(os.path.dirname(sys.executable), "aws")
        done = subprocess.run([aws, *args, "--endpoint-url", ENDPOINT, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=60)
        if check:
            self.assertEqual(done.returncode, 0, done.stderr)
        return done

    def test_the_aws_cli_drives_a_topic(self):
        name = unique("cli")
        arn = json.loads(self.aws("sns", "create-topic", "--name", name).stdout)["TopicArn"]
        queue = json.loads(self.aws("sqs", "create-queue", "--queue-name", name).stdout)["QueueUrl"]
        queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        sub = json.loads(self.aws("sns", "subscribe", "--topic-arn", arn, "--protocol", "sqs",
                                  "--notification-endpoint", queue_arn,
                                  "--attributes", '{"RawMessageDelivery":"true"}').stdout)["SubscriptionArn"]
        self.assertTrue(sub.startswith(arn + ":"))
        published = json.loads(self.aws("sns", "publish", "--topic-arn", arn, "--message", "from the cli",
                                        "--message-attributes", '{"k":{"DataType":"String","StringValue":"v"}}').stdout)
        self.assertIn("MessageId", published)
        got = json.loads(self.aws("sqs", "receive-message", "--queue-url", queue, "--wait-time-seconds", "2").stdout)
        self.assertEqual(got["Messages"][0]["Body"], "from the cli")
        topics = json.loads(self.aws("sns", "list-topics").stdout)["Topics"]
        self.assertIn({"TopicArn": arn}, topics)
        subs = json.loads(self.aws("sns", "list-subscriptions-by-topic", "--topic-arn", arn).stdout)["Subscriptions"]
        self.assertEqual([s["SubscriptionArn"] for s in subs], [sub])
        attrs = json.loads(self.aws("sns", "get-topic-attributes", "--topic-arn", arn).stdout)["Attributes"]
        self.assertEqual(attrs["SubscriptionsConfirmed"], "1")
        self.aws("sns", "unsubscribe", "--subscription-arn", sub)
        missing = self.aws("sns", "get-topic-attributes", "--topic-arn", arn + "-gone", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("NotFound", missing.stderr)
        self.aws("sns", "delete-topic", "--topic-arn", arn)


if __name__ == "__main__":
    unittest.main()
