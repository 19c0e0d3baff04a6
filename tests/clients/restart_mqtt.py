"""Helper of tests/mqtt_clients.rs's restart test: MQTT 5 sessions across a kill -9 of the server.

  restart_mqtt.py join PORT STAMP   a member of the shared subscription $share/workers/jobs/#
                                    (session expiry 600 s) and a session that expires 1 s after
                                    it ends subscribe and leave; STAMP gets the time they left
  restart_mqtt.py check PORT STAMP  after the restart: the member's session is there and gets a
                                    message published to jobs/1 without subscribing again; the
                                    other session, once 1 s has passed since it left, is gone
"""

import queue
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST = "127.0.0.1"
MEMBER, EXPIRING = "restart-member", "restart-expiring"
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


def join(port, stamp):
    member, _, acks, _ = connect(port, MEMBER, 600, True)
    member.subscribe("$share/workers/jobs/#", qos=1)
    acks.get(timeout=WAIT)
    expiring, _, acks, _ = connect(port, EXPIRING, 1, True)
    expiring.subscribe("jobs/#", qos=1)
    acks.get(timeout=WAIT)
    leave(member)
    leave(expiring)
    with open(stamp, "w") as f:
        f.write(str(time.time()))


def check(port, stamp):
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
    left = float(open(stamp).read())
    time.sleep(max(0.0, left + 1.5 - time.time()))
    expiring, present, _, _ = connect(port, EXPIRING, 0, False)
    leave(expiring)
    if present:
        sys.exit("the session with a 1 s expiry interval was still there after the restart")


if __name__ == "__main__":
    mode, port, stamp = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"join": join, "check": check}[mode](port, stamp)
