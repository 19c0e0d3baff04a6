//! A Rust AMQP 0-9-1 client (lapin, on tokio) against `weir serve --amqp`: confirms, topic
//! routing, a consumer with acknowledgements, requeue with the redelivered flag, and a restart
//! that keeps what was confirmed.

mod server_support;

use std::time::Duration;

use lapin::message::BasicGetMessage;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::Value;
use server_support::ServeChild;

/// Longest wait for any one step (a bound for a real socket, not a sleep).
const STEP: Duration = Duration::from_secs(10);

fn amqp_uri(serve: &ServeChild) -> String {
    let line: Value = serde_json::from_str(&serve.startup_line).expect("startup line");
    format!("amqp://guest:guest@{}/%2f", line["amqp"].as_str().expect("amqp listener"))
}

async fn step<T>(what: &str, f: impl std::future::Future<Output = lapin::Result<T>>) -> T {
    tokio::time::timeout(STEP, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {STEP:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

async fn get(channel: &Channel, queue: &str) -> BasicGetMessage {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        if let Some(m) = step("basic.get", channel.basic_get(queue.into(), BasicGetOptions::default())).await {
            return m;
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing arrived in {queue}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapin_publishes_with_confirms_consumes_with_acks_and_keeps_confirmed_messages_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeChild::start(dir.path(), &["--log-level", "warn", "--amqp", "127.0.0.1:0"]);
    let conn = step("connect", Connection::connect(&amqp_uri(&serve), ConnectionProperties::default())).await;
    let ch = step("channel.open", conn.create_channel()).await;
    step("confirm.select", ch.confirm_select(ConfirmSelectOptions::default())).await;
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    step("exchange.declare", ch.exchange_declare("events".into(), ExchangeKind::Topic, durable, FieldTable::default()))
        .await;
    let queue_opts = QueueDeclareOptions { durable: true, ..Default::default() };
    step("queue.declare", ch.queue_declare("orders".into(), queue_opts, FieldTable::default())).await;
    step(
        "queue.bind",
        ch.queue_bind(
            "orders".into(),
            "events".into(),
            "order.*".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        ),
    )
    .await;

    for (key, body) in [("order.created", "o1"), ("user.created", "u1"), ("order.paid", "o2"), ("order.shipped", "o3")]
    {
        let confirm = step(
            "basic.publish",
            ch.basic_publish(
                "events".into(),
                key.into(),
                BasicPublishOptions::default(),
                body.as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            ),
        )
        .await;
        let confirmation = step("confirm", confirm).await;
        assert!(confirmation.is_ack(), "{body}: {confirmation:?}");
    }

    // A get, a nack with requeue: the message comes back first, flagged redelivered.
    let first = get(&ch, "orders").await;
    assert_eq!((first.delivery.data.as_slice(), first.delivery.redelivered), (&b"o1"[..], false));
    step("basic.nack", first.delivery.nack(BasicNackOptions { requeue: true, ..Default::default() })).await;
    let again = get(&ch, "orders").await;
    assert_eq!((again.delivery.data.as_slice(), again.delivery.redelivered), (&b"o1"[..], true));
    step("basic.ack", again.delivery.ack(BasicAckOptions::default())).await;

    // A consumer with a prefetch of one takes the next, acknowledged.
    step("basic.qos", ch.basic_qos(1, BasicQosOptions::default())).await;
    let mut consumer = step(
        "basic.consume",
        ch.basic_consume("orders".into(), "c1".into(), BasicConsumeOptions::default(), FieldTable::default()),
    )
    .await;
    let delivery = tokio::time::timeout(STEP, futures_lite::StreamExt::next(&mut consumer))
        .await
        .expect("a delivery within the step")
        .expect("the consumer is open")
        .expect("a delivery");
    assert_eq!(delivery.data, b"o2");
    step("basic.ack", delivery.ack(BasicAckOptions::default())).await;
    // Leaves with a round trip after the ack, so the server has processed it.
    step("channel.close", ch.close(200, "bye".into())).await;
    step("connection.close", conn.close(200, "bye".into())).await;
    let mut serve = serve;
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");

    // After a restart: the exchange, the binding and the one unacknowledged message.
    let serve = ServeChild::start(dir.path(), &["--log-level", "warn", "--amqp", "127.0.0.1:0"]);
    let conn = step("connect", Connection::connect(&amqp_uri(&serve), ConnectionProperties::default())).await;
    let ch = step("channel.open", conn.create_channel()).await;
    let passive = ExchangeDeclareOptions { passive: true, durable: true, ..Default::default() };
    step(
        "exchange.declare passive",
        ch.exchange_declare("events".into(), ExchangeKind::Topic, passive, FieldTable::default()),
    )
    .await;
    let left = get(&ch, "orders").await;
    assert_eq!(left.delivery.data, b"o3");
    assert_eq!(left.message_count, 0);
    step("confirm.select", ch.confirm_select(ConfirmSelectOptions::default())).await;
    let confirm = step(
        "basic.publish",
        ch.basic_publish(
            "events".into(),
            "order.again".into(),
            BasicPublishOptions::default(),
            b"o4",
            BasicProperties::default(),
        ),
    )
    .await;
    assert!(step("confirm", confirm).await.is_ack());
    assert_eq!(get(&ch, "orders").await.delivery.data, b"o4", "the binding survived the restart");
    step("connection.close", conn.close(200, "bye".into())).await;
}
