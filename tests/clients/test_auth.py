"""`weir serve --auth FILE --tls-cert ... --tls-key ...` as real clients see it: boto3 and the
aws CLI over HTTPS (verify= / --ca-bundle the test's certificate), signing with botocore's own
SigV4 signer.

Run by tests/auth_clients.rs, which writes the credentials file and the certificate, starts
`weir serve`, and passes WEIR_ENDPOINT, WEIR_CA (the certificate), WEIR_CREDENTIALS (the
credentials file) and WEIR_PID (to send SIGHUP for a key rotation).
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest
import uuid

import boto3
import urllib3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["WEIR_ENDPOINT"]
CA = os.environ["WEIR_CA"]
CREDENTIALS = os.environ["WEIR_CREDENTIALS"]
PID = int(os.environ["WEIR_PID"])
REGION = "us-east-1"
OWNER = "111122223333"
OTHER = "444455556666"

ADMIN = ("AKIAADMIN00000001", "admin-secret")
SENDER = ("AKIASENDER0000001", "sender-secret")
BOB = ("AKIABOB0000000001", "bob-secret")


def client(key, verify=CA):
    return boto3.client(
        "sqs",
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        verify=verify,
        config=Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    return None, 200


class Response:
    def __init__(self, status, text):
        self.status, self.text = status, text


class Https(unittest.TestCase):
    def test_endpoint_is_https_and_the_certificate_is_checked(self):
        self.assertTrue(ENDPOINT.startswith("https://"), ENDPOINT)
        client(ADMIN).list_queues()
        # Without the test's CA the client refuses the server.
        with self.assertRaises(Exception) as caught:
            client(ADMIN, verify=True).list_queues()
        self.assertIn("SSL", type(caught.exception).__name__ + str(caught.exception))

    def test_alpn_offers_http2_and_http1(self):
        import socket
        import ssl
        from urllib.parse import urlparse
        host, port = urlparse(ENDPOINT).hostname, urlparse(ENDPOINT).port
        for offered, chosen in [(["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")]:
            context = ssl.create_default_context(cafile=CA)
            context.set_alpn_protocols(offered)
            with socket.create_connection((host, port), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname=host) as tls:
                    self.assertEqual(tls.selected_alpn_protocol(), chosen)

    def test_the_aws_cli_with_its_ca_bundle(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ADMIN[0], AWS_SECRET_ACCESS_KEY=ADMIN[1], AWS_DEFAULT_REGION=REGION)
        env.pop("AWS_SESSION_TOKEN", None)
        name = unique("cli")
        out = subprocess.run(
            [sys.executable, "-m", "awscli", "sqs", "create-queue", "--queue-name", name,
             "--endpoint-url", ENDPOINT, "--ca-bundle", CA, "--output", "json"],
            env=env, capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue(json.loads(out.stdout)["QueueUrl"].endswith(f"/{OWNER}/{name}"))
        denied = subprocess.run(
            [sys.executable, "-m", "awscli", "sqs", "list-queues", "--endpoint-url", ENDPOINT, "--ca-bundle", CA],
            env=dict(env, AWS_SECRET_ACCESS_KEY="wrong"), capture_output=True, text=True, timeout=60,
        )
        self.assertNotEqual(denied.returncode, 0)
        self.assertIn("SignatureDoesNotMatch", denied.stderr)


class Signatures(unittest.TestCase):
    def test_botocore_signer_signatures_verify(self):
        # Sign with botocore's own SigV4 signer, send with urllib3 (through botocore's session).
        creds = botocore.credentials.Credentials(*ADMIN)
        for body in ["Action=ListQueues&Version=2012-11-05", "Action=ListQueues&Version=2012-11-05&QueueNamePrefix=a%20b"]:
            request = botocore.awsrequest.AWSRequest(
                method="POST", url=ENDPOINT + "/", data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            )
            botocore.auth.SigV4Auth(creds, "sqs", REGION).add_auth(request)
            response = self.send(request)
            self.assertEqual(response.status, 200, response.text)
            # The same signature over another body is refused.
            request.data = body + "&x=1"
            response = self.send(request)
            self.assertEqual(response.status, 403, response.text)
            self.assertIn("SignatureDoesNotMatch", response.text)

    def test_botocore_presigned_url(self):
        creds = botocore.credentials.Credentials(*ADMIN)
        request = botocore.awsrequest.AWSRequest(method="GET", url=ENDPOINT + "/?Action=ListQueues&Version=2012-11-05")
        botocore.auth.SigV4QueryAuth(creds, "sqs", REGION, expires=60).add_auth(request)
        self.assertIn("X-Amz-Signature=", request.url)
        response = self.send(request)
        self.assertEqual(response.status, 200, response.text)
        self.assertIn("ListQueuesResponse", response.text)

    def send(self, request):
        # urllib3 (botocore's own HTTP library) with the test's CA; the request as signed.
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=CA)
        response = http.request(request.method, request.url, body=request.data, headers=dict(request.headers))
        return Response(response.status, response.data.decode())

    def test_errors_as_the_sdk_raises_them(self):
        self.assertEqual(error_code(lambda: client(("AKIANOBODY0000001", "x")).list_queues()), ("InvalidClientTokenId", 403))
        self.assertEqual(error_code(lambda: client((ADMIN[0], "wrong")).list_queues()), ("SignatureDoesNotMatch", 403))


class Authorization(unittest.TestCase):
    def test_allowed_and_denied_per_principal(self):
        admin, sender, bob = client(ADMIN), client(SENDER), client(BOB)
        url = admin.create_queue(QueueName=unique("authz"))["QueueUrl"]
        sender.send_message(QueueUrl=url, MessageBody="from the sender")
        self.assertEqual(error_code(lambda: sender.receive_message(QueueUrl=url)), ("AccessDenied", 403))
        self.assertEqual(error_code(lambda: sender.delete_queue(QueueUrl=url)), ("AccessDenied", 403))
        # Another account: denied until the queue's policy lets it in.
        self.assertEqual(error_code(lambda: bob.send_message(QueueUrl=url, MessageBody="x")), ("AccessDenied", 403))
        admin.add_permission(QueueUrl=url, Label="bob", AWSAccountIds=[OTHER], Actions=["SendMessage", "ReceiveMessage"])
        bob.send_message(QueueUrl=url, MessageBody="from bob")
        bodies = set()
        for _ in range(5):
            for m in bob.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                bodies.add(m["Body"])
            if len(bodies) == 2:
                break
        self.assertEqual(bodies, {"from the sender", "from bob"})
        self.assertEqual(error_code(lambda: bob.purge_queue(QueueUrl=url)), ("AccessDenied", 403))
        admin.remove_permission(QueueUrl=url, Label="bob")
        self.assertEqual(error_code(lambda: bob.send_message(QueueUrl=url, MessageBody="x")), ("AccessDenied", 403))
        # A queue policy set as a document, with a condition on the caller's address.
        policy = {"Version": "2012-10-17", "Statement": [{
            "Sid": "bob-from-loopback", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:user/bob"},
            "Action": "sqs:SendMessage", "Resource": admin.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"],
            "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]}
        admin.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        bob.send_message(QueueUrl=url, MessageBody="policy document")
        self.assertEqual(json.loads(admin.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]), policy)


class Rotation(unittest.TestCase):
    def test_sighup_rotates_keys(self):
        with open(CREDENTIALS) as f:
            doc = json.load(f)
        new_key = ("AKIAROTATED000001", "rotated-secret")
        rotated = json.loads(json.dumps(doc))
        for entry in rotated["credentials"]:
            if entry["access_key_id"] == SENDER[0]:
                entry["access_key_id"], entry["secret_access_key"] = new_key
        try:
            with open(CREDENTIALS + ".tmp", "w") as f:
                json.dump(rotated, f)
            os.replace(CREDENTIALS + ".tmp", CREDENTIALS)
            url = client(ADMIN).create_queue(QueueName=unique("rotate"))["QueueUrl"]
            client(SENDER).send_message(QueueUrl=url, MessageBody="old key, before the signal")
            os.kill(PID, signal.SIGHUP)
            deadline = time.time() + 10
            while error_code(lambda: client(SENDER).send_message(QueueUrl=url, MessageBody="x"))[0] != "InvalidClientTokenId":
                self.assertLess(time.time(), deadline, "the old key still works 10 s after SIGHUP")
                time.sleep(0.05)
            client(new_key).send_message(QueueUrl=url, MessageBody="new key")
        finally:
            with open(CREDENTIALS + ".tmp", "w") as f:
                json.dump(doc, f)
            os.replace(CREDENTIALS + ".tmp", CREDENTIALS)
            os.kill(PID, signal.SIGHUP)


if __name__ == "__main__":
    unittest.main()
