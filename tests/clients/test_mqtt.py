"""MQTT 3.1.1 and 5 as paho-mqtt sees it, written against the protocol's rules (OASIS MQTT
3.1.1 and 5.0), so the same suite passes against any conforming broker.

Run by tests/mqtt_clients.rs against `weir serve --mqtt` (MQTT_HOST/MQTT_PORT), and against
Mosquitto by tests/clients/mosquitto.sh. By hand: `MQTT_PORT=1883 target/client-venv/bin/python
-m unittest -v tests/clients/test_mqtt.py`.
"""

import os
import queue
import socket
import struct
import time
import unittest
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

HOST = os.environ.get("MQTT_HOST", "127.0.0.1")
PORT = int(os.environ.get("MQTT_PORT", "1883"))
# With a CA file the port speaks TLS (weir with --tls-cert); with a user every client logs in
# (weir with --auth: an access key id and its secret).
CA = os.environ.get("MQTT_CA")
USER = os.environ.get("MQTT_USER")
PASSWORD = os.environ.get("MQTT_PASSWORD")
RAW = not CA and not USER
WAIT = 10.0
VERSIONS = {"3.1.1": mqtt.MQTTv311, "5": mqtt.MQTTv5}


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Peer:
    """A paho client whose callbacks feed queues, with blocking helpers."""

    def __init__(self, version, client_id=None, clean=True, will=None, expiry=None, username=None):
        self.version = version
        self.client_id = client_id or unique("c")
        kwargs = {}
        if version == mqtt.MQTTv311:
            kwargs["clean_session"] = clean
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=version, **kwargs
        )
        if username is not None or USER:
            self.client.username_pw_set(username or USER, PASSWORD if username is None else "wrong")
        if CA:
            self.client.tls_set(ca_certs=CA)
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.unsubacks = queue.Queue()
        self.acked = queue.Queue()
        self.disconnects = queue.Queue()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = lambda c, u, flags, rc, props: self.connacks.put((flags, rc, props))
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self.subacks.put(rcs)
        self.client.on_unsubscribe = lambda c, u, mid, rcs, props: self.unsubacks.put(rcs)
        self.client.on_publish = lambda c, u, mid, rc, props: self.acked.put((mid, rc))
        self.client.on_disconnect = lambda c, u, flags, rc, props: self.disconnects.put(rc)
        if will:
            topic, payload, qos, retain = will
            self.client.will_set(topic, payload, qos=qos, retain=retain)
        self.clean = clean
        self.expiry = expiry

    def connect(self):
        props = None
        kwargs = {}
        if self.version == mqtt.MQTTv5:
            kwargs["clean_start"] = self.clean
            if self.expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.expiry
        self.client.connect(HOST, PORT, keepalive=30, properties=props, **kwargs)
        self.client.loop_start()
        flags, rc, props = self.connacks.get(timeout=WAIT)
        return flags, rc, props

    def subscribe(self, *filters, qos=1, options=None):
        if self.version == mqtt.MQTTv5:
            opts = options or SubscribeOptions(qos=qos)
            self.client.subscribe([(f, opts) for f in filters])
        else:
            self.client.subscribe([(f, qos) for f in filters])
        return self.subacks.get(timeout=WAIT)

    def publish(self, topic, payload, qos=1, retain=False, wait=True):
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if wait and qos > 0:
            info.wait_for_publish(timeout=WAIT)
            self.test_ok(info.is_published(), f"publish to {topic} not acknowledged")
        return info

    @staticmethod
    def test_ok(cond, msg):
        if not cond:
            raise AssertionError(msg)

    def take(self, n, timeout=WAIT):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(got)} of {n} messages arrived: {[m.payload for m in got]}")
            try:
                got.append(self.messages.get(timeout=left))
            except queue.Empty:
                pass
        return got

    def nothing_more(self, within=0.5):
        try:
            m = self.messages.get(timeout=within)
        except queue.Empty:
            return
        raise AssertionError(f"unexpected message {m.topic} {m.payload!r}")

    def disconnect(self):
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self):
        """Closes the socket without DISCONNECT (a lost connection)."""
        self.client.loop_stop()
        self.client.socket().close()


def rc_value(rc):
    return rc.value if hasattr(rc, "value") else int(rc)


class Both:
    """Mixin: each test runs in MQTT 3.1.1 and in 5."""

    def each_version(self, body):
        for name, version in VERSIONS.items():
            with self.subTest(version=name):
                body(version)


class PublishSubscribe(unittest.TestCase, Both):
    def test_every_qos_round_trips(self):
        def body(v):
            topic = unique("t")
            sub = Peer(v)
            sub.connect()
            self.assertEqual([rc_value(r) for r in sub.subscribe(topic, qos=2)], [2])
            pub = Peer(v)
            pub.connect()
            for qos in (0, 1, 2):
                pub.publish(topic, f"m{qos}".encode(), qos=qos)
            got = sub.take(3)
            self.assertEqual(sorted((m.payload, m.qos) for m in got), [(b"m0", 0), (b"m1", 1), (b"m2", 2)])
            for m in got:
                self.assertEqual(m.topic, topic)
                self.assertFalse(m.retain)
            sub.nothing_more()
            pub.disconnect()
            sub.disconnect()

        self.each_version(body)

    def test_delivery_qos_is_the_lower_of_publish_and_subscription(self):
        def body(v):
            topic = unique("t")
            sub = Peer(v)
            sub.connect()
            sub.subscribe(topic, qos=1)
            pub = Peer(v)
            pub.connect()
            pub.publish(topic, b"two", qos=2)
            pub.publish(topic, b"zero", qos=0)
            got = {m.payload: m.qos for m in sub.take(2)}
            self.assertEqual(got, {b"two": 1, b"zero": 0})
            pub.disconnect()
            sub.disconnect()

        self.each_version(body)

    def test_wildcards_match_levels(self):
        def body(v):
            root = unique("w")
            sub = Peer(v)
            sub.connect()
            sub.subscribe(f"{root}/+/temp", f"{root}/b/#", qos=1)
            pub = Peer(v)
            pub.connect()
            for t in [f"{root}/a/temp", f"{root}/a/b/temp", f"{root}/b", f"{root}/b/x/y", f"{root}/c/hum", root]:
                pub.publish(t, t.encode())
            got = sorted(m.topic for m in sub.take(3))
            self.assertEqual(got, sorted([f"{root}/a/temp", f"{root}/b", f"{root}/b/x/y"]))
            sub.nothing_more()
            pub.disconnect()
            sub.disconnect()

        self.each_version(body)

    def test_a_multi_level_wildcard_does_not_match_dollar_topics(self):
        # Spec 4.7.2: `#` and `+` at the first level do not match topics starting with `$`.
        sub = Peer(mqtt.MQTTv311)
        sub.connect()
        sub.subscribe("#", qos=0)
        pub = Peer(mqtt.MQTTv311)
        pub.connect()
        marker = unique("m")
        pub.publish(f"$weirtest/{marker}", b"dollar", qos=1)
        pub.publish(marker, b"plain", qos=1)
        deadline = time.monotonic() + WAIT
        seen = []
        while time.monotonic() < deadline:
            m = sub.take(1)[0]
            seen.append(m.topic)
            if m.topic == marker:
                break
        self.assertIn(marker, seen)
        self.assertNotIn(f"$weirtest/{marker}", seen)
        pub.disconnect()
        sub.disconnect()

    def test_unsubscribe_stops_deliveries(self):
        def body(v):
            topic = unique("u")
            sub = Peer(v)
            sub.connect()
            sub.subscribe(topic, qos=1)
            sub.client.unsubscribe(topic)
            sub.unsubacks.get(timeout=WAIT)
            pub = Peer(v)
            pub.connect()
            pub.publish(topic, b"after")
            sub.nothing_more()
            pub.disconnect()
            sub.disconnect()

        self.each_version(body)


class Retained(unittest.TestCase, Both):
    def test_a_new_subscriber_gets_the_last_retained_message(self):
        def body(v):
            topic = unique("r")
            pub = Peer(v)
            pub.connect()
            pub.publish(topic, b"old", qos=1, retain=True)
            pub.publish(topic, b"new", qos=1, retain=True)
            sub = Peer(v)
            sub.connect()
            sub.subscribe(topic, qos=1)
            [m] = sub.take(1)
            self.assertEqual((m.payload, bool(m.retain)), (b"new", True))
            sub.nothing_more()
            # A live subscriber gets later publishes without the retain flag.
            pub.publish(topic, b"live", qos=1, retain=True)
            [m] = sub.take(1)
            self.assertEqual((m.payload, bool(m.retain)), (b"live", False))
            # An empty retained payload clears the topic.
            pub.publish(topic, b"", qos=1, retain=True)
            sub.take(1)
            late = Peer(v)
            late.connect()
            late.subscribe(topic, qos=1)
            late.nothing_more()
            for p in (pub, sub, late):
                p.disconnect()

        self.each_version(body)


class Wills(unittest.TestCase, Both):
    def test_a_lost_connection_publishes_its_will(self):
        def body(v):
            topic = unique("will")
            watcher = Peer(v)
            watcher.connect()
            watcher.subscribe(topic, qos=1)
            dying = Peer(v, will=(topic, b"gone", 1, False))
            dying.connect()
            dying.drop()
            [m] = watcher.take(1)
            self.assertEqual(m.payload, b"gone")
            watcher.disconnect()

        self.each_version(body)

    def test_a_clean_disconnect_discards_the_will(self):
        def body(v):
            topic = unique("will")
            watcher = Peer(v)
            watcher.connect()
            watcher.subscribe(topic, qos=1)
            leaving = Peer(v, will=(topic, b"gone", 1, False))
            leaving.connect()
            leaving.disconnect()
            watcher.nothing_more(within=1.0)
            watcher.disconnect()

        self.each_version(body)


class MessageExpiry(unittest.TestCase):
    def test_a_message_waits_no_longer_than_its_expiry_interval(self):
        # Spec 3.3.2.3.3: once its Message Expiry Interval has passed, a message not yet sent
        # to a subscriber is not sent; one sent carries the interval minus the time it waited.
        cid, topic = unique("mx"), unique("mxt")
        sub = Peer(mqtt.MQTTv5, client_id=cid, clean=False, expiry=300)
        sub.connect()
        sub.subscribe(topic, qos=1)
        sub.disconnect()
        pub = Peer(mqtt.MQTTv5)
        pub.connect()
        for payload, interval in ((b"short", 1), (b"long", 100)):
            props = Properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = interval
            info = pub.client.publish(topic, payload, qos=1, properties=props)
            info.wait_for_publish(timeout=WAIT)
        pub.disconnect()
        time.sleep(2.2)  # the short one's interval passes while it waits in the session
        sub = Peer(mqtt.MQTTv5, client_id=cid, clean=False, expiry=300)
        sub.connect()
        got = sub.take(1)
        self.assertEqual(got[0].payload, b"long")
        left = got[0].properties.MessageExpiryInterval
        self.assertTrue(95 <= left <= 98, f"interval forwarded after a wait of 2.2 s: {left}")
        sub.nothing_more()
        sub.disconnect()
        end = Peer(mqtt.MQTTv5, client_id=cid, clean=True)
        end.connect()
        end.disconnect()


class WillDelay(unittest.TestCase):
    def lost_with_delayed_will(self, topic, delay):
        cid = unique("wd")
        c = Peer(mqtt.MQTTv5, client_id=cid, clean=True, expiry=60)
        props = Properties(PacketTypes.WILLMESSAGE)
        props.WillDelayInterval = delay
        c.client.will_set(topic, b"gone", qos=1, properties=props)
        c.connect()
        c.drop()
        return cid

    def watcher(self, topic):
        w = Peer(mqtt.MQTTv5)
        w.connect()
        w.subscribe(topic, qos=1)
        return w

    def test_a_will_waits_for_its_delay(self):
        # Spec 3.1.3.2.2: the server delays the will until the Will Delay Interval has passed.
        topic = unique("wdt")
        w = self.watcher(topic)
        self.lost_with_delayed_will(topic, 2)
        w.nothing_more(within=1.0)
        self.assertEqual([m.payload for m in w.take(1)], [b"gone"])
        w.disconnect()

    def test_a_will_is_not_published_when_the_client_comes_back_within_its_delay(self):
        topic = unique("wdt")
        w = self.watcher(topic)
        cid = self.lost_with_delayed_will(topic, 2)
        back = Peer(mqtt.MQTTv5, client_id=cid, clean=False, expiry=60)
        back.connect()
        w.nothing_more(within=3.5)
        back.disconnect()
        w.nothing_more(within=0.5)
        w.disconnect()
        end = Peer(mqtt.MQTTv5, client_id=cid, clean=True)
        end.connect()
        end.disconnect()


class Sessions(unittest.TestCase, Both):
    def persistent(self, v, cid, clean=False):
        return Peer(v, client_id=cid, clean=clean, expiry=3600 if v == mqtt.MQTTv5 else None)

    def test_a_persistent_session_keeps_subscriptions_and_messages(self):
        def body(v):
            cid, topic = unique("p"), unique("pt")
            # 3.1.1 keeps a session only without Clean Session; 5 by its expiry interval.
            first = self.persistent(v, cid, clean=(v == mqtt.MQTTv5))
            flags, rc, _ = first.connect()
            self.assertFalse(flags.session_present)
            first.subscribe(topic, qos=1)
            first.disconnect()
            pub = Peer(v)
            pub.connect()
            for i in range(5):
                pub.publish(topic, f"{i}".encode(), qos=1)
            pub.disconnect()
            again = self.persistent(v, cid)
            flags, rc, _ = again.connect()
            self.assertTrue(flags.session_present)
            got = sorted(m.payload for m in again.take(5))
            self.assertEqual(got, [b"0", b"1", b"2", b"3", b"4"])
            again.nothing_more()
            again.disconnect()
            # Clean up: a clean connection that ends the session.
            end = Peer(v, client_id=cid, clean=True)
            end.connect()
            end.disconnect()

        self.each_version(body)

    def test_a_clean_session_starts_empty(self):
        def body(v):
            cid, topic = unique("c"), unique("ct")
            first = self.persistent(v, cid, clean=True)
            first.connect()
            first.subscribe(topic, qos=1)
            first.disconnect()
            fresh = Peer(v, client_id=cid, clean=True)
            flags, _, _ = fresh.connect()
            self.assertFalse(flags.session_present)
            pub = Peer(v)
            pub.connect()
            pub.publish(topic, b"x", qos=1)
            fresh.nothing_more()
            pub.disconnect()
            fresh.disconnect()

        self.each_version(body)

    def test_a_second_connection_takes_the_session_over(self):
        def body(v):
            cid = unique("tk")
            first = Peer(v, client_id=cid)
            first.connect()
            second = Peer(v, client_id=cid)
            flags, rc, _ = second.connect()
            self.assertEqual(rc_value(rc), 0)
            first.disconnects.get(timeout=WAIT)
            second.disconnect()
            first.client.loop_stop()

        self.each_version(body)


class SharedSubscriptions(unittest.TestCase, Both):
    def test_a_group_shares_the_messages(self):
        def body(v):
            group, topic = unique("g"), unique("st")
            members = [Peer(v), Peer(v)]
            for m in members:
                m.connect()
                m.subscribe(f"$share/{group}/{topic}", qos=1)
            pub = Peer(v)
            pub.connect()
            for i in range(20):
                pub.publish(topic, f"{i}".encode(), qos=1)
            got = []
            deadline = time.monotonic() + WAIT
            while len(got) < 20 and time.monotonic() < deadline:
                for m in members:
                    try:
                        got.append(m.messages.get(timeout=0.05).payload)
                    except queue.Empty:
                        pass
            self.assertEqual(sorted(got), sorted(f"{i}".encode() for i in range(20)))
            for m in members:
                m.nothing_more(within=0.2)
            for p in members + [pub]:
                p.disconnect()

        self.each_version(body)

    def test_a_persistent_session_is_still_a_member_after_reconnecting(self):
        # A shared subscription is part of the session state (spec 4.1 and 4.8.2), kept like
        # the session's other subscriptions.
        def body(v):
            group, topic, cid = unique("g"), unique("st"), unique("member")
            expiry = 300 if v == mqtt.MQTTv5 else None
            member = Peer(v, client_id=cid, clean=False, expiry=expiry)
            member.connect()
            member.subscribe(f"$share/{group}/{topic}", qos=1)
            member.disconnect()
            member = Peer(v, client_id=cid, clean=False, expiry=expiry)
            flags, rc, _ = member.connect()
            self.assertEqual(rc_value(rc), 0)
            self.assertTrue(flags.session_present)
            pub = Peer(v)
            pub.connect()
            pub.publish(topic, b"to the group", qos=1)
            self.assertEqual([m.payload for m in member.take(1)], [b"to the group"])
            pub.disconnect()
            member.disconnect()
            end = Peer(v, client_id=cid, clean=True)
            end.connect()
            end.disconnect()

        self.each_version(body)


class Authentication(unittest.TestCase):
    @unittest.skipUnless(USER, "the server checks credentials (--auth)")
    def test_a_wrong_password_is_refused(self):
        for name, version in VERSIONS.items():
            with self.subTest(version=name):
                c = Peer(version, username=USER)
                c.client.connect(HOST, PORT)
                c.client.loop_start()
                flags, rc, _ = c.connacks.get(timeout=WAIT)
                c.client.loop_stop()
                self.assertIn(rc_value(rc), (4, 5, 0x86, 0x87))


    @unittest.skipUnless(os.environ.get("MQTT_READER"), "a user allowed sns:Subscribe only")
    def test_a_user_may_only_do_what_its_policy_allows(self):
        reader = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=unique("r"), protocol=mqtt.MQTTv5)
        reader.username_pw_set(os.environ["MQTT_READER"], os.environ["MQTT_READER_PASSWORD"])
        if CA:
            reader.tls_set(ca_certs=CA)
        acks = queue.Queue()
        subacks = queue.Queue()
        connected = queue.Queue()
        reader.on_connect = lambda *a: connected.put(True)
        reader.on_publish = lambda c, u, mid, rc, props: acks.put(rc)
        reader.on_subscribe = lambda c, u, mid, rcs, props: subacks.put(rcs)
        reader.connect(HOST, PORT)
        reader.loop_start()
        connected.get(timeout=WAIT)
        reader.subscribe("allowed/+", qos=1)
        self.assertEqual([rc_value(r) for r in subacks.get(timeout=WAIT)], [1])
        reader.publish("allowed/x", b"no", qos=1)
        self.assertEqual(rc_value(acks.get(timeout=WAIT)), 0x87)
        reader.disconnect()
        reader.loop_stop()


class ReasonCodes(unittest.TestCase):
    def test_unsubscribe_reports_per_filter(self):
        c = Peer(mqtt.MQTTv5)
        c.connect()
        c.subscribe("ok/+", qos=1)
        c.client.unsubscribe(["ok/+", "never/subscribed"])
        rcs = c.unsubacks.get(timeout=WAIT)
        self.assertEqual([rc_value(r) for r in rcs], [0x00, 0x11])
        c.disconnect()

    @unittest.skipUnless(RAW, "a raw socket speaks plain TCP without credentials")
    def test_a_bad_filter_is_refused(self):
        # A filter with `#` before its last level breaks a MUST (spec 4.7.1): the server either
        # refuses that filter in SUBACK (3.1.1: 0x80, 5: 0x8F Topic Filter invalid) and keeps
        # the good one, or treats the packet as malformed and closes the connection (5: with a
        # DISCONNECT saying why). paho refuses to send such a filter, so this is a raw socket.
        for level, bad in ((4, 0x80), (5, 0x8F)):
            with self.subTest(level=level):
                s = raw_connect(level, unique("raw"))
                self.assertEqual(s.recv(4096)[0], 0x20)
                body = struct.pack(">H", 7) + (b"\x00" if level == 5 else b"")
                for f in (b"ok/+", b"bad/#/x"):
                    body += struct.pack(">H", len(f)) + f + b"\x01"
                s.sendall(bytes([0x82, len(body)]) + body)
                answer = s.recv(4096)
                s.close()
                if answer[:1] == b"\x90":
                    self.assertEqual(list(answer[2:4]), [0, 7], answer)
                    self.assertEqual(list(answer[-2:]), [1, bad], answer)
                elif level == 5:
                    self.assertEqual(answer[0], 0xE0, answer)
                    self.assertIn(answer[2], (0x81, 0x82, 0x8F), answer)
                else:
                    self.assertEqual(answer, b"")

    def test_an_empty_client_id_is_assigned_one(self):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv5)
        if USER:
            c.username_pw_set(USER, PASSWORD)
        if CA:
            c.tls_set(ca_certs=CA)
        got = queue.Queue()
        c.on_connect = lambda cl, u, flags, rc, props: got.put((rc, props))
        c.connect(HOST, PORT, clean_start=True)
        c.loop_start()
        rc, props = got.get(timeout=WAIT)
        self.assertEqual(rc_value(rc), 0)
        self.assertTrue(getattr(props, "AssignedClientIdentifier", ""))
        c.disconnect()
        c.loop_stop()


def raw_connect(level, client_id):
    body = struct.pack(">H", 4) + b"MQTT" + bytes([level, 0x02]) + struct.pack(">H", 30)
    if level == 5:
        body += b"\x00"
    body += struct.pack(">H", len(client_id)) + client_id.encode()
    s = socket.create_connection((HOST, PORT), timeout=WAIT)
    s.sendall(bytes([0x10, len(body)]) + body)
    return s


def read_all(s):
    out = b""
    s.settimeout(WAIT)
    while True:
        try:
            chunk = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            return out
        if not chunk:
            return out
        out += chunk


def read_packet(s):
    """One whole packet from a raw socket: (first byte, body)."""
    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            if not chunk:
                raise AssertionError("connection closed")
            out += chunk
        return out

    first = exactly(1)[0]
    length, shift = 0, 0
    while True:
        b = exactly(1)[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    return first, exactly(length)


def raw_persistent(client_id):
    body = struct.pack(">H", 4) + b"MQTT" + bytes([4, 0x00]) + struct.pack(">H", 30)
    body += struct.pack(">H", len(client_id)) + client_id.encode()
    s = socket.create_connection((HOST, PORT), timeout=WAIT)
    s.sendall(bytes([0x10, len(body)]) + body)
    first, connack = read_packet(s)
    assert first == 0x20 and connack[1] == 0, connack
    return s, connack[0] & 1 == 1


def read_publish(s):
    """One PUBLISH (3.1.1) from a raw socket: (dup, qos, packet id, payload)."""
    first, body = read_packet(s)
    assert first & 0xF0 == 0x30, f"a PUBLISH, not {first:#x}"
    qos = (first >> 1) & 3
    tlen = struct.unpack(">H", body[:2])[0]
    pid = body[2 + tlen:4 + tlen] if qos else b""
    return bool(first & 0x08), qos, pid, body[2 + tlen + len(pid):]


@unittest.skipUnless(RAW, "a raw socket speaks plain TCP without credentials")
class InFlightAcrossReconnects(unittest.TestCase):
    def subscriber_and_publisher(self, cid, topic):
        """A new persistent session on a raw socket subscribed to `topic` at QoS 2, and a paho
        publisher."""
        s, present = raw_persistent(cid)
        self.assertFalse(present)
        f = topic.encode()
        s.sendall(bytes([0x82, 2 + 2 + len(f) + 1]) + struct.pack(">H", 1) + struct.pack(">H", len(f)) + f + b"\x02")
        self.assertEqual(read_packet(s)[0], 0x90)
        pub = Peer(mqtt.MQTTv311)
        pub.connect()
        return s, pub

    def nothing_more_then_end(self, s, pub, cid):
        """Nothing more comes on the raw socket; then everything goes, the session too."""
        s.settimeout(1.0)
        try:
            extra = s.recv(4096)
        except socket.timeout:
            extra = b""
        self.assertEqual(extra, b"", "nothing more")
        s.sendall(bytes([0xE0, 0]))
        s.close()
        pub.disconnect()
        end = Peer(mqtt.MQTTv311, client_id=cid, clean=True)
        end.connect()
        end.disconnect()

    def test_a_released_message_gets_its_pubrel_again_and_never_its_publish(self):
        # Spec 4.4 (3.1.1): on reconnecting with Clean Session 0 the server sends again every
        # PUBREL not completed, with its packet identifier, and not the PUBLISH it released.
        cid, topic = unique("eo"), unique("eot")
        s, pub = self.subscriber_and_publisher(cid, topic)
        pub.publish(topic, b"once", qos=2)
        dup, qos, pid, payload = read_publish(s)
        self.assertEqual((qos, payload), (2, b"once"), "a QoS 2 PUBLISH")
        s.sendall(bytes([0x50, 2]) + pid)  # PUBREC
        first, body = read_packet(s)
        self.assertEqual((first, body), (0x62, pid), "PUBREL")
        s.close()  # gone before PUBCOMP
        s, present = raw_persistent(cid)
        self.assertTrue(present)
        first, body = read_packet(s)
        self.assertEqual((first, body), (0x62, pid), "the PUBREL again, not the PUBLISH")
        s.sendall(bytes([0x70, 2]) + pid)  # PUBCOMP
        self.nothing_more_then_end(s, pub, cid)

    def test_an_unacknowledged_publish_comes_again_with_dup_and_its_packet_id(self):
        # Spec 4.4 (3.1.1 MQTT-4.4.0-1): on reconnecting with Clean Session 0 the server sends
        # again every PUBLISH (QoS 1 and 2) not acknowledged, with DUP set and its original
        # packet identifier (a client that stored a QoS 2 packet id may deliver on PUBLISH).
        cid, topic = unique("dup"), unique("dupt")
        s, pub = self.subscriber_and_publisher(cid, topic)
        # Deliveries acknowledged first, so that the ids of the next ones are not the first
        # ones a new connection would pick.
        for i in range(3):
            pub.publish(topic, b"acked", qos=1)
            dup, qos, pid, payload = read_publish(s)
            self.assertEqual((dup, qos, payload), (False, 1, b"acked"))
            s.sendall(bytes([0x40, 2]) + pid)  # PUBACK
        pub.publish(topic, b"one", qos=1)
        pub.publish(topic, b"two", qos=2)
        first = {}
        for _ in range(2):
            dup, qos, pid, payload = read_publish(s)
            self.assertFalse(dup)
            first[payload] = (qos, pid)
        self.assertEqual(sorted(first), [b"one", b"two"])
        self.assertEqual(first[b"one"][0], 1)
        self.assertEqual(first[b"two"][0], 2)
        s.close()  # gone before PUBACK and PUBREC
        s, present = raw_persistent(cid)
        self.assertTrue(present)
        again = [read_publish(s) for _ in range(2)]
        for dup, qos, pid, payload in again:
            self.assertTrue(dup, f"{payload!r} sent again with DUP")
            self.assertEqual((qos, pid), first[payload], f"{payload!r} sent again with its packet id")
            if qos == 1:
                s.sendall(bytes([0x40, 2]) + pid)  # PUBACK
            else:
                s.sendall(bytes([0x50, 2]) + pid)  # PUBREC
                self.assertEqual(read_packet(s), (0x62, pid), "PUBREL")
                s.sendall(bytes([0x70, 2]) + pid)  # PUBCOMP
        self.nothing_more_then_end(s, pub, cid)


@unittest.skipUnless(RAW, "a raw socket speaks plain TCP without credentials")
class Malformed(unittest.TestCase):
    def test_a_malformed_packet_closes_the_connection(self):
        for level in (4, 5):
            with self.subTest(level=level):
                s = raw_connect(level, unique("raw"))
                connack = s.recv(4096)
                self.assertEqual(connack[0], 0x20)
                # PUBLISH with QoS 3: malformed (spec 3.3.1.2).
                s.sendall(bytes([0x36, 5, 0, 1, ord("a"), 0, 1]))
                rest = read_all(s)
                s.close()
                if rest:
                    # Only a v5 DISCONNECT with a malformed or protocol error reason may come.
                    self.assertEqual(level, 5, rest)
                    self.assertEqual(rest[0], 0xE0, rest)
                    self.assertIn(rest[2], (0x81, 0x82), rest)

    def test_a_packet_before_connect_closes_the_connection(self):
        s = socket.create_connection((HOST, PORT), timeout=WAIT)
        s.sendall(bytes([0xC0, 0]))  # PINGREQ first
        self.assertEqual(read_all(s), b"")
        s.close()


if __name__ == "__main__":
    unittest.main()
