"""AMQP 0-9-1 as pika sees it: a conformance suite written against the protocol's rules (the
0-9-1 specification and RabbitMQ's documented behaviour), not against weir's code.

Run by tests/amqp_clients.rs, which starts `weir serve --amqp 127.0.0.1:0` and passes the AMQP
address in WEIR_AMQP (host:port) and the HTTP endpoint in WEIR_ENDPOINT (for the cross-protocol
tests with boto3). Against RabbitMQ: `tests/clients/rabbitmq-reference.sh` (WEIR_ENDPOINT
unset, so the SQS tests skip). By hand: `WEIR_AMQP=127.0.0.1:5672
target/client-venv/bin/python -m unittest -v tests/clients/test_amqp.py`.

Waits are bounded (a deadline on a real socket), never open-ended.
"""

import decimal
import os
import socket
import struct
import time
import unittest
import uuid

import pika
from pika.exceptions import ChannelClosedByBroker, ConnectionClosedByBroker, UnroutableError

HOST, PORT = os.environ.get("WEIR_AMQP", "127.0.0.1:5672").rsplit(":", 1)
PORT = int(PORT)
ENDPOINT = os.environ.get("WEIR_ENDPOINT")
USER = os.environ.get("WEIR_AMQP_USER", "guest")
PASSWORD = os.environ.get("WEIR_AMQP_PASSWORD", "guest")
# With a CA file, AMQP is TLS on the same port (weir with --tls-cert) and the endpoint HTTPS.
CA = os.environ.get("WEIR_CA")
# Set by rabbitmq-reference.sh: where RabbitMQ's behaviour is allowed to differ in a detail
# the specification leaves open.
REFERENCE = os.environ.get("WEIR_AMQP_REFERENCE")

# Reply codes of the 0-9-1 specification.
NOT_FOUND = 404
ACCESS_REFUSED = 403
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
COMMAND_INVALID = 503
CHANNEL_ERROR = 504


def params(user=None, password=None, **kw):
    if CA:
        import ssl

        kw["ssl_options"] = pika.SSLOptions(ssl.create_default_context(cafile=CA), HOST)
    credentials = pika.PlainCredentials(user or USER, password or PASSWORD)
    return pika.ConnectionParameters(HOST, PORT, credentials=credentials, connection_attempts=3, retry_delay=0.2, **kw)


# How long a wait for something that must happen may take: long, because the suite runs on
# loaded machines (a 5 s wait for a delivery failed there); every such wait ends as soon as its
# condition holds, so a passing run costs nothing for it.
PATIENCE = 30.0


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def get_within(ch, queue, seconds=PATIENCE, auto_ack=False):
    """basic.get until a message comes or the deadline passes (deliveries are asynchronous)."""
    deadline = time.monotonic() + seconds
    while True:
        got = ch.basic_get(queue, auto_ack=auto_ack)
        if got[0] is not None or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def drain(ch, queue, seconds=1.0):
    """Bodies consumed (and acknowledged) until the queue stays quiet for `seconds`."""
    bodies = []
    for method, _props, body in ch.consume(queue, inactivity_timeout=seconds):
        if method is None:
            break
        bodies.append(body)
        ch.basic_ack(method.delivery_tag)
    ch.cancel()
    return bodies


class Base(unittest.TestCase):
    def setUp(self):
        self.conn = pika.BlockingConnection(params())
        self.ch = self.conn.channel()

    def tearDown(self):
        if self.conn.is_open:
            self.conn.close()

    def queue(self, **kw):
        return self.ch.queue_declare("", exclusive=True, **kw).method.queue

    def wait_for(self, condition, seconds=PATIENCE):
        """Processes events until `condition()` holds or the deadline passes."""
        deadline = time.monotonic() + seconds
        while not condition() and time.monotonic() < deadline:
            self.conn.process_data_events(time_limit=0.05)

    def assert_channel_closed(self, code, fn):
        with self.assertRaises(ChannelClosedByBroker) as caught:
            fn()
        self.assertEqual(caught.exception.reply_code, code, caught.exception)
        self.ch = self.conn.channel()


class Connection(unittest.TestCase):
    def test_tune_negotiates_the_lower_frame_max_channel_max_and_heartbeat(self):
        conn = pika.BlockingConnection(params(frame_max=8192, channel_max=16, heartbeat=7))
        try:
            self.assertEqual(conn._impl.params.frame_max, 8192)
            self.assertEqual(conn._impl.params.channel_max, 16)
            self.assertEqual(conn._impl.params.heartbeat, 7)
            ch = conn.channel()
            q = ch.queue_declare("", exclusive=True).method.queue
            # A body many times the frame size arrives whole, split into body frames.
            body = bytes(range(256)) * 400
            ch.basic_publish("", q, body)
            self.assertEqual(get_within(ch, q, auto_ack=True)[2], body)
        finally:
            conn.close()

    @unittest.skipUnless(os.environ.get("WEIR_AMQP_AUTH"), "the server checks credentials (--auth)")
    def test_wrong_credentials_are_refused(self):
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(params(password="not-" + PASSWORD))
        with self.assertRaises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(params(user="AKIANOBODY", password=PASSWORD))

    @unittest.skipIf(CA, "a raw socket speaks plain TCP")
    def test_a_wrong_protocol_header_is_answered_with_the_supported_one(self):
        with socket.create_connection((HOST, PORT), timeout=5) as s:
            s.sendall(b"AMQP\x00\x00\x08\x00")
            try:
                self.assertEqual(recv_exact(s, 8), b"AMQP\x00\x00\x09\x01")
                self.assertEqual(s.recv(1), b"", "the server closes the socket")
            except ConnectionResetError:
                # RabbitMQ writes the header and resets at once, which may discard the header
                # before it is read; weir closes in order.
                self.assertTrue(REFERENCE, "weir answers the header, then closes")

    @unittest.skipIf(CA, "a raw socket speaks plain TCP")
    def test_a_frame_without_its_end_octet_is_a_frame_error(self):
        with socket.create_connection((HOST, PORT), timeout=5) as s:
            raw_open(s)
            # A heartbeat frame whose end octet is 0x00 instead of 0xCE.
            s.sendall(struct.pack(">BHI", 8, 0, 0) + b"\x00")
            kind, channel, payload = read_frame(s)
            self.assertEqual((kind, channel, payload[:4]), (1, 0, struct.pack(">HH", 10, 50)), "connection.close")
            self.assertEqual(struct.unpack(">H", payload[4:6])[0], FRAME_ERROR)

    @unittest.skipIf(CA, "a raw socket speaks plain TCP")
    def test_a_method_on_an_unopened_channel_is_a_channel_error(self):
        with socket.create_connection((HOST, PORT), timeout=5) as s:
            raw_open(s)
            # queue.declare on channel 5, never opened.
            args = struct.pack(">H", 0) + short_str("q") + b"\x00" + struct.pack(">I", 0)
            send_method(s, 5, 50, 10, args)
            kind, channel, payload = read_frame(s)
            self.assertEqual(payload[:4], struct.pack(">HH", 10, 50), "connection.close")
            self.assertEqual(struct.unpack(">H", payload[4:6])[0], CHANNEL_ERROR)

    def test_many_channels_and_reopening_a_closed_one(self):
        conn = pika.BlockingConnection(params())
        try:
            chans = [conn.channel() for _ in range(20)]
            q = chans[0].queue_declare("", exclusive=True).method.queue
            for i, ch in enumerate(chans):
                ch.basic_publish("", q, str(i).encode())
            got = sorted(int(get_within(chans[0], q, auto_ack=True)[2]) for _ in chans)
            self.assertEqual(got, list(range(20)))
            n = chans[3].channel_number
            chans[3].close()
            again = conn.channel(n)
            self.assertTrue(again.is_open)
        finally:
            conn.close()


class Exchanges(Base):
    def test_direct_routes_on_the_exact_key(self):
        x = unique("direct")
        self.ch.exchange_declare(x, "direct")
        info, warn = self.queue(), self.queue()
        self.ch.queue_bind(info, x, "info")
        self.ch.queue_bind(warn, x, "warn")
        self.ch.queue_bind(warn, x, "error")
        for key in ["info", "warn", "error", "debug"]:
            self.ch.basic_publish(x, key, key.encode())
        self.assertEqual(drain(self.ch, info), [b"info"])
        self.assertEqual(drain(self.ch, warn), [b"warn", b"error"])

    def test_fanout_ignores_the_key(self):
        x = unique("fanout")
        self.ch.exchange_declare(x, "fanout")
        a, b = self.queue(), self.queue()
        self.ch.queue_bind(a, x, "whatever")
        self.ch.queue_bind(b, x)
        self.ch.basic_publish(x, "any.key", b"one")
        self.assertEqual(drain(self.ch, a), [b"one"])
        self.assertEqual(drain(self.ch, b), [b"one"])

    def test_topic_star_is_one_word_and_hash_any_number(self):
        x = unique("topic")
        self.ch.exchange_declare(x, "topic")
        star, hash_, both = self.queue(), self.queue(), self.queue()
        self.ch.queue_bind(star, x, "*.orange.*")
        self.ch.queue_bind(hash_, x, "lazy.#")
        self.ch.queue_bind(both, x, "*.*.rabbit")
        self.ch.queue_bind(both, x, "lazy.#")
        keys = ["quick.orange.rabbit", "lazy.orange.elephant", "lazy", "quick.orange.male.rabbit", "a.b"]
        for key in keys:
            self.ch.basic_publish(x, key, key.encode())
        self.assertEqual(drain(self.ch, star), [b"quick.orange.rabbit", b"lazy.orange.elephant"])
        self.assertEqual(drain(self.ch, hash_), [b"lazy.orange.elephant", b"lazy"])
        # A queue bound twice gets a message matching both bindings once.
        self.assertEqual(drain(self.ch, both), [b"quick.orange.rabbit", b"lazy.orange.elephant", b"lazy"])

    def test_headers_match_all_or_any(self):
        x = unique("headers")
        self.ch.exchange_declare(x, "headers")
        all_, any_ = self.queue(), self.queue()
        self.ch.queue_bind(all_, x, arguments={"x-match": "all", "format": "pdf", "type": "report"})
        self.ch.queue_bind(any_, x, arguments={"x-match": "any", "format": "pdf", "type": "report"})
        for n, headers in enumerate(
            [{"format": "pdf", "type": "report"}, {"format": "pdf"}, {"format": "zip", "type": "log"}, {}]
        ):
            self.ch.basic_publish(x, "", str(n).encode(), pika.BasicProperties(headers=headers))
        self.assertEqual(drain(self.ch, all_), [b"0"])
        self.assertEqual(drain(self.ch, any_), [b"0", b"1"])

    def test_default_exchange_routes_to_the_queue_named_by_the_key(self):
        q = self.queue()
        self.ch.basic_publish("", q, b"direct to queue")
        self.assertEqual(drain(self.ch, q), [b"direct to queue"])

    def test_the_predeclared_exchanges_exist(self):
        for name, kind in [("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic")]:
            self.ch.exchange_declare(name, kind, passive=True, durable=True)
            self.ch.exchange_declare(name, kind, durable=True)

    def test_redeclaring_with_another_type_is_precondition_failed(self):
        x = unique("x")
        self.ch.exchange_declare(x, "direct")
        self.ch.exchange_declare(x, "direct")
        self.assert_channel_closed(PRECONDITION_FAILED, lambda: self.ch.exchange_declare(x, "fanout"))

    def test_passive_declare_of_a_missing_exchange_is_not_found(self):
        self.assert_channel_closed(NOT_FOUND, lambda: self.ch.exchange_declare(unique("none"), passive=True))

    def test_publishing_to_a_missing_exchange_closes_the_channel_not_found(self):
        self.ch.basic_publish(unique("none"), "k", b"x")
        self.assert_channel_closed(NOT_FOUND, lambda: self.ch.queue_declare("", exclusive=True))

    def test_amq_prefix_is_reserved(self):
        self.assert_channel_closed(ACCESS_REFUSED, lambda: self.ch.exchange_declare("amq." + unique("mine"), "direct"))

    def test_an_unknown_exchange_type_is_a_connection_error(self):
        with self.assertRaises((ConnectionClosedByBroker, ChannelClosedByBroker)) as caught:
            self.ch.exchange_declare(unique("x"), "x-nonsense")
            self.conn.channel()
        self.assertEqual(caught.exception.reply_code, COMMAND_INVALID)

    def test_delete_removes_the_exchange_and_its_bindings(self):
        x = unique("gone")
        self.ch.exchange_declare(x, "fanout")
        q = self.queue()
        self.ch.queue_bind(q, x)
        self.ch.exchange_delete(x)
        self.assert_channel_closed(NOT_FOUND, lambda: self.ch.exchange_declare(x, passive=True))

    def test_unbind_stops_routing(self):
        x = unique("unbind")
        self.ch.exchange_declare(x, "direct")
        q = self.queue()
        self.ch.queue_bind(q, x, "k")
        self.ch.basic_publish(x, "k", b"before")
        self.ch.queue_unbind(q, x, "k")
        self.ch.basic_publish(x, "k", b"after")
        self.assertEqual(drain(self.ch, q), [b"before"])


class Queues(Base):
    def test_server_named_queues_start_with_amq_gen(self):
        q = self.queue()
        self.assertTrue(q.startswith("amq.gen-"), q)
        self.assertNotEqual(q, self.queue())

    def test_declare_ok_counts_messages_and_consumers(self):
        q = self.queue()
        self.ch.confirm_delivery()  # counted once confirmed
        for i in range(3):
            self.ch.basic_publish("", q, b"x")
        ok = self.ch.queue_declare(q, passive=True).method
        self.assertEqual((ok.queue, ok.message_count, ok.consumer_count), (q, 3, 0))

    def test_passive_declare_of_a_missing_queue_is_not_found(self):
        self.assert_channel_closed(NOT_FOUND, lambda: self.ch.queue_declare(unique("none"), passive=True))

    def test_an_exclusive_queue_is_locked_to_its_connection_and_goes_with_it(self):
        q = self.queue()
        other = pika.BlockingConnection(params())
        try:
            och = other.channel()
            with self.assertRaises(ChannelClosedByBroker) as caught:
                och.basic_consume(q, lambda *a: None)
            self.assertEqual(caught.exception.reply_code, RESOURCE_LOCKED)
            self.conn.close()
            och = other.channel()
            deadline = time.monotonic() + PATIENCE
            while True:
                try:
                    och.queue_declare(q, passive=True)
                except ChannelClosedByBroker as e:
                    self.assertEqual(e.reply_code, NOT_FOUND)
                    break
                self.assertLess(time.monotonic(), deadline, "the exclusive queue outlived its connection")
                time.sleep(0.05)
        finally:
            other.close()

    def test_auto_delete_goes_when_its_last_consumer_cancels(self):
        q = unique("auto")
        self.ch.queue_declare(q, auto_delete=True)
        tag = self.ch.basic_consume(q, lambda *a: None)
        self.ch.queue_declare(q, passive=True)
        self.ch.basic_cancel(tag)
        self.assert_channel_closed(NOT_FOUND, lambda: self.ch.queue_declare(q, passive=True))

    def test_redeclaring_with_other_arguments_is_precondition_failed(self):
        q = unique("args")
        self.ch.queue_declare(q, durable=True)
        try:
            self.ch.queue_declare(q, durable=True)
            self.assert_channel_closed(PRECONDITION_FAILED, lambda: self.ch.queue_declare(q, durable=False))
        finally:
            self.ch.queue_delete(q)

    def test_message_ttl_expires_messages(self):
        q = self.queue(arguments={"x-message-ttl": 1000})
        self.ch.confirm_delivery()
        self.ch.basic_publish("", q, b"short-lived")
        ok = self.ch.queue_declare(q, passive=True).method
        self.assertEqual(ok.message_count, 1)
        deadline = time.monotonic() + PATIENCE
        while self.ch.queue_declare(q, passive=True).method.message_count:
            self.assertLess(time.monotonic(), deadline, "the message outlived its TTL")
            time.sleep(0.05)
        self.assertEqual(self.ch.basic_get(q), (None, None, None))

    def test_max_length_drops_from_the_head(self):
        q = self.queue(arguments={"x-max-length": 2})
        for i in range(5):
            self.ch.basic_publish("", q, str(i).encode())
        self.assertEqual(drain(self.ch, q), [b"3", b"4"])

    def test_rejected_messages_go_to_the_dead_letter_exchange(self):
        dlx = unique("dlx")
        self.ch.exchange_declare(dlx, "fanout")
        dead = self.queue()
        self.ch.queue_bind(dead, dlx)
        q = self.queue(arguments={"x-dead-letter-exchange": dlx})
        self.ch.basic_publish("", q, b"bad")
        self.ch.basic_publish("", q, b"worse")
        m1 = get_within(self.ch, q)
        m2 = get_within(self.ch, q)
        self.ch.basic_reject(m1[0].delivery_tag, requeue=False)
        self.ch.basic_nack(m2[0].delivery_tag, requeue=False)
        self.assertEqual(drain(self.ch, dead), [b"bad", b"worse"])
        self.assertEqual(self.ch.basic_get(q), (None, None, None))

    def test_purge_and_delete_count_messages(self):
        q = self.queue()
        for _ in range(4):
            self.ch.basic_publish("", q, b"x")
        self.assertEqual(self.ch.queue_purge(q).method.message_count, 4)
        self.ch.basic_publish("", q, b"y")
        self.assertEqual(self.ch.queue_delete(q).method.message_count, 1)

    def test_delete_if_empty_refuses_a_queue_with_messages(self):
        q = self.queue()
        self.ch.basic_publish("", q, b"x")
        self.assert_channel_closed(PRECONDITION_FAILED, lambda: self.ch.queue_delete(q, if_empty=True))


class Publishing(Base):
    def test_properties_arrive_as_sent(self):
        q = self.queue()
        props = pika.BasicProperties(
            content_type="application/json",
            content_encoding="utf-8",
            headers={"n": 1, "s": "text", "b": True, "d": decimal.Decimal("1.5"), "nested": {"l": [1, "two"]}},
            delivery_mode=2,
            priority=3,
            correlation_id="corr",
            reply_to="replies",
            expiration="60000",
            message_id="mid",
            timestamp=1700000000,
            type="kind",
            user_id=USER,
            app_id="app",
        )
        self.ch.basic_publish("", q, b"{}", props)
        method, got, body = get_within(self.ch, q, auto_ack=True)
        self.assertEqual(body, b"{}")
        for field in [
            "content_type",
            "content_encoding",
            "headers",
            "delivery_mode",
            "priority",
            "correlation_id",
            "reply_to",
            "expiration",
            "message_id",
            "timestamp",
            "type",
            "user_id",
            "app_id",
        ]:
            self.assertEqual(getattr(got, field), getattr(props, field), field)
        self.assertEqual((method.exchange, method.routing_key, method.redelivered), ("", q, False))

    def test_an_empty_body_is_a_message(self):
        q = self.queue()
        self.ch.basic_publish("", q, b"")
        self.assertEqual(get_within(self.ch, q, auto_ack=True)[2], b"")

    def test_mandatory_unroutable_is_returned_with_no_route(self):
        self.ch.confirm_delivery()
        x = unique("nowhere")
        self.ch.exchange_declare(x, "direct")
        with self.assertRaises(UnroutableError) as caught:
            self.ch.basic_publish(x, "k", b"lost?", mandatory=True)
        returned = caught.exception.messages[0]
        self.assertEqual((returned.method.reply_code, returned.method.reply_text), (312, "NO_ROUTE"))
        self.assertEqual(returned.body, b"lost?")
        # Without mandatory an unroutable message is dropped silently.
        self.ch.basic_publish(x, "k", b"dropped")

    def test_confirms_ack_every_publish(self):
        self.ch.confirm_delivery()
        q = self.queue()
        for i in range(50):
            self.ch.basic_publish("", q, str(i).encode())
        self.assertEqual(self.ch.queue_declare(q, passive=True).method.message_count, 50)

    def test_user_id_must_be_the_connections_user(self):
        q = self.queue()
        self.ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="somebody-else"))
        self.assert_channel_closed(PRECONDITION_FAILED, lambda: self.ch.queue_declare("", exclusive=True))


class Consuming(Base):
    def test_get_then_ack_removes_and_reject_requeues_to_the_head_redelivered(self):
        q = self.queue()
        for body in [b"a", b"b", b"c"]:
            self.ch.basic_publish("", q, body)
        first = get_within(self.ch, q)
        self.assertEqual((first[2], first[0].redelivered, first[0].message_count), (b"a", False, 2))
        self.ch.basic_reject(first[0].delivery_tag, requeue=True)
        again = get_within(self.ch, q)
        self.assertEqual((again[2], again[0].redelivered), (b"a", True))
        self.ch.basic_ack(again[0].delivery_tag)
        self.assertEqual(drain(self.ch, q), [b"b", b"c"])

    def test_ack_multiple_acknowledges_every_earlier_tag(self):
        q = self.queue()
        for i in range(5):
            self.ch.basic_publish("", q, str(i).encode())
        tags = [get_within(self.ch, q)[0].delivery_tag for _ in range(5)]
        self.assertEqual(tags, sorted(tags))
        self.ch.basic_ack(tags[3], multiple=True)
        self.ch.close()
        self.ch = self.conn.channel()
        # Only the fifth was unacknowledged: closing the channel requeued it.
        self.assertEqual(drain(self.ch, q), [b"4"])

    def test_nack_multiple_requeues_in_order(self):
        q = self.queue()
        for i in range(4):
            self.ch.basic_publish("", q, str(i).encode())
        tags = [get_within(self.ch, q)[0].delivery_tag for _ in range(3)]
        self.ch.basic_nack(tags[-1], multiple=True, requeue=True)
        got = [get_within(self.ch, q, auto_ack=True) for _ in range(4)]
        self.assertEqual([g[2] for g in got], [b"0", b"1", b"2", b"3"])
        self.assertEqual([g[0].redelivered for g in got], [True, True, True, False])

    def test_an_unknown_delivery_tag_is_precondition_failed(self):
        self.ch.basic_ack(999)
        self.assert_channel_closed(PRECONDITION_FAILED, lambda: self.ch.queue_declare("", exclusive=True))

    def test_closing_a_channel_requeues_its_unacknowledged_deliveries(self):
        q = self.queue()
        for i in range(3):
            self.ch.basic_publish("", q, str(i).encode())
        got = []
        for method, _props, body in self.ch.consume(q, inactivity_timeout=1):
            if method is None:
                break
            got.append(body)
        self.assertEqual(got, [b"0", b"1", b"2"])
        self.ch.close()
        self.ch = self.conn.channel()
        redelivered = []
        for method, _props, body in self.ch.consume(q, inactivity_timeout=1):
            if method is None:
                break
            redelivered.append((body, method.redelivered))
            self.ch.basic_ack(method.delivery_tag)
        self.assertEqual(redelivered, [(b"0", True), (b"1", True), (b"2", True)])

    def test_prefetch_bounds_unacknowledged_deliveries(self):
        q = self.queue()
        for i in range(10):
            self.ch.basic_publish("", q, str(i).encode())
        self.ch.basic_qos(prefetch_count=3)
        held = []
        self.ch.basic_consume(q, lambda ch, m, p, b: held.append(m))
        self.wait_for(lambda: len(held) >= 3)
        self.conn.process_data_events(time_limit=0.5)
        self.assertEqual(len(held), 3, "three unacknowledged at most")
        self.ch.basic_ack(held[0].delivery_tag)
        self.wait_for(lambda: len(held) >= 4)
        self.conn.process_data_events(time_limit=0.5)
        self.assertEqual(len(held), 4, "one ack lets one more through")

    def test_cancel_stops_deliveries_and_consumers_wake_on_publish(self):
        q = self.queue()
        got = []
        tag = self.ch.basic_consume(q, lambda ch, m, p, b: got.append(b), auto_ack=True)
        self.conn.process_data_events(time_limit=0.3)
        self.assertEqual(got, [], "nothing yet")
        self.ch.basic_publish("", q, b"woken")
        deadline = time.monotonic() + PATIENCE
        while not got and time.monotonic() < deadline:
            self.conn.process_data_events(time_limit=0.1)
        self.assertEqual(got, [b"woken"])
        self.ch.basic_cancel(tag)
        self.ch.basic_publish("", q, b"after cancel")
        self.conn.process_data_events(time_limit=0.5)
        self.assertEqual(got, [b"woken"])
        self.assertEqual(get_within(self.ch, q, auto_ack=True)[2], b"after cancel")

    def test_an_exclusive_consumer_shuts_others_out(self):
        q = self.queue()
        self.ch.basic_consume(q, lambda *a: None, exclusive=True)
        other = self.conn.channel()
        with self.assertRaises(ChannelClosedByBroker) as caught:
            other.basic_consume(q, lambda *a: None)
        # RabbitMQ's answer to a second consumer of a queue in exclusive use.
        self.assertEqual(caught.exception.reply_code, ACCESS_REFUSED)


class Transactions(Base):
    def test_rollback_discards_publishes_and_acks_commit_applies_them(self):
        q = self.queue()
        self.ch.basic_publish("", q, b"kept")
        self.ch.tx_select()
        self.ch.basic_publish("", q, b"rolled back")
        self.ch.tx_rollback()
        self.assertEqual(self.ch.queue_declare(q, passive=True).method.message_count, 1)
        method, _p, body = get_within(self.ch, q)
        self.assertEqual(body, b"kept")
        self.ch.basic_ack(method.delivery_tag)
        self.ch.basic_publish("", q, b"committed")
        self.ch.tx_rollback()
        # The ack was rolled back too: the message is still unacknowledged here.
        self.ch.basic_ack(method.delivery_tag)
        self.ch.basic_publish("", q, b"committed")
        self.ch.tx_commit()
        self.assertEqual(self.ch.queue_declare(q, passive=True).method.message_count, 1)
        self.assertEqual(get_within(self.ch, q, auto_ack=True)[2], b"committed")

    def test_commit_without_select_is_precondition_failed(self):
        self.assert_channel_closed(PRECONDITION_FAILED, self.ch.tx_commit)

    def test_confirm_and_tx_do_not_mix(self):
        self.ch.confirm_delivery()
        self.assert_channel_closed(PRECONDITION_FAILED, self.ch.tx_select)


@unittest.skipUnless(ENDPOINT, "needs weir's SQS endpoint (WEIR_ENDPOINT)")
class CrossProtocol(Base):
    def sqs(self):
        import boto3

        return boto3.client(
            "sqs",
            endpoint_url=ENDPOINT,
            region_name="us-east-1",
            aws_access_key_id=os.environ.get("WEIR_AWS_KEY", "test"),
            aws_secret_access_key=os.environ.get("WEIR_AWS_SECRET", "test"),
            verify=CA if CA else None,
        )

    def test_amqp_publish_is_received_over_sqs(self):
        q = unique("cross-amqp")
        self.ch.queue_declare(q, durable=True)
        self.ch.confirm_delivery()
        self.ch.basic_publish("", q, b"from amqp", pika.BasicProperties(headers={"k": "v"}))
        sqs = self.sqs()
        url = sqs.get_queue_url(QueueName=q)["QueueUrl"]
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MessageAttributeNames=["All"])["Messages"]
        self.assertEqual(got[0]["Body"], "from amqp")
        sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
        self.assertEqual(self.ch.basic_get(q), (None, None, None))
        self.ch.queue_delete(q)

    def test_sqs_send_is_consumed_over_amqp(self):
        sqs = self.sqs()
        q = unique("cross-sqs")
        url = sqs.create_queue(QueueName=q)["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody="from sqs",
            MessageAttributes={"colour": {"DataType": "String", "StringValue": "blue"}},
        )
        self.ch.queue_declare(q, passive=True)
        method, props, body = get_within(self.ch, q)
        self.assertEqual(body, b"from sqs")
        self.assertEqual(props.headers.get("colour"), "blue")
        self.ch.basic_ack(method.delivery_tag)
        # basic.ack has no reply: the SQS side sees it once the server has handled the frame,
        # which a GetQueueAttributes on another connection may overtake. Wait for it.
        deadline = time.monotonic() + PATIENCE
        while True:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
            counts = (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"])
            if counts == ("0", "0") or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.assertEqual(counts, ("0", "0"), "the acknowledged message is gone for SQS too")
        sqs.delete_queue(QueueUrl=url)


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise EOFError(f"closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def short_str(text):
    data = text.encode()
    return struct.pack(">B", len(data)) + data


def long_str(data):
    return struct.pack(">I", len(data)) + data


def send_method(s, channel, class_id, method_id, args):
    payload = struct.pack(">HH", class_id, method_id) + args
    s.sendall(struct.pack(">BHI", 1, channel, len(payload)) + payload + b"\xce")


def raw_open(s):
    """The handshake by hand, without heartbeats: start, start-ok, tune, tune-ok, open."""
    s.sendall(b"AMQP\x00\x00\x09\x01")
    _, _, start = read_frame(s)
    assert start[:4] == struct.pack(">HH", 10, 10), start[:4]
    response = b"\x00" + USER.encode() + b"\x00" + PASSWORD.encode()
    send_method(s, 0, 10, 11, struct.pack(">I", 0) + short_str("PLAIN") + long_str(response) + short_str("en_US"))
    _, _, tune = read_frame(s)
    assert tune[:4] == struct.pack(">HH", 10, 30), tune[:4]
    # The server's channel-max and frame-max (asking for more is refused), no heartbeats.
    channel_max, frame_max, _heartbeat = struct.unpack(">HIH", tune[4:12])
    send_method(s, 0, 10, 31, struct.pack(">HIH", channel_max, frame_max, 0))
    send_method(s, 0, 10, 40, short_str("/") + short_str("") + b"\x00")
    _, _, open_ok = read_frame(s)
    assert open_ok[:4] == struct.pack(">HH", 10, 41), open_ok[:4]


def read_frame(s):
    kind, channel, size = struct.unpack(">BHI", recv_exact(s, 7))
    payload = recv_exact(s, size)
    assert recv_exact(s, 1) == b"\xce", "frame end octet"
    return kind, channel, payload


if __name__ == "__main__":
    unittest.main()
