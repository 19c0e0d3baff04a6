"""Load for the AMQP crash test (tests/amqp_clients.rs): pika publishers with confirms and
consumers with manual acks on the durable queue `crash.work`, until the server dies.

Usage: amqp_crash_load.py HOST:PORT JOURNAL_DIR

Each worker journals (one file each, a line written and flushed after the fact it states):
  confirmed BODY  the broker confirmed the publish (it must survive)
  held BODY       delivered and deliberately never acknowledged (it must come back)
  acking BODY     about to acknowledge (either outcome is allowed)
  acked BODY      acknowledged, and a later synchronous method on the channel answered, so the
                  server processed the ack (it must not come back)
Unconfirmed publishes (sent without waiting) are not journaled: either outcome is allowed.
"""

import os
import sys
import threading

import pika

QUEUE = "crash.work"


def connect(addr):
    host, port = addr.rsplit(":", 1)
    return pika.BlockingConnection(pika.ConnectionParameters(host, int(port), connection_attempts=5, retry_delay=0.2))


def journal(directory, name):
    return open(os.path.join(directory, name), "a", buffering=1)


def publisher(addr, directory, n):
    out = journal(directory, f"publisher-{n}")
    try:
        conn = connect(addr)
        ch = conn.channel()
        ch.confirm_delivery()
        raw = conn.channel()  # no confirms: unconfirmed publishes
        i = 0
        while True:
            body = f"p{n}-{i}"
            ch.basic_publish("", QUEUE, body.encode(), pika.BasicProperties(delivery_mode=2))
            out.write(f"confirmed {body}\n")
            raw.basic_publish("", QUEUE, f"u{n}-{i}".encode())
            i += 1
    except Exception:
        pass


def consumer(addr, directory, n):
    out = journal(directory, f"consumer-{n}")
    try:
        conn = connect(addr)
        ch = conn.channel()
        ch.basic_qos(prefetch_count=50)
        held = 0
        while True:
            method, _props, body = ch.basic_get(QUEUE)
            if method is None:
                conn.sleep(0.01)
                continue
            body = body.decode()
            if held < 5:
                held += 1
                out.write(f"held {body}\n")
                continue
            out.write(f"acking {body}\n")
            ch.basic_ack(method.delivery_tag)
            ch.queue_declare(QUEUE, passive=True)  # a round trip after the ack
            out.write(f"acked {body}\n")
    except Exception:
        pass


def main():
    addr, directory = sys.argv[1], sys.argv[2]
    conn = connect(addr)
    conn.channel().queue_declare(QUEUE, durable=True)
    conn.close()
    workers = [threading.Thread(target=publisher, args=(addr, directory, n)) for n in range(3)]
    workers += [threading.Thread(target=consumer, args=(addr, directory, n)) for n in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
