//! The engine features MQTT stands on, through the public API: bindings with an MQTT topic
//! filter (`RouteFilter::Mqtt`: `/` levels, `+`, `#`, `$` topics) that route and survive a
//! reopen, a QoS 2 packet-id record written in the same frame as the message it guards, and
//! held deliveries (a session's in-flight messages) visible again after a reopen.

use std::sync::Arc;

use bytes::Bytes;
use weir::engine::Delivery;
use weir::queue::store::BrokerMessage;
use weir::queue::{BrokerOptions, QueueConfig};
use weir::topic::{Binding, ExchangeDef, ExchangeKind, RouteFilter};
use weir::{Engine, ManualClock, Options};

fn open(dir: &std::path::Path) -> Engine {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    Engine::open(dir, Options { clock, background: false, ..Options::default() }).expect("open")
}

fn mqtt_binding(filter: &str) -> Binding {
    Binding { key: filter.into(), arguments: "qos=1".into(), filter: RouteFilter::Mqtt(filter.into()) }
}

fn routed(engine: &Engine, topic: &str) -> Vec<String> {
    let t = engine.topic("mqtt").unwrap();
    let mut names: Vec<String> =
        t.route_targets(topic, &[], &Default::default(), b"").iter().map(|q| q.name().to_string()).collect();
    names.sort();
    names
}

fn session(engine: &Engine, name: &str) {
    let config = QueueConfig { broker: Some(BrokerOptions::default()), ..QueueConfig::default() };
    engine.create_queue(name, config).unwrap();
}

#[test]
fn mqtt_filters_route_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        let def = ExchangeDef { kind: ExchangeKind::Topic, durable: true, auto_delete: false, internal: false };
        engine.declare_exchange("mqtt", def).unwrap();
        for (queue, filter) in [("s.plus", "home/+/temp"), ("s.hash", "home/#"), ("s.all", "#"), ("s.sys", "$SYS/#")] {
            session(&engine, queue);
            assert!(engine.bind("mqtt", queue, mqtt_binding(filter)).unwrap());
        }
    }
    let engine = open(dir.path());
    assert_eq!(routed(&engine, "home/kitchen/temp"), ["s.all", "s.hash", "s.plus"]);
    assert_eq!(routed(&engine, "home"), ["s.all", "s.hash"]);
    assert_eq!(routed(&engine, "home/kitchen/temp/x"), ["s.all", "s.hash"]);
    assert_eq!(routed(&engine, "office/temp"), ["s.all"]);
    // `#` does not match a `$` topic; a filter naming `$SYS` does.
    assert_eq!(routed(&engine, "$SYS/load"), ["s.sys"]);
    // Unbinding by key and arguments removes the route durably.
    assert!(engine.unbind("mqtt", "s.all", "#", "qos=1").unwrap());
    drop(engine);
    let engine = open(dir.path());
    assert_eq!(routed(&engine, "office/temp"), Vec::<String>::new());
}

#[test]
fn a_qos2_record_is_written_with_its_message_and_held_state_returns_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path());
        session(&engine, "mqtt.session.a");
        session(&engine, "mqtt.qos2.a");
        let message = BrokerMessage { body: Bytes::from_static(b"payload"), ..BrokerMessage::default() };
        let marker = BrokerMessage { body: Bytes::from_static(&[0, 7]), ..BrokerMessage::default() };
        let batch = [
            Delivery { queues: vec![engine.queue("mqtt.session.a").unwrap()], message },
            Delivery { queues: vec![engine.queue("mqtt.qos2.a").unwrap()], message: marker },
        ];
        assert_eq!(engine.deliver(&batch).unwrap(), [1, 1]);
        // Both held (a delivery in flight, a packet id not yet released) when the engine goes.
        assert_eq!(engine.queue("mqtt.session.a").unwrap().receive_held(10).unwrap().len(), 1);
        assert_eq!(engine.queue("mqtt.qos2.a").unwrap().receive_held(10).unwrap().len(), 1);
    }
    let engine = open(dir.path());
    let again = engine.queue("mqtt.session.a").unwrap().receive_held(10).unwrap();
    assert_eq!(again.len(), 1);
    assert!(again[0].receive_count > 1, "a redelivery is marked (MQTT's DUP)");
    let marker = engine.queue("mqtt.qos2.a").unwrap().receive_held(10).unwrap();
    assert_eq!(&marker[0].body[..], &[0, 7]);
}
