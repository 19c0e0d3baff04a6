"""HTTP deliveries across a kill -9 of `weir serve`, driven by tests/sns_clients.rs.

Usage: sns_crash.py ENDPOINT COUNT. Makes a topic with an HTTP subscription to an endpoint it
runs itself, confirms it, makes the endpoint fail (500), publishes COUNT messages and prints
{"published": [message ids]}. The test then kills the server with SIGKILL, starts it again and
writes a line on stdin; from then on the endpoint answers 200, and this script prints
{"received": [distinct message ids answered 200], "posts": n} once every published id came (or 90 s passed).
"""

import json
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from test_sns import Endpoint, client, unique  # noqa: E402

import test_sns  # noqa: E402

test_sns.ENDPOINT = sys.argv[1]
count = int(sys.argv[2])

sns = client("sns")
endpoint = Endpoint()
topic = sns.create_topic(Name=unique("crash"))["TopicArn"]
policy = {"healthyRetryPolicy": {"numRetries": 50, "minDelayTarget": 1, "maxDelayTarget": 1}}
sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=endpoint.url, Attributes={"DeliveryPolicy": json.dumps(policy)})
endpoint.confirm(sns, topic)
endpoint.answers = [500] * 1_000_000
published = [sns.publish(TopicArn=topic, Message=f"m{i}")["MessageId"] for i in range(count)]
# Some attempts have failed before the kill: deliveries are in every state.
deadline = time.time() + 10
while len(endpoint.posts("Notification")) < count and time.time() < deadline:
    time.sleep(0.02)
print(json.dumps({"published": published}), flush=True)
sys.stdin.readline()
with endpoint.lock:
    endpoint.answers = []
deadline = time.time() + 90
received = set()
while time.time() < deadline:
    with endpoint.lock:
        received = {h["x-amz-sns-message-id"] for h, _ in endpoint.delivered if h["x-amz-sns-message-type"] == "Notification"}
    if set(published) <= received:
        break
    time.sleep(0.1)
print(json.dumps({"received": sorted(received), "posts": len(endpoint.posts("Notification"))}), flush=True)
