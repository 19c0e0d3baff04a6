"""STOMP 1.2 as stomp.py sees it: a conformance suite written against the protocol's rules
(the STOMP 1.2 specification), not against weir's code.

Run by tests/stomp_clients.rs, which starts `weir serve --stomp 127.0.0.1:0` and passes the
STOMP address in WEIR_STOMP (host:port), and the AMQP address in WEIR_AMQP for the
cross-protocol test (STOMP send, AMQP consume). Against RabbitMQ's STOMP plugin:
`tests/clients/rabbitmq-stomp-reference.sh`. By hand: `WEIR_STOMP=127.0.0.1:61613
target/client-venv/bin/python -m unittest -v tests/clients/test_stomp.py`.

Waits are bounded (a deadline on a real socket), never open-ended.
"""

import os
import socket
import ssl
import threading
import time
import unittest
import uuid

import stomp

HOST, PORT = os.environ.get("WEIR_STOMP", "127.0.0.1:61613").rsplit(":", 1)
PORT = int(PORT)
AMQP = os.environ.get("WEIR_AMQP")
USER = os.environ.get("WEIR_STOMP_USER", "guest")
PASSWORD = os.environ.get("WEIR_STOMP_PASSWORD", "guest")
# With a CA file, STOMP is TLS on the same port (weir with --tls-cert).
CA = os.environ.get("WEIR_CA")
# Set when the server checks credentials (weir with --auth, RabbitMQ always).
CHECKS_CREDENTIALS = os.environ.get("WEIR_STOMP_CHECKS_CREDENTIALS") == "1"

WAIT = 5.0
# How long a server may take to close the connection after an ERROR frame (RabbitMQ waits
# about 10 s; weir closes at once).
CLOSE_WAIT = 15.0
# "rabbitmq" when the suite runs against the reference broker: checks of what the spec says a
# server SHOULD do, and RabbitMQ does not, then apply to weir only.
REFERENCE = os.environ.get("WEIR_STOMP_REFERENCE")


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Recorder(stomp.ConnectionListener):
    """Collects what the server sends, with bounded waits."""

    def __init__(self):
        self.cond = threading.Condition()
        self.messages = []
        self.receipts = []
        self.errors = []
        self.connected = None
        self.heartbeats = 0
        self.disconnected = False

    def _add(self, attr, value):
        with self.cond:
            getattr(self, attr).append(value)
            self.cond.notify_all()

    def on_connected(self, frame):
        with self.cond:
            self.connected = frame
            self.cond.notify_all()

    def on_message(self, frame):
        self._add("messages", frame)

    def on_receipt(self, frame):
        self._add("receipts", frame.headers.get("receipt-id"))

    def on_error(self, frame):
        self._add("errors", frame)

    def on_heartbeat(self):
        with self.cond:
            self.heartbeats += 1
            self.cond.notify_all()

    def on_disconnected(self):
        with self.cond:
            self.disconnected = True
            self.cond.notify_all()

    def wait_for(self, predicate, seconds=WAIT):
        deadline = time.monotonic() + seconds
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def wait_messages(self, n, seconds=WAIT):
        """Waits for `n` messages, then takes every message received so far."""
        self.wait_for(lambda: len(self.messages) >= n, seconds)
        return self.take_messages()

    def take_messages(self):
        with self.cond:
            taken, self.messages = self.messages, []
            return taken


def connect(heartbeats=(0, 0), user=None, password=None, auto_decode=True):
    conn = stomp.Connection12([(HOST, PORT)], heartbeats=heartbeats, auto_decode=auto_decode, vhost="/")
    if CA:
        conn.set_ssl(for_hosts=[(HOST, PORT)], ca_certs=CA)
    rec = Recorder()
    conn.set_listener("recorder", rec)
    conn.connect(user or USER, password or PASSWORD, wait=True)
    return conn, rec


def raw_socket():
    s = socket.create_connection((HOST, PORT), timeout=WAIT)
    if CA:
        s = ssl.create_default_context(cafile=CA).wrap_socket(s, server_hostname=HOST)
    return s


def read_until_closed(s, seconds=CLOSE_WAIT):
    """Everything the server sends until it closes the connection (or the deadline)."""
    s.settimeout(seconds)
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ssl.SSLError, ConnectionResetError):
            break
        if not chunk:
            return data, True
        data += chunk
    return data, False


def read_frames(s, count, seconds=WAIT):
    """The first `count` frames (heart-beats skipped) the server sends, as bytes."""
    s.settimeout(seconds)
    data = b""
    deadline = time.monotonic() + seconds
    while data.lstrip(b"\r\n").count(b"\0") < count and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return [f.lstrip(b"\r\n") for f in data.split(b"\0")[:count]]


CONNECT = f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{USER}\npasscode:{PASSWORD}\n\n\0".encode()


class Base(unittest.TestCase):
    def setUp(self):
        self.conns = []

    def tearDown(self):
        for conn in self.conns:
            try:
                if conn.is_connected():
                    conn.disconnect()
            except Exception:
                pass

    def client(self, **kw):
        conn, rec = connect(**kw)
        self.conns.append(conn)
        return conn, rec

    def subscribe(self, conn, destination, ack="auto", sub_id=None, **headers):
        """Subscribes and waits for the receipt, so the subscription is live."""
        sub_id = sub_id or unique("sub")
        receipt = unique("r")
        rec = conn.get_listener("recorder")
        conn.subscribe(destination, sub_id, ack=ack, headers={"receipt": receipt, **headers})
        self.assertTrue(rec.wait_for(lambda: receipt in rec.receipts), "a receipt for SUBSCRIBE")
        return sub_id

    def send_confirmed(self, conn, destination, body, **headers):
        receipt = unique("r")
        rec = conn.get_listener("recorder")
        conn.send(destination, body, headers={"receipt": receipt, **headers})
        self.assertTrue(rec.wait_for(lambda: receipt in rec.receipts), "a receipt for SEND")

    def assertQuiet(self, rec, seconds=0.7):
        time.sleep(seconds)
        self.assertEqual([m.body for m in rec.take_messages()], [])


class Connecting(Base):
    def test_connect_negotiates_1_2_and_heart_beats_flow_from_the_server(self):
        conn, rec = self.client(heartbeats=(1000, 1000))
        self.assertTrue(rec.wait_for(lambda: rec.connected is not None))
        self.assertEqual(rec.connected.headers.get("version"), "1.2")
        sx, sy = (int(x) for x in rec.connected.headers["heart-beat"].split(","))
        self.assertGreater(sx, 0)
        self.assertGreater(sy, 0)
        self.assertTrue(rec.wait_for(lambda: rec.heartbeats >= 1, seconds=max(sx, 1000) / 1000 * 3 + 1))
        # The client's beats keep the connection open past the interval the server expects.
        time.sleep(max(sy, 1000) / 1000 * 2.5)
        self.assertTrue(conn.is_connected())
        self.send_confirmed(conn, f"/queue/{unique('hb')}", "still here")

    def test_a_client_silent_past_its_heart_beats_is_disconnected(self):
        s = raw_socket()
        s.sendall(f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{USER}\npasscode:{PASSWORD}\nheart-beat:1000,0\n\n\0".encode())
        (frame,) = read_frames(s, 1)
        self.assertTrue(frame.startswith(b"CONNECTED\n"), frame)
        expect = int(frame.split(b"heart-beat:", 1)[1].split(b"\n", 1)[0].split(b",")[1])
        self.assertGreaterEqual(expect, 1000)
        # Promised a beat at least every second, then silent: the server gives up on it.
        _, closed = read_until_closed(s, seconds=expect / 1000 * 4 + 2)
        self.assertTrue(closed, "the server closed the connection")

    def test_an_unknown_version_is_an_error(self):
        s = raw_socket()
        s.sendall(b"CONNECT\naccept-version:9.9\nhost:/\n\n\0")
        data, closed = read_until_closed(s)
        self.assertTrue(data.startswith(b"ERROR\n"), data)
        self.assertTrue(closed)

    def test_stomp_is_another_name_for_connect_and_1_0_is_served(self):
        s = raw_socket()
        s.sendall(f"STOMP\naccept-version:1.0,1.1\nhost:/\nlogin:{USER}\npasscode:{PASSWORD}\n\n\0".encode())
        (frame,) = read_frames(s, 1)
        self.assertTrue(frame.startswith(b"CONNECTED\n"), frame)
        self.assertIn(b"\nversion:1.1\n", frame)
        s.close()

    @unittest.skipUnless(CHECKS_CREDENTIALS, "the server accepts any credentials")
    def test_wrong_credentials_are_an_error(self):
        s = raw_socket()
        s.sendall(f"CONNECT\naccept-version:1.2\nhost:/\nlogin:{USER}\npasscode:wrong\n\n\0".encode())
        data, closed = read_until_closed(s)
        self.assertTrue(data.startswith(b"ERROR\n"), data)
        self.assertTrue(closed)

    def test_disconnect_with_a_receipt_is_answered(self):
        conn, rec = connect()
        conn.disconnect(receipt="bye-1")
        self.assertTrue(rec.wait_for(lambda: "bye-1" in rec.receipts))


class Messaging(Base):
    def test_a_queue_delivers_body_and_headers_in_order(self):
        conn, rec = self.client()
        q = f"/queue/{unique('q')}"
        for i in range(5):
            self.send_confirmed(conn, q, f"m{i}", **{"x-color": "red", "content-type": "text/plain"})
        sub = self.subscribe(conn, q)
        got = rec.wait_messages(5)
        self.assertEqual([m.body for m in got], [f"m{i}" for i in range(5)])
        first = got[0].headers
        self.assertEqual(first["destination"], q)
        self.assertEqual(first["subscription"], sub)
        self.assertIn("message-id", first)
        self.assertEqual(first["x-color"], "red")
        self.assertEqual(first["content-type"], "text/plain")

    def test_header_values_are_escaped_both_ways(self):
        conn, rec = self.client()
        q = f"/queue/{unique('esc')}"
        value = "a:b\nc\\d"
        self.send_confirmed(conn, q, "x", **{"x-odd": value})
        self.subscribe(conn, q)
        (m,) = rec.wait_messages(1)
        self.assertEqual(m.headers["x-odd"], value)

    def test_bodies_with_nul_bytes_travel_with_content_length(self):
        conn, rec = self.client(auto_decode=False)
        q = f"/queue/{unique('bin')}"
        body = b"\x00\x01binary\x00\xff"
        self.send_confirmed(conn, q, body)
        self.subscribe(conn, q)
        (m,) = rec.wait_messages(1)
        self.assertEqual(m.body, body)
        self.assertEqual(int(m.headers["content-length"]), len(body))

    def test_a_repeated_header_keeps_its_first_value(self):
        q = f"/queue/{unique('rep')}"
        s = raw_socket()
        s.sendall(CONNECT)
        read_frames(s, 1)
        s.sendall(f"SEND\ndestination:{q}\nx-dup:first\nx-dup:second\nreceipt:r1\n\nbody\0".encode())
        s.sendall(f"SUBSCRIBE\ndestination:{q}\nid:0\n\n\0".encode())
        frames = read_frames(s, 2)
        message = [f for f in frames if f.startswith(b"MESSAGE\n")]
        self.assertEqual(len(message), 1, frames)
        headers = message[0].split(b"\n\n", 1)[0].split(b"\n")
        self.assertIn(b"x-dup:first", headers)
        self.assertNotIn(b"x-dup:second", headers)
        s.close()

    def assertErrorThenClosed(self, s):
        """The next frame is an ERROR, and then the server closes the connection (the spec's
        MUST for a frame it cannot process; RabbitMQ keeps the connection open after these
        errors, so against it only the ERROR is checked)."""
        (frame,) = read_frames(s, 1)
        self.assertTrue(frame.startswith(b"ERROR\n"), frame)
        if REFERENCE != "rabbitmq":
            _, closed = read_until_closed(s)
            self.assertTrue(closed, "the server closed the connection after ERROR")
        return frame

    def test_a_malformed_frame_is_an_error_then_the_connection_closes(self):
        s = raw_socket()
        s.sendall(CONNECT)
        read_frames(s, 1)
        s.sendall(b"BOGUS\nreceipt:77\n\n\0")
        self.assertErrorThenClosed(s)

    def test_a_send_without_destination_is_an_error_naming_the_receipt(self):
        s = raw_socket()
        s.sendall(CONNECT)
        read_frames(s, 1)
        s.sendall(b"SEND\nreceipt:r-9\n\nx\0")
        frame = self.assertErrorThenClosed(s)
        if REFERENCE != "rabbitmq":
            # A SHOULD of the spec (RabbitMQ leaves it out).
            self.assertIn(b"receipt-id:r-9", frame)

    @unittest.skipIf(REFERENCE == "rabbitmq", "the limit is weir's own (RabbitMQ waits for more)")
    def test_an_oversized_header_section_is_an_error_then_the_connection_closes(self):
        s = raw_socket()
        s.sendall(CONNECT)
        read_frames(s, 1)
        # Over weir's header limit (64 KiB), and no end of headers yet.
        s.sendall(b"SEND\ndestination:/queue/x\n" + b"x-big:" + b"y" * (256 << 10))
        self.assertErrorThenClosed(s)

    def test_a_topic_reaches_every_subscriber_and_stops_at_unsubscribe(self):
        t = f"/topic/{unique('t')}"
        a, ra = self.client()
        b, rb = self.client()
        sa = self.subscribe(a, t)
        self.subscribe(b, t)
        pub, _ = self.client()
        self.send_confirmed(pub, t, "hello all")
        got_a = ra.wait_messages(1)
        self.assertEqual([m.body for m in got_a], ["hello all"])
        self.assertEqual(got_a[0].headers["destination"], t)
        self.assertEqual([m.body for m in rb.wait_messages(1)], ["hello all"])
        a.unsubscribe(sa, headers={"receipt": "u1"})
        self.assertTrue(ra.wait_for(lambda: "u1" in ra.receipts))
        self.send_confirmed(pub, t, "only b")
        self.assertEqual([m.body for m in rb.wait_messages(1)], ["only b"])
        self.assertQuiet(ra)


class Acknowledging(Base):
    def test_client_individual_ack_and_nack_requeues(self):
        conn, rec = self.client()
        q = f"/queue/{unique('ci')}"
        for i in range(3):
            self.send_confirmed(conn, q, f"m{i}")
        self.subscribe(conn, q, ack="client-individual")
        got = rec.wait_messages(3)
        self.assertEqual([m.body for m in got], ["m0", "m1", "m2"])
        conn.ack(got[0].headers["ack"])
        conn.ack(got[2].headers["ack"])
        conn.nack(got[1].headers["ack"])
        (again,) = rec.wait_messages(1)
        self.assertEqual(again.body, "m1")
        self.assertEqual(again.headers.get("redelivered"), "true")
        conn.ack(again.headers["ack"], receipt="done")
        self.assertTrue(rec.wait_for(lambda: "done" in rec.receipts))
        self.assertQuiet(rec)

    def test_unacknowledged_messages_come_back_after_the_connection_ends(self):
        q = f"/queue/{unique('back')}"
        conn, rec = connect()
        for i in range(3):
            self.send_confirmed(conn, q, f"m{i}")
        self.subscribe(conn, q, ack="client")
        got = rec.wait_messages(3)
        # Cumulative: acknowledging the first settles it alone, the rest stays unacknowledged.
        conn.ack(got[0].headers["ack"], receipt="a1")
        self.assertTrue(rec.wait_for(lambda: "a1" in rec.receipts))
        conn.disconnect()
        again, rec2 = self.client()
        self.subscribe(again, q, ack="client")
        back = rec2.wait_messages(2)
        self.assertEqual(sorted(m.body for m in back), ["m1", "m2"])
        # Acknowledging the last acknowledges every one before it.
        last = back[-1]
        again.ack(last.headers["ack"], receipt="a2")
        self.assertTrue(rec2.wait_for(lambda: "a2" in rec2.receipts))
        again.disconnect()
        third, rec3 = self.client()
        self.subscribe(third, q, ack="client")
        self.assertQuiet(rec3)

    def test_an_unknown_ack_id_is_an_error(self):
        conn, rec = connect()
        conn.ack("no-such-id", receipt="x")
        self.assertTrue(rec.wait_for(lambda: rec.errors))


class Transactions(Base):
    def test_sends_are_applied_at_commit_and_dropped_at_abort(self):
        conn, rec = self.client()
        q = f"/queue/{unique('tx')}"
        self.subscribe(conn, q)
        tx = conn.begin()
        conn.send(q, "in tx 1", transaction=tx)
        conn.send(q, "in tx 2", transaction=tx)
        self.assertQuiet(rec)
        conn.commit(tx)
        self.assertEqual([m.body for m in rec.wait_messages(2)], ["in tx 1", "in tx 2"])
        tx2 = conn.begin()
        conn.send(q, "aborted", transaction=tx2)
        conn.abort(tx2)
        self.send_confirmed(conn, q, "after")
        self.assertEqual([m.body for m in rec.wait_messages(1)], ["after"])

    def test_acks_are_applied_at_commit_and_undone_at_abort(self):
        q = f"/queue/{unique('txack')}"
        conn, rec = connect()
        self.send_confirmed(conn, q, "keep")
        self.send_confirmed(conn, q, "gone")
        self.subscribe(conn, q, ack="client-individual")
        keep, gone = rec.wait_messages(2)
        t1 = conn.begin()
        conn.ack(keep.headers["ack"], transaction=t1)
        conn.abort(t1)
        t2 = conn.begin()
        conn.ack(gone.headers["ack"], transaction=t2)
        conn.commit(t2, headers={"receipt": "c2"})
        self.assertTrue(rec.wait_for(lambda: "c2" in rec.receipts))
        conn.disconnect()
        again, rec2 = self.client()
        self.subscribe(again, q, ack="client-individual")
        self.assertEqual([m.body for m in rec2.wait_messages(1)], ["keep"])
        self.assertQuiet(rec2)

    def test_an_unknown_transaction_is_an_error(self):
        conn, rec = connect()
        conn.commit("never-begun")
        self.assertTrue(rec.wait_for(lambda: rec.errors))


@unittest.skipUnless(AMQP, "no AMQP listener given (WEIR_AMQP)")
class CrossProtocol(Base):
    def test_a_stomp_send_is_consumed_over_amqp(self):
        import pika

        name = unique("cross")
        conn, _ = self.client()
        self.send_confirmed(conn, f"/queue/{name}", "from stomp", **{"content-type": "text/plain"})
        host, port = AMQP.rsplit(":", 1)
        params = pika.ConnectionParameters(host, int(port), credentials=pika.PlainCredentials(USER, PASSWORD))
        amqp = pika.BlockingConnection(params)
        try:
            ch = amqp.channel()
            deadline = time.monotonic() + WAIT
            method = None
            while method is None and time.monotonic() < deadline:
                method, _props, body = ch.basic_get(name, auto_ack=False)
                if method is None:
                    time.sleep(0.02)
            self.assertIsNotNone(method, "the message reached the queue")
            self.assertEqual(body, b"from stomp")
            ch.basic_ack(method.delivery_tag)
        finally:
            amqp.close()


if __name__ == "__main__":
    unittest.main()
