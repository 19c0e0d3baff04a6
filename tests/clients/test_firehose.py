"""The Firehose API of `weir serve` as real clients see it: boto3 and the aws CLI, with
delivery streams delivering to a directory (S3 buckets are directories under WEIR_BUCKETS) and
to HTTP endpoints played by small servers inside this test.

Run by tests/firehose_clients.rs, which starts `weir serve --buckets-dir WEIR_BUCKETS` and
passes WEIR_ENDPOINT and WEIR_BUCKETS; by hand: `WEIR_ENDPOINT=http://127.0.0.1:9324
WEIR_BUCKETS=DATA_DIR/buckets target/client-venv/bin/python -m unittest -v
tests/clients/test_firehose.py`.
"""

import base64
import glob
import gzip
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from botocore.config import Config

ENDPOINT = os.environ.get("WEIR_ENDPOINT", "http://127.0.0.1:9324")
BUCKETS = os.environ.get("WEIR_BUCKETS", "")
ACCOUNT = "000000000000"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose"


def client():
    return boto3.client(
        "firehose",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(what, check, seconds=20):
    """Polls `check` until it returns something true, for at most `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(0.1)


def files_in(directory):
    return sorted(p for p in glob.glob(os.path.join(directory, "*")) if os.path.isfile(p) and not p.endswith(".tmp"))


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if path.endswith(".gz") else data


class Endpoint:
    """An HTTP endpoint in Firehose's delivery format: records every request, answers as
    `answer(n)` says for the nth request (a status), 200 with the request id by default."""

    def __init__(self, answer=lambda n: 200):
        self.requests = []
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                with endpoint.lock:
                    n = len(endpoint.requests)
                    endpoint.requests.append({"path": self.path, "headers": headers, "body": json.loads(body)})
                status = answer(n)
                request_id = headers.get("x-amz-firehose-request-id", "")
                reply = {"requestId": request_id, "timestamp": int(time.time() * 1000)}
                if status != 200:
                    reply["errorMessage"] = "not now"
                out = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ingest?key=1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def records(self):
        with self.lock:
            return [base64.b64decode(r["data"]) for req in self.requests for r in req["body"]["records"]]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def s3_config(bucket, prefix="", **extra):
    return dict(RoleARN=ROLE, BucketARN=f"arn:aws:s3:::{bucket}", Prefix=prefix, **extra)


class DeliveryStreams(unittest.TestCase):
    def setUp(self):
        self.fh = client()

    def test_lifecycle_listing_and_errors_as_the_sdk_raises_them(self):
        names = sorted(unique("life") for _ in range(3))
        for n in names:
            arn = self.fh.create_delivery_stream(
                DeliveryStreamName=n, DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration=s3_config("life", n + "/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60}),
                Tags=[{"Key": "team", "Value": "data"}],
            )["DeliveryStreamARN"]
            self.assertEqual(arn, f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{n}")
        d = self.fh.describe_delivery_stream(DeliveryStreamName=names[0])["DeliveryStreamDescription"]
        self.assertEqual((d["DeliveryStreamName"], d["DeliveryStreamStatus"], d["DeliveryStreamType"]), (names[0], "ACTIVE", "DirectPut"))
        self.assertFalse(d["HasMoreDestinations"])
        (dest,) = d["Destinations"]
        s3 = dest["ExtendedS3DestinationDescription"]
        self.assertEqual((s3["BucketARN"], s3["Prefix"], s3["RoleARN"]), ("arn:aws:s3:::life", names[0] + "/", ROLE))
        self.assertEqual(s3["BufferingHints"], {"SizeInMBs": 1, "IntervalInSeconds": 60})
        self.assertEqual(s3["CompressionFormat"], "UNCOMPRESSED")
        self.assertTrue(hasattr(d["CreateTimestamp"], "year"), "a timestamp the SDK parses")

        listed = self.fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]
        self.assertTrue(set(names) <= set(listed))
        page = self.fh.list_delivery_streams(Limit=1, ExclusiveStartDeliveryStreamName=names[0])
        self.assertEqual(page["DeliveryStreamNames"], [names[1]])
        self.assertTrue(page["HasMoreDeliveryStreams"])

        with self.assertRaises(self.fh.exceptions.ResourceInUseException):
            self.fh.create_delivery_stream(DeliveryStreamName=names[0], S3DestinationConfiguration=s3_config("life"))
        with self.assertRaises(self.fh.exceptions.ResourceNotFoundException):
            self.fh.describe_delivery_stream(DeliveryStreamName="nope-" + names[0])
        with self.assertRaises(self.fh.exceptions.ResourceNotFoundException):
            self.fh.put_record(DeliveryStreamName="nope-" + names[0], Record={"Data": b"x"})
        with self.assertRaises(self.fh.exceptions.InvalidArgumentException):
            self.fh.create_delivery_stream(DeliveryStreamName=unique("bad"), S3DestinationConfiguration=s3_config("life", CompressionFormat="Snappy"))
        with self.assertRaises(self.fh.exceptions.InvalidArgumentException):
            self.fh.create_delivery_stream(DeliveryStreamName=unique("bad"), S3DestinationConfiguration=s3_config("../escape"))
        with self.assertRaises(self.fh.exceptions.InvalidArgumentException):
            self.fh.create_delivery_stream(
                DeliveryStreamName=unique("bad"),
                RedshiftDestinationConfiguration={"RoleARN": ROLE, "ClusterJDBCURL": "jdbc:redshift://x", "CopyCommand": {"DataTableName": "t"},
                                                  "S3Configuration": s3_config("life")})
        with self.assertRaises(self.fh.exceptions.InvalidArgumentException):
            self.fh.put_record(DeliveryStreamName=names[0], Record={"Data": b"x" * 1_024_001})
        with self.assertRaises(self.fh.exceptions.InvalidArgumentException):
            self.fh.put_record_batch(DeliveryStreamName=names[0], Records=[{"Data": b"x"}] * 501)

        for n in names:
            self.fh.delete_delivery_stream(DeliveryStreamName=n, AllowForceDelete=True)
        with self.assertRaises(self.fh.exceptions.ResourceNotFoundException):
            self.fh.delete_delivery_stream(DeliveryStreamName=names[0])
        self.assertFalse(set(names) & set(self.fh.list_delivery_streams(Limit=10000)["DeliveryStreamNames"]))

    def test_a_directory_destination_gets_files_with_the_records(self):
        name = unique("files")
        self.fh.create_delivery_stream(
            DeliveryStreamName=name,
            ExtendedS3DestinationConfiguration=s3_config(
                "archive", f"{name}/year=2026/",
                BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
                ProcessingConfiguration={"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord"}]},
            ),
        )
        first = self.fh.put_record(DeliveryStreamName=name, Record={"Data": b'{"n":0}'})
        self.assertFalse(first["Encrypted"])
        batch = self.fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": json.dumps({"n": i}).encode()} for i in range(1, 50)])
        self.assertEqual(batch["FailedPutCount"], 0)
        self.assertEqual(len(batch["RequestResponses"]), 49)
        ids = [r["RecordId"] for r in batch["RequestResponses"]] + [first["RecordId"]]
        self.assertEqual(len(set(ids)), 50, "a record id per record")
        self.assertTrue(all("ErrorCode" not in r for r in batch["RequestResponses"]))
        directory = os.path.join(BUCKETS, "archive", name, "year=2026")

        def delivered():
            lines = [l for f in files_in(directory) for l in read(f).decode().splitlines()]
            return lines if len(lines) >= 50 else None

        lines = wait_for("the records in files", delivered)
        self.assertEqual([json.loads(l)["n"] for l in lines], list(range(50)), "each record once, in order")

    def test_gzip_files_hold_the_records_concatenated(self):
        name = unique("gz")
        self.fh.create_delivery_stream(
            DeliveryStreamName=name,
            S3DestinationConfiguration=s3_config("gz", name, CompressionFormat="GZIP", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0}),
        )
        self.fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"a"}, {"Data": b"\x00\xff"}, {"Data": b"c"}])
        files = wait_for("a gzip file", lambda: files_in(os.path.join(BUCKETS, "gz", name)))
        self.assertTrue(files[0].endswith(".gz"), files)
        self.assertEqual(b"".join(read(f) for f in files), b"a\x00\xffc", "concatenated, as Firehose writes S3 objects")

    def test_an_http_endpoint_gets_batches_in_firehoses_format_and_failures_are_retried(self):
        endpoint = Endpoint(answer=lambda n: 500 if n < 2 else 200)  # the first two attempts fail
        try:
            name = unique("http")
            self.fh.create_delivery_stream(
                DeliveryStreamName=name,
                HttpEndpointDestinationConfiguration={
                    "EndpointConfiguration": {"Url": endpoint.url, "Name": "sink", "AccessKey": "the-key"},
                    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                    "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [{"AttributeName": "env", "AttributeValue": "test"}]},
                    "RetryOptions": {"DurationInSeconds": 60},
                    "S3BackupMode": "FailedDataOnly",
                    "S3Configuration": s3_config("http-backup", name),
                },
            )
            described = self.fh.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
            http = described["Destinations"][0]["HttpEndpointDestinationDescription"]
            self.assertEqual(http["EndpointConfiguration"], {"Url": endpoint.url, "Name": "sink"})
            self.assertEqual(http["RequestConfiguration"]["ContentEncoding"], "GZIP")
            self.assertEqual(http["RetryOptions"], {"DurationInSeconds": 60})
            sent = [f"event-{i}".encode() for i in range(20)]
            self.fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": d} for d in sent[:10]])
            for d in sent[10:]:
                self.fh.put_record(DeliveryStreamName=name, Record={"Data": d})
            wait_for("every record at the endpoint", lambda: set(sent) <= set(endpoint.records()))
            requests = endpoint.requests
            self.assertGreaterEqual(len(requests), 3)
            # The two failed attempts were the same batch, sent again under the same request id.
            self.assertEqual(requests[0]["headers"]["x-amz-firehose-request-id"], requests[1]["headers"]["x-amz-firehose-request-id"])
            self.assertEqual(requests[0]["body"], requests[2]["body"])
            delivered = [base64.b64decode(r["data"]) for req in requests[2:] for r in req["body"]["records"]]
            self.assertEqual(delivered, sent, "after the retries, each record once and in order")
            for req in requests:
                h = req["headers"]
                self.assertEqual(req["path"], "/ingest?key=1")
                self.assertEqual(h["content-type"], "application/json")
                self.assertEqual(h["content-encoding"], "gzip")
                self.assertEqual(h["x-amz-firehose-protocol-version"], "1.0")
                self.assertEqual(h["x-amz-firehose-access-key"], "the-key")
                self.assertEqual(json.loads(h["x-amz-firehose-common-attributes"]), {"commonAttributes": {"env": "test"}})
                self.assertEqual(h["x-amz-firehose-source-arn"], f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}")
                self.assertEqual(req["body"]["requestId"], h["x-amz-firehose-request-id"])
                self.assertIsInstance(req["body"]["timestamp"], int)
            self.assertEqual(files_in(os.path.join(BUCKETS, "http-backup", name, "http-endpoint-failed")), [], "nothing failed for good")
        finally:
            endpoint.close()

    def test_an_endpoint_that_keeps_failing_ends_in_the_backup_directory(self):
        endpoint = Endpoint(answer=lambda n: 503)
        try:
            name = unique("down")
            self.fh.create_delivery_stream(
                DeliveryStreamName=name,
                HttpEndpointDestinationConfiguration={
                    "EndpointConfiguration": {"Url": endpoint.url},
                    "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
                    "RetryOptions": {"DurationInSeconds": 2},
                    "S3Configuration": s3_config("failed", name),
                },
            )
            self.fh.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"lost-1"}, {"Data": b"lost-2"}])
            directory = os.path.join(BUCKETS, "failed", name, "http-endpoint-failed")
            files = wait_for("the batch in the backup", lambda: files_in(directory))
            lines = [json.loads(l) for f in files for l in read(f).decode().splitlines()]
            self.assertEqual([base64.b64decode(l["rawData"]) for l in lines], [b"lost-1", b"lost-2"])
            self.assertEqual(lines[0]["errorCode"], "HttpEndpoint.DestinationException")
            self.assertIn("503", lines[0]["errorMessage"])
            self.assertGreaterEqual(lines[0]["attemptsMade"], 2, "retried before giving up")
            self.assertGreaterEqual(len(endpoint.requests), 2)
            self.assertEqual(len({r["headers"]["x-amz-firehose-request-id"] for r in endpoint.requests}), 1)
        finally:
            endpoint.close()

    def test_the_aws_cli_drives_a_delivery_stream(self):
        name = unique("cli")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION=REGION,
                   AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_PAGER="")
        cli = os.path.join(os.path.dirname(sys.executable), "aws")

        def run(*args):
            return subprocess.run([cli, "firehose", *args, "--endpoint-url", ENDPOINT, "--output", "json"],
                                  capture_output=True, text=True, env=env, timeout=60)

        def aws(*args):
            out = run(*args)
            self.assertEqual(out.returncode, 0, out.stderr)
            return json.loads(out.stdout) if out.stdout.strip() else {}

        created = aws("create-delivery-stream", "--delivery-stream-name", name,
                      "--s3-destination-configuration",
                      f"RoleARN={ROLE},BucketARN=arn:aws:s3:::cli,Prefix={name}/,BufferingHints={{SizeInMBs=1,IntervalInSeconds=0}}")
        self.assertTrue(created["DeliveryStreamARN"].endswith(f"deliverystream/{name}"))
        self.assertIn(name, aws("list-delivery-streams", "--limit", "10000")["DeliveryStreamNames"])
        described = aws("describe-delivery-stream", "--delivery-stream-name", name)["DeliveryStreamDescription"]
        self.assertEqual(described["DeliveryStreamStatus"], "ACTIVE")
        one = aws("put-record", "--delivery-stream-name", name, "--record", "Data=hello-from-the-cli")
        self.assertIn("RecordId", one)
        batch = aws("put-record-batch", "--delivery-stream-name", name, "--records", '[{"Data":"two"},{"Data":"three"}]')
        self.assertEqual(batch["FailedPutCount"], 0)
        directory = os.path.join(BUCKETS, "cli", name)
        content = wait_for("the CLI's records in files",
                           lambda: (lambda c: c if b"three" in c else None)(b"".join(read(f) for f in files_in(directory))))
        self.assertEqual(content, b"hello-from-the-clitwothree")
        aws("delete-delivery-stream", "--delivery-stream-name", name)
        out = run("describe-delivery-stream", "--delivery-stream-name", name)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("ResourceNotFoundException", out.stderr)


if __name__ == "__main__":
    unittest.main()
