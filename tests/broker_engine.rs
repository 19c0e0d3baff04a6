//! The engine's broker features (what AMQP, MQTT and STOMP need beyond SQS and SNS), through
//! the public API only: exchanges and bindings that survive a reopen, routing by kind, one
//! frame per routed batch, held deliveries (no visibility timeout; visible again on reopen),
//! release to the head of the queue, acknowledgement of many handles, length limits, message
//! TTLs, dead-letter moves, ready-only purges, transient queues and exchanges.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use weir::engine::Delivery;
use weir::queue::store::BrokerMessage;
use weir::queue::{BrokerOptions, QueueConfig, ReceiveOptions};
use weir::topic::{Binding, ExchangeDef, ExchangeKind};
use weir::{Engine, Error, ManualClock, Options};

const T0: u64 = 1_700_000_000_000;

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    Engine::open(dir, Options { clock: clock.clone(), background: false, ..Options::default() }).expect("open")
}

fn broker(options: BrokerOptions) -> QueueConfig {
    QueueConfig { broker: Some(options), ..QueueConfig::default() }
}

fn msg(body: &str) -> BrokerMessage {
    BrokerMessage { body: Bytes::copy_from_slice(body.as_bytes()), ..BrokerMessage::default() }
}

fn bodies(engine: &Engine, queue: &str) -> Vec<String> {
    let q = engine.queue(queue).expect("queue");
    q.peek(usize::MAX).unwrap().into_iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

fn held_bodies(got: &[weir::queue::ReceivedMessage]) -> Vec<String> {
    got.iter().map(|m| String::from_utf8_lossy(&m.body).into_owned()).collect()
}

fn exchange(kind: ExchangeKind, durable: bool) -> ExchangeDef {
    ExchangeDef { kind, durable, auto_delete: false, internal: false }
}

/// Routes `body` with `key` through exchange `x` and writes it; returns how many queues took it.
fn publish(engine: &Engine, x: &str, key: &str, headers: &[(String, String)], body: &str) -> usize {
    let topic = engine.topic(x).unwrap();
    let queues = topic.route_targets(key, headers, &Default::default(), body.as_bytes());
    engine.deliver(&[Delivery { queues, message: msg(body) }]).unwrap()[0]
}

#[test]
fn exchanges_and_bindings_survive_a_reopen_and_route_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        engine.declare_exchange("logs.direct", exchange(ExchangeKind::Direct, true)).unwrap();
        engine.declare_exchange("logs.topic", exchange(ExchangeKind::Topic, true)).unwrap();
        engine.declare_exchange("logs.headers", exchange(ExchangeKind::Headers, true)).unwrap();
        engine.declare_exchange("fleeting", exchange(ExchangeKind::Fanout, false)).unwrap();
        // The same definition again is fine; another kind is not.
        engine.declare_exchange("logs.direct", exchange(ExchangeKind::Direct, true)).unwrap();
        assert!(matches!(
            engine.declare_exchange("logs.direct", exchange(ExchangeKind::Fanout, true)),
            Err(Error::AlreadyExists { .. })
        ));
        for q in ["q.info", "q.kern", "q.pdf"] {
            engine.create_queue(q, broker(BrokerOptions::default())).unwrap();
        }
        engine.create_queue("q.transient", broker(BrokerOptions { transient: true, ..Default::default() })).unwrap();
        let b = |kind, key: &str| Binding::new(kind, key, String::new(), None).unwrap();
        assert!(engine.bind("logs.direct", "q.info", b(ExchangeKind::Direct, "info")).unwrap());
        assert!(!engine.bind("logs.direct", "q.info", b(ExchangeKind::Direct, "info")).unwrap(), "bound already");
        engine.bind("logs.topic", "q.kern", b(ExchangeKind::Topic, "kern.#")).unwrap();
        let pairs = vec![("format".to_string(), Some("pdf".to_string()))];
        let headers = Binding::new(ExchangeKind::Headers, "", "args".into(), Some((false, pairs))).unwrap();
        engine.bind("logs.headers", "q.pdf", headers).unwrap();
        engine.bind("fleeting", "q.info", b(ExchangeKind::Fanout, "")).unwrap();
    }
    let engine = open(dir.path(), &clock);
    assert_eq!(engine.exchange("logs.topic").unwrap(), Some(exchange(ExchangeKind::Topic, true)));
    assert!(matches!(engine.exchange("fleeting"), Err(Error::NotFound { .. })), "a non-durable exchange goes");
    // Gone, so its name (a broker name SQS would refuse) gets SQS's invalid-name error.
    assert!(matches!(engine.queue("q.transient"), Err(Error::InvalidName { .. })), "a transient queue goes");
    assert!(engine.queue("q.info").is_ok(), "a broker name of a queue that exists is found");
    assert_eq!(engine.bindings("logs.direct").unwrap().len(), 1);

    assert_eq!(publish(&engine, "logs.direct", "info", &[], "i1"), 1);
    assert_eq!(publish(&engine, "logs.direct", "warn", &[], "w1"), 0);
    assert_eq!(publish(&engine, "logs.topic", "kern.disk.full", &[], "k1"), 1);
    assert_eq!(publish(&engine, "logs.topic", "cron.daily", &[], "c1"), 0);
    assert_eq!(publish(&engine, "logs.headers", "", &[("format".into(), "pdf".into())], "h1"), 1);
    assert_eq!(publish(&engine, "logs.headers", "", &[("format".into(), "zip".into())], "h2"), 0);
    assert_eq!(bodies(&engine, "q.info"), ["i1"]);
    assert_eq!(bodies(&engine, "q.kern"), ["k1"]);
    assert_eq!(bodies(&engine, "q.pdf"), ["h1"]);

    assert!(engine.unbind("logs.headers", "q.pdf", "", "args").unwrap());
    assert!(!engine.unbind("logs.headers", "q.pdf", "", "args").unwrap());
    assert_eq!(engine.unbind_queue("q.kern").unwrap(), 1);
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert!(engine.bindings("logs.headers").unwrap().is_empty(), "an unbind is durable");
    assert!(engine.bindings("logs.topic").unwrap().is_empty());
    assert_eq!(bodies(&engine, "q.info"), ["i1"], "delivered messages are durable");
}

#[test]
fn held_deliveries_outlast_any_timeout_and_are_visible_again_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    {
        let engine = open(dir.path(), &clock);
        engine.create_queue("work", broker(BrokerOptions::default())).unwrap();
        let q = engine.queue("work").unwrap();
        assert_eq!(q.send_broker_batch(vec![msg("a"), msg("b"), msg("")]).unwrap(), [true, true, true]);
        let held = q.receive_held(2).unwrap();
        assert_eq!(held_bodies(&held), ["a", "b"]);
        assert!(held.iter().all(|m| m.receive_count == 1));
        clock.advance(Duration::from_secs(24 * 3600));
        assert_eq!(q.ready_and_in_flight(), (1, 2), "a day later they are still held");
        let plain = q.receive(ReceiveOptions { max: 10, wait: Some(Duration::ZERO), ..Default::default() }).unwrap();
        assert_eq!(held_bodies(&plain), [""], "an empty body is a message");
    }
    let engine = open(dir.path(), &clock);
    let q = engine.queue("work").unwrap();
    assert_eq!(q.ready_and_in_flight().1, 1, "only the SQS receive is still in flight");
    let again = q.receive_held(10).unwrap();
    assert_eq!(held_bodies(&again), ["a", "b"]);
    assert!(again.iter().all(|m| m.receive_count == 2), "a redelivery is counted");
}

#[test]
fn release_puts_messages_back_at_the_head_in_their_order_and_ack_deletes_durably() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("work", broker(BrokerOptions::default())).unwrap();
    let q = engine.queue("work").unwrap();
    q.send_broker_batch(["a", "b", "c", "d", "e"].into_iter().map(msg).collect()).unwrap();
    let held = q.receive_held(3).unwrap();
    let handle = |i: usize| held[i].receipt_handle.as_str();
    let results = q.release_to_head(&[handle(2), handle(0)]).unwrap();
    assert!(results.iter().all(Result::is_ok));
    // Released again: no longer in flight under that handle.
    assert!(q.release_to_head(&[handle(0)]).unwrap()[0].is_err());
    let next = q.receive_held(10).unwrap();
    assert_eq!(held_bodies(&next), ["a", "c", "d", "e"], "released first, in their original order");
    let mut handles: Vec<&str> = next.iter().map(|m| m.receipt_handle.as_str()).collect();
    handles.push(handle(1));
    handles.push("forged-handle");
    let acked = q.ack(&handles).unwrap();
    assert_eq!(acked.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(acked[5].is_err(), "a forged handle fails alone");
    drop(q);
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert!(bodies(&engine, "work").is_empty(), "acknowledged messages stay gone");
}

#[test]
fn a_length_limit_drops_the_oldest_ready_messages_and_a_ttl_expires_them() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("bounded", broker(BrokerOptions { max_length: Some(2), ..Default::default() })).unwrap();
    let q = engine.queue("bounded").unwrap();
    for body in ["1", "2", "3"] {
        assert!(q.send_broker(msg(body)).unwrap());
    }
    assert_eq!(bodies(&engine, "bounded"), ["2", "3"]);
    let held = q.receive_held(1).unwrap();
    assert_eq!(held_bodies(&held), ["2"]);
    q.send_broker_batch(vec![msg("4"), msg("5"), msg("6")]).unwrap();
    // The limit counts ready messages: the held one stays, two ready remain.
    assert_eq!(q.ready_and_in_flight(), (2, 1));
    assert_eq!(bodies(&engine, "bounded"), ["2", "5", "6"]);

    let ttl = Duration::from_millis(1500);
    engine.create_queue("ttl", broker(BrokerOptions { message_ttl: Some(ttl), ..Default::default() })).unwrap();
    let t = engine.queue("ttl").unwrap();
    t.send_broker(msg("old")).unwrap();
    clock.advance(Duration::from_millis(1000));
    t.send_broker(msg("young")).unwrap();
    clock.advance(Duration::from_millis(600));
    assert_eq!(held_bodies(&t.receive_held(10).unwrap()), ["young"]);
    let too_long =
        BrokerOptions { message_ttl: Some(Duration::from_millis(u64::from(u32::MAX) + 1)), ..Default::default() };
    assert!(matches!(engine.create_queue("too-long", broker(too_long)), Err(Error::InvalidArgument(_))));
}

#[test]
fn a_dead_letter_move_and_a_ready_purge() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("work", broker(BrokerOptions::default())).unwrap();
    engine.create_queue("dead", broker(BrokerOptions::default())).unwrap();
    let (work, dead) = (engine.queue("work").unwrap(), engine.queue("dead").unwrap());
    work.send_broker_batch(vec![msg("bad"), msg("fine"), msg("other")]).unwrap();
    let held = work.receive_held(2).unwrap();
    let moved = engine
        .move_out(&work, &held[0].receipt_handle, &Delivery { queues: vec![dead.clone()], message: msg("bad") })
        .unwrap();
    assert_eq!(moved, 1);
    assert!(
        engine
            .move_out(&work, &held[0].receipt_handle, &Delivery { queues: vec![dead.clone()], message: msg("bad") })
            .is_err(),
        "the handle no longer names a message: nothing is written"
    );
    assert_eq!(bodies(&engine, "dead"), ["bad"]);
    assert_eq!(work.purge_ready().unwrap(), 1, "only `other` was ready");
    assert_eq!(work.ready_and_in_flight(), (0, 1), "`fine` is still held");
    drop((work, dead));
    drop(engine);
    let engine = open(dir.path(), &clock);
    assert_eq!(bodies(&engine, "work"), ["fine"]);
    assert_eq!(bodies(&engine, "dead"), ["bad"]);
}

#[test]
fn broker_names_allow_dots_but_not_spaces_or_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let engine = open(dir.path(), &clock);
    engine.create_queue("amq.gen-Xy_1.z", broker(BrokerOptions::default())).unwrap();
    engine.queue("amq.gen-Xy_1.z").unwrap();
    assert!(engine.create_queue("has space", broker(BrokerOptions::default())).is_err());
    assert!(engine.create_queue("looks.fifo", broker(BrokerOptions::default())).is_err());
    assert!(engine.create_queue("sqs.dotted", QueueConfig::default()).is_err(), "SQS names keep SQS's rules");
    assert!(engine.declare_exchange("bad name", exchange(ExchangeKind::Direct, true)).is_err());
}
