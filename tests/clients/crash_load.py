"""Load for the crash test: boto3 senders and receivers on one queue, each writing a journal
line only after the server answered 200, until the server goes away.

usage: crash_load.py ENDPOINT QUEUE_URL JOURNAL_DIR SENDERS RECEIVERS

Journals (one file per thread, one line per fact, flushed at once):
  sent BODY       SendMessage of BODY was answered 200
  deleting BODY   DeleteMessage of BODY is about to be sent (it may or may not happen)
  deleted BODY    DeleteMessage of BODY was answered 200
"""

import os
import sys
import threading
import time

import boto3
from botocore.config import Config

endpoint, queue_url, journal_dir, senders, receivers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
DEADLINE = time.monotonic() + 120


def client():
    return boto3.client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=10),
    )


def journal(name):
    return open(os.path.join(journal_dir, name), "a", buffering=1)


def send(n):
    sqs, out = client(), journal(f"sender-{n}")
    i = 0
    try:
        while time.monotonic() < DEADLINE:
            if i % 3 == 0:
                bodies = [f"s{n}-{i + k}" for k in range(5)]
                result = sqs.send_message_batch(QueueUrl=queue_url, Entries=[{"Id": f"e{k}", "MessageBody": b} for k, b in enumerate(bodies)])
                ok = {e["Id"] for e in result.get("Successful", [])}
                for k, b in enumerate(bodies):
                    if f"e{k}" in ok:
                        out.write(f"sent {b}\n")
                i += 5
            else:
                body = f"s{n}-{i}"
                sqs.send_message(QueueUrl=queue_url, MessageBody=body)
                out.write(f"sent {body}\n")
                i += 1
    except Exception as e:  # the server was killed
        print(f"sender {n} stops: {type(e).__name__}", file=sys.stderr)


def receive(n):
    sqs, out = client(), journal(f"receiver-{n}")
    try:
        while time.monotonic() < DEADLINE:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = got.get("Messages", [])
            # Delete about half, one by one or in a batch; leave the rest in flight.
            keep = messages[: len(messages) // 2]
            for m in keep:
                out.write(f"deleting {m['Body']}\n")
            if len(keep) > 1:
                result = sqs.delete_message_batch(QueueUrl=queue_url, Entries=[{"Id": f"d{k}", "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(keep)])
                done = {e["Id"] for e in result.get("Successful", [])}
                for k, m in enumerate(keep):
                    if f"d{k}" in done:
                        out.write(f"deleted {m['Body']}\n")
            elif keep:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=keep[0]["ReceiptHandle"])
                out.write(f"deleted {keep[0]['Body']}\n")
    except Exception as e:
        print(f"receiver {n} stops: {type(e).__name__}", file=sys.stderr)


threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
threads += [threading.Thread(target=receive, args=(n,)) for n in range(receivers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
