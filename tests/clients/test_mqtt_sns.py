"""Cross-protocol: an MQTT publish reaches an SQS queue through an SNS-style subscription of
the queue to the weir topic `mqtt` whose filter policy names the MQTT topic (the message
attribute `mqtt.topic`). Run by tests/mqtt_clients.rs with WEIR_ENDPOINT and MQTT_PORT.
"""

import os
import threading
import unittest

import boto3
import paho.mqtt.client as mqtt

ENDPOINT = os.environ["WEIR_ENDPOINT"]
PORT = int(os.environ["MQTT_PORT"])


def aws(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


class MqttToSqs(unittest.TestCase):
    def test_an_mqtt_publish_reaches_a_subscribed_queue(self):
        sqs = aws("sqs")
        # The queue and its subscription to the weir topic `mqtt` (filter policy
        # {"mqtt.topic": [{"prefix": "sensors/kitchen/"}]}) are made by the Rust test.
        url = sqs.get_queue_url(QueueName=os.environ["QUEUE_NAME"])["QueueUrl"]
        name = os.environ["QUEUE_NAME"]
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="x-" + name, protocol=mqtt.MQTTv5)
        ok = threading.Event()
        c.on_connect = lambda *a: ok.set()
        c.connect("127.0.0.1", PORT)
        c.loop_start()
        self.assertTrue(ok.wait(10))
        c.publish("sensors/kitchen/temp", b"21.5", qos=1).wait_for_publish(10)
        c.publish("sensors/garage/temp", b"9.0", qos=1).wait_for_publish(10)
        got = []
        for _ in range(20):
            r = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MessageAttributeNames=["All"])
            got += r.get("Messages", [])
            if got:
                break
        c.disconnect()
        c.loop_stop()
        self.assertEqual([m["Body"] for m in got], ["21.5"])
        self.assertEqual(got[0]["MessageAttributes"]["mqtt.topic"]["StringValue"], "sensors/kitchen/temp")


if __name__ == "__main__":
    unittest.main()
