"""Helper of tests/mqtt_clients.rs's restart test: MQTT 5 sessions across a kill -9 of the server.

  restart_mqtt.py join PORT STAMP   a member of the shared subscription $share/workers/jobs/#
                                    (session expiry 600 s) and a session that expires 1 s after
                                    it ends subscribe and leave; a 3.1.1 session on a raw socket
                                    leaves a QoS 1 PUBLISH unacknowledged; STAMP gets the time
                                    they left and that PUBLISH's packet id
  restart_mqtt.py check PORT STAMP  after the restart: the raw session gets that PUBLISH again
                                    with DUP and the same packet id; the member's session is
                                    there and gets a message published to jobs/1 without
                                    subscribing again; the other session, once 1 s has passed
                                    since it left, is gone
"""

import json
import os
import queue
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST = "127.0.0.1"
MEMBER, EXPIRING, RAW = "restart-member", "restart-expiring", "restart-raw"
WAIT = 30.0


def connect(port, client_id, expiry, clean_start):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    acks, got = queue.Queue(), queue.Queue()
    c.on_connect = lambda cl, u, flags, rc, props: acks.put((flags, rc))
    c.on_subscribe = lambda cl, u, mid, rcs, props: acks.put(rcs)
    c.on_message = lambda cl, u, m: got.put(m)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry
    c.connect(HOST, port, keepalive=30, clean_start=clean_start, properties=props)
    c.loop_start()
    flags, rc = acks.get(timeout=WAIT)
    if rc != 0:
        sys.exit(f"{client_id}: CONNACK {rc}")
    return c, flags.session_present, acks, got


def leave(c):
    c.disconnect()
    c.loop_stop()


def raw_helpers(port):
    """The raw-socket helpers of the conformance suite, pointed at this server."""
    os.environ["MQTT_PORT"] = str(port)
    import test_mqtt
    return test_mqtt


def join(port, stamp):
    t = raw_helpers(port)
    s, _ = t.raw_persistent(RAW)
    f = b"raw/1"
    s.sendall(bytes([0x82, 2 + 2 + len(f) + 1]) + b"\x00\x01" + bytes([0, len(f)]) + f + b"\x01")
    t.read_packet(s)  # SUBACK
    publisher, _, _, _ = connect(port, "restart-raw-publisher", 0, True)
    # Acknowledged ones first, so that the held one's id is not the first a connection picks.
    for payload in (b"acked-1", b"acked-2", b"held"):
        publisher.publish("raw/1", payload, qos=1).wait_for_publish(timeout=WAIT)
        _, _, pid, got = t.read_publish(s)
        if got != b"held":
            s.sendall(bytes([0x40, 2]) + pid)  # PUBACK
    leave(publisher)
    s.close()  # the last one unacknowledged
    member, _, acks, _ = connect(port, MEMBER, 600, True)
    member.subscribe("$share/workers/jobs/#", qos=1)
    acks.get(timeout=WAIT)
    expiring, _, acks, _ = connect(port, EXPIRING, 1, True)
    expiring.subscribe("jobs/#", qos=1)
    acks.get(timeout=WAIT)
    leave(member)
    leave(expiring)
    with open(stamp, "w") as f:
        json.dump({"left": time.time(), "pid": pid.hex()}, f)


def check(port, stamp):
    saved = json.load(open(stamp))
    t = raw_helpers(port)
    s, present = t.raw_persistent(RAW)
    if not present:
        sys.exit("the raw session did not survive the restart")
    dup, qos, pid, payload = t.read_publish(s)
    if (dup, qos, pid.hex(), payload) != (True, 1, saved["pid"], b"held"):
        sys.exit(f"sent again as {(dup, qos, pid.hex(), payload)}, not with DUP and packet id {saved['pid']}")
    s.sendall(bytes([0x40, 2]) + pid + bytes([0xE0, 0]))  # PUBACK, DISCONNECT
    s.close()
    member, present, _, got = connect(port, MEMBER, 600, False)
    if not present:
        sys.exit("the member's session did not survive the restart")
    publisher, _, _, _ = connect(port, "restart-publisher", 0, True)
    publisher.publish("jobs/1", b"after the restart", qos=1).wait_for_publish(timeout=WAIT)
    try:
        m = got.get(timeout=WAIT)
    except queue.Empty:
        sys.exit("the member got nothing: its shared subscription was not restored")
    if m.payload != b"after the restart":
        sys.exit(f"unexpected message {m.payload!r}")
    leave(publisher)
    leave(member)
    # The other session's deadline (1 s after it left, by the server's clock) has to pass.
    left = saved["left"]
    time.sleep(max(0.0, left + 1.5 - time.time()))
    expiring, present, _, _ = connect(port, EXPIRING, 0, False)
    leave(expiring)
    if present:
        sys.exit("the session with a 1 s expiry interval was still there after the restart")


if __name__ == "__main__":
    mode, port, stamp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"join": join, "check": check}[mode](port, stamp)
