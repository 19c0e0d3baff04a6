"""Helper of tests/mqtt_clients.rs's kill -9 test: paho clients with persistent sessions.

  crash_mqtt.py subscribe PORT            a persistent subscriber of crash/# at QoS 2, then leaves
  crash_mqtt.py publish PORT JOURNAL N    publishes N messages (QoS 1 and 2 alternating) from a
                                          persistent session, reconnecting through the server's
                                          restart; journals each acknowledged one (PUBACK or
                                          PUBCOMP) as a line, then "done"
  crash_mqtt.py drain PORT                the subscriber again: prints what it gets as JSON lines
                                          until nothing comes for a while
"""

import json
import queue
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.client import mqtt_ms_resend_pubrel

HOST = "127.0.0.1"
SUBSCRIBER = "crash-subscriber"
PUBLISHER = "crash-publisher"


class Client(mqtt.Client):
    """paho-mqtt 2.1.0 with one bug of its own worked around, so that the test checks the server.

    On every reconnect attempt paho puts its in-flight messages "in a valid state": a QoS 2
    message whose PUBREL was sent becomes `resend_pubrel`. A second attempt (the first one
    refused while the server restarts) turns `resend_pubrel` into `publish`, and the CONNACK
    of the attempt that succeeds sends the message again as a new PUBLISH (DUP 0, its old
    packet id, whose exchange the server had completed): a second copy, where MQTT-4.3.3 says
    the sender MUST NOT send the PUBLISH again once it has sent the PUBREL. This keeps the
    state `resend_pubrel` across attempts, as the first attempt left it.
    """

    def _messages_reconnect_reset_out(self):
        with self._out_message_mutex:
            released = [m for m in self._out_messages.values() if m.qos == 2 and m.state == mqtt_ms_resend_pubrel]
            super()._messages_reconnect_reset_out()
            for m in released:
                m.state = mqtt_ms_resend_pubrel


def client(client_id):
    c = Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False)
    c.reconnect_delay_set(min_delay=0.05, max_delay=0.2)
    # A loaded machine may take seconds to open a session after the restart: a short CONNACK
    # timeout would only pile up reconnects that each take the session over.
    c.connect_timeout = 30.0
    return c


def connected(c, port):
    ready = threading.Event()
    c.on_connect = lambda cl, u, flags, rc, props: ready.set() if rc == 0 else None
    c.connect(HOST, port, keepalive=30)
    c.loop_start()
    if not ready.wait(30):
        sys.exit("no CONNACK")
    return ready


def subscribe(port):
    c = client(SUBSCRIBER)
    connected(c, port)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe("crash/#", qos=2)
    if not done.wait(30):
        sys.exit("no SUBACK")
    c.disconnect()
    c.loop_stop()


def publish(port, journal, n):
    c = client(PUBLISHER)
    c.max_inflight_messages_set(20)
    # The callback runs on paho's network thread: it only queues the packet id (taking a lock
    # there that the main thread holds across publish() would deadlock the two).
    acked_mids = queue.Queue()
    c.on_publish = lambda cl, u, mid, rc, props: acked_mids.put(mid)
    payloads = {}
    acked = set()
    unresolved = []
    out = open(journal, "a", buffering=1)

    def journal_acks():
        while True:
            try:
                unresolved.append(acked_mids.get_nowait())
            except queue.Empty:
                break
        still = []
        for mid in unresolved:
            p = payloads.get(mid)
            if p is None:
                still.append(mid)
            elif p not in acked:
                acked.add(p)
                out.write(p + "\n")
        unresolved[:] = still

    connected(c, port)
    for i in range(n):
        qos = 1 + i % 2
        payload = f"q{qos}-{i}"
        info = c.publish(f"crash/{i % 7}", payload, qos=qos)
        payloads[info.mid] = payload
        journal_acks()
        time.sleep(0.002)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(acked) < n:
        journal_acks()
        time.sleep(0.05)
    out.write("done\n" if len(acked) == n else f"gave up at {len(acked)}\n")
    c.disconnect()
    c.loop_stop()


def drain(port):
    c = client(SUBSCRIBER)
    last = [time.monotonic()]

    def on_message(cl, u, m):
        last[0] = time.monotonic()
        print(json.dumps({"payload": m.payload.decode(), "qos": m.qos, "dup": bool(m.dup)}), flush=True)

    c.on_message = on_message
    connected(c, port)
    last[0] = time.monotonic()
    while time.monotonic() - last[0] < 3.0:
        time.sleep(0.1)
    c.disconnect()
    c.loop_stop()


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "subscribe":
        subscribe(port)
    elif mode == "publish":
        publish(port, sys.argv[3], int(sys.argv[4]))
    elif mode == "drain":
        drain(port)
    else:
        sys.exit(f"unknown mode {mode}")
