//! `weir demo`: a tour of the engine on the data directory, in plain text. Safe to run again:
//! it reuses what an earlier run created, adds records to the stream, and empties the demo
//! queues before it uses them.

use std::path::Path;
use std::time::Duration;

use weir::queue::{
    AttributeValue, Attributes, Queue, QueueConfig, ReceiveOptions, ReceivedMessage, RedrivePolicy, SendOptions,
};
use weir::stream::{ConsumedRecord, ConsumerConfig, PutRecord, StartingPosition, Stream, StreamRecord};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::Engine;

use crate::out::{show_bytes, utc, CliResult, Out};

/// The demo stream.
const STREAM: &str = "demo-clicks";
/// The stream the resharding section splits, and the consumer group that reads it.
const RESHARD: &str = "demo-reshard";
const GROUP: &str = "demo-group";
/// Records the first worker of the group reads before it stops.
const FIRST_WORKER_READS: usize = 5;
/// The demo work queue and its dead-letter queue.
const JOBS: &str = "demo-jobs";
const JOBS_DLQ: &str = "demo-jobs-dlq";
/// Receives after which a demo job goes to the dead-letter queue.
const JOBS_MAX_RECEIVES: u32 = 2;
/// The demo FIFO queue.
const ORDERS: &str = "demo-orders.fifo";
/// The demo topic and the queues subscribed to it.
const EVENTS: &str = "demo-events";
const AUDIT: &str = "demo-audit";
const BILLING: &str = "demo-billing";
/// The filter policy of the billing subscription.
const BILLING_POLICY: &str = r#"{"kind":["invoice"]}"#;
/// Longest body shown in queue and topic output.
const SHOW_BODY: usize = 60;
/// Longest envelope shown.
const ENVELOPE_CHARS: usize = 200;
/// Most records listed per shard when reading from the trim horizon.
const SHOW_PER_SHARD: usize = 8;

/// Runs every section of the tour.
pub fn run(data: &Path) -> CliResult<()> {
    let engine = crate::open_engine(data)?;
    let mut out = Out::new();
    out.line(format!("weir demo in {}", engine.dir().display()))?;
    demo_streams(&engine, &mut out)?;
    demo_resharding(&engine, &mut out)?;
    demo_queues(&engine, &mut out)?;
    demo_topics(&engine, &mut out)?;
    out.line("")?;
    out.line(format!("Done. Run it again to add more, or look at the files: weir inspect {}", engine.dir().display()))
}

/// Streams: create, put (single and batch), read from the trim horizon, read from a time,
/// describe.
fn demo_streams(engine: &Engine, out: &mut Out) -> CliResult<()> {
    out.line("")?;
    out.line("== Streams (Kinesis-style: shards chosen by partition key, records kept by age) ==")?;
    if engine.list_streams().iter().any(|n| n == STREAM) {
        out.line(format!("stream {STREAM:?} exists from an earlier run; adding to it"))?;
    } else {
        match engine.create_stream(STREAM, 2, None) {
            Ok(()) => out.line(format!("created stream {STREAM:?} with 2 shards and 24 hours of retention"))?,
            Err(weir::Error::AlreadyExists { .. }) => out.line(format!("stream {STREAM:?} exists already"))?,
            Err(e) => return Err(e.into()),
        }
    }
    let stream = engine.stream(STREAM)?;
    let started_ms = engine.clock().now_ms();

    out.line("")?;
    out.line("put, one record at a time (each call returns once the record is on disk):")?;
    for (key, data) in [("alice", "click /home"), ("bob", "click /pricing"), ("carol", "click /docs")] {
        let put = stream.put(key.as_bytes(), data.as_bytes())?;
        out.line(format!("  key {key:<6} data {data:<18} -> shard {} seq {}", put.shard, put.seq))?;
    }
    out.line("put_batch, several records in one call (one write and one fsync per shard):")?;
    let batch = [("alice", "click /signup"), ("bob", "click /checkout"), ("dave", "click /home")];
    let records: Vec<PutRecord<'_>> = batch
        .iter()
        .map(|(k, d)| PutRecord { partition_key: k.as_bytes(), data: d.as_bytes(), explicit_hash_key: None })
        .collect();
    for ((key, data), put) in batch.iter().zip(stream.put_batch(&records)?) {
        out.line(format!("  key {key:<6} data {data:<18} -> shard {} seq {}", put.shard, put.seq))?;
    }
    out.line("  (the same key always lands on the same shard, in order)")?;

    out.line("")?;
    out.line("read each shard from TRIM_HORIZON (the oldest record kept):")?;
    for shard in stream.shards() {
        let records = read_all(&stream, shard.meta.id, StartingPosition::TrimHorizon)?;
        out.line(format!("  shard {}: {} records", shard.meta.id, records.len()))?;
        let skipped = records.len().saturating_sub(SHOW_PER_SHARD);
        if skipped > 0 {
            out.line(format!("    ... {skipped} older records from earlier runs not shown"))?;
        }
        for record in &records[skipped..] {
            out.line(record_line(record))?;
        }
    }

    out.line("")?;
    out.line(format!("read each shard AT_TIMESTAMP {} (when this run began): only this run's records", started_ms))?;
    for shard in stream.shards() {
        let records = read_all(&stream, shard.meta.id, StartingPosition::AtTimestamp(started_ms))?;
        out.line(format!("  shard {}: {} records", shard.meta.id, records.len()))?;
        for record in &records {
            out.line(record_line(record))?;
        }
    }

    out.line("")?;
    out.line("describe:")?;
    let description = stream.describe();
    out.line(format!("  stream {:?}, retention {} hours", description.name, description.retention_hours))?;
    for s in &description.shards {
        let stored = match (s.first_seq, s.last_seq) {
            (Some(first), Some(last)) => format!("seq {first}..={last}"),
            _ => "empty".to_string(),
        };
        out.line(format!(
            "  shard {}: hash keys {}..={}, {stored}, {}",
            s.id,
            s.hash_start,
            s.hash_end,
            if s.open { "open" } else { "closed" }
        ))?;
    }
    out.line(format!("  (the same from a script: weir --data {} stream describe {STREAM})", engine.dir().display()))
}

/// Resharding and consumer groups: split a shard while records flow, show the lineage, then a
/// worker of a group reads and checkpoints, stops, and a second worker resumes where it left.
fn demo_resharding(engine: &Engine, out: &mut Out) -> CliResult<()> {
    out.line("")?;
    out.line("== Resharding and consumer groups (split or merge shards; groups read parents before children) ==")?;
    if engine.list_streams().iter().any(|n| n == RESHARD) {
        out.line(format!("stream {RESHARD:?} exists from an earlier run; adding to it"))?;
    } else {
        match engine.create_stream(RESHARD, 1, None) {
            Ok(()) => out.line(format!("created stream {RESHARD:?} with 1 shard"))?,
            Err(weir::Error::AlreadyExists { .. }) => out.line(format!("stream {RESHARD:?} exists already"))?,
            Err(e) => return Err(e.into()),
        }
    }
    let stream = engine.stream(RESHARD)?;
    let users = ["user-1", "user-2", "user-3"];
    out.line("put:")?;
    for (i, user) in users.iter().enumerate() {
        let put = stream.put(user.as_bytes(), format!("view /page-{i}").as_bytes())?;
        out.line(format!("  key {user} -> shard {} seq {}", put.shard, put.seq))?;
    }

    let first_open = stream.describe().shards.into_iter().find(|s| s.open && s.parents.is_empty());
    match first_open {
        Some(shard) => {
            let [low, high] = engine.split_shard(RESHARD, shard.id, None)?;
            out.line(format!(
                "split shard {} at the middle of its hash-key range -> shards {low} and {high}; shard {} is closed",
                shard.id, shard.id
            ))?;
        }
        None => out.line("shard 0 was split by an earlier run (a closed shard cannot be split again)")?,
    }
    out.line("put again (the keys land in the children now, numbered above the parent's records):")?;
    for (i, user) in users.iter().enumerate() {
        let put = stream.put(user.as_bytes(), format!("view /page-{}", i + users.len()).as_bytes())?;
        out.line(format!("  key {user} -> shard {} seq {}", put.shard, put.seq))?;
    }
    out.line("describe:")?;
    for s in stream.describe().shards {
        let parents = if s.parents.is_empty() {
            "no parents".to_string()
        } else {
            let ids: Vec<String> = s.parents.iter().map(u32::to_string).collect();
            format!("parents [{}]", ids.join(", "))
        };
        let stored = match (s.first_seq, s.last_seq) {
            (Some(first), Some(last)) => format!("seq {first}..={last}"),
            _ => "empty".to_string(),
        };
        let state = if s.open { "open" } else { "closed" };
        out.line(format!(
            "  shard {}: {state}, {parents}, {stored}, hash keys {}..={}",
            s.id, s.hash_start, s.hash_end
        ))?;
    }

    out.line("")?;
    out.line(format!(
        "consumer group {GROUP:?}: worker-1 polls for up to {FIRST_WORKER_READS} records, checkpoints, and stops:"
    ))?;
    let mut first = stream.consumer(GROUP, "worker-1", ConsumerConfig::default())?;
    let read = first.poll(FIRST_WORKER_READS)?;
    for r in &read {
        out.line(consumed_line(r))?;
    }
    first.checkpoint_all()?;
    // Dropping a consumer gives its leases back, so the next worker need not wait for them to
    // expire.
    drop(first);
    let saved = stream.checkpoints();
    let checkpoints: Vec<String> = saved
        .iter()
        .filter(|((group, _), _)| group == GROUP)
        .map(|((_, shard), seq)| format!("shard {shard} through seq {seq}"))
        .collect();
    out.line(format!("  checkpoints of {GROUP:?}: {}", checkpoints.join(", ")))?;

    out.line("worker-2 starts and resumes from those checkpoints (parents to their end before children):")?;
    let mut second = stream.consumer(GROUP, "worker-2", ConsumerConfig::default())?;
    let mut resumed: Vec<u32> = Vec::new();
    let mut total = 0;
    loop {
        let batch = second.poll(100)?;
        if batch.is_empty() {
            break;
        }
        for r in &batch {
            if !resumed.contains(&r.shard) {
                resumed.push(r.shard);
                match saved.get(&(GROUP.to_string(), r.shard)) {
                    Some(seq) => out.line(format!(
                        "  resumed in shard {} at seq {}, just after its checkpoint {seq}",
                        r.shard, r.record.seq
                    ))?,
                    None => out.line(format!(
                        "  started shard {} at its first record, seq {}, once its parents were finished",
                        r.shard, r.record.seq
                    ))?,
                }
            }
            out.line(consumed_line(r))?;
        }
        total += batch.len();
        second.checkpoint_all()?;
    }
    drop(second);
    let plural = if total == 1 { "" } else { "s" };
    out.line(format!(
        "  worker-2 read {total} record{plural} and checkpointed: a third worker would find nothing new"
    ))?;
    out.line(format!(
        "  (the same from a script: weir --data {} stream consume {RESHARD} --group {GROUP} --checkpoint)",
        engine.dir().display()
    ))
}

fn consumed_line(r: &ConsumedRecord) -> String {
    format!(
        "    shard {} seq {:<4} key {:<8} data {}",
        r.shard,
        r.record.seq,
        show_bytes(&r.record.partition_key, 40),
        show_bytes(&r.record.data, 60)
    )
}

fn read_all(stream: &Stream, shard: u32, from: StartingPosition) -> CliResult<Vec<StreamRecord>> {
    let mut iterator = stream.iterator(shard, from)?;
    let mut records = Vec::new();
    loop {
        let batch = iterator.next_batch(1000)?;
        let done = batch.records.is_empty() || batch.behind_records == 0;
        records.extend(batch.records);
        if done {
            return Ok(records);
        }
    }
}

fn record_line(r: &StreamRecord) -> String {
    format!(
        "    seq {:<4} {}  key {:<8} data {}",
        r.seq,
        utc(r.time_ms),
        show_bytes(&r.partition_key, 40),
        show_bytes(&r.data, 60)
    )
}

/// Creates a queue, or makes an existing one (from an earlier run) match `config`, then empties
/// it so this run starts clean: a purge, or (a queue is purged once a minute) a new queue of
/// the same name, which its subscriptions and source queues reach by name as before.
fn fresh_queue(engine: &Engine, name: &str, config: QueueConfig, out: &mut Out) -> CliResult<Queue> {
    match engine.create_queue(name, config.clone()) {
        Ok(()) => {}
        Err(weir::Error::AlreadyExists { .. }) => engine.set_queue_attributes(name, config.clone())?,
        Err(e) => return Err(e.into()),
    }
    let queue = engine.queue(name)?;
    let left = queue.attributes();
    let left = left.approximate_visible + left.approximate_in_flight + left.approximate_delayed;
    let queue = match queue.purge() {
        Ok(()) => queue,
        Err(weir::Error::PurgeInProgress { .. }) => {
            drop(queue);
            engine.delete_queue(name)?;
            engine.create_queue(name, config)?;
            engine.queue(name)?
        }
        Err(e) => return Err(e.into()),
    };
    if left > 0 {
        let plural = if left == 1 { "" } else { "s" };
        out.line(format!("queue {name:?} is ready (purged {left} message{plural} an earlier run left)"))?;
    } else {
        out.line(format!("queue {name:?} is ready"))?;
    }
    Ok(queue)
}

/// Receives right away (no long poll); `visibility` overrides the queue's timeout.
fn receive_now(queue: &Queue, visibility: Option<Duration>) -> CliResult<Vec<ReceivedMessage>> {
    let options = ReceiveOptions {
        max: weir::queue::MAX_RECEIVE,
        wait: Some(Duration::ZERO),
        visibility_timeout: visibility,
        ..ReceiveOptions::default()
    };
    Ok(queue.receive(options)?)
}

fn body(m: &ReceivedMessage) -> String {
    show_bytes(&m.body, SHOW_BODY)
}

/// Queues: a work queue with a dead-letter queue (receive, delete, a poison message that keeps
/// failing, redrive), then a FIFO queue (order within a message group, deduplication).
fn demo_queues(engine: &Engine, out: &mut Out) -> CliResult<()> {
    out.line("")?;
    out.line("== Queues (SQS-style: receive hides a message until it is deleted or its timeout ends) ==")?;
    fresh_queue(engine, JOBS_DLQ, QueueConfig::default(), out)?;
    let redrive = RedrivePolicy { dead_letter_queue: JOBS_DLQ.to_string(), max_receives: JOBS_MAX_RECEIVES };
    let jobs = fresh_queue(engine, JOBS, QueueConfig { redrive: Some(redrive), ..QueueConfig::default() }, out)?;
    out.line(format!(
        "  ({JOBS:?} sends a message to {JOBS_DLQ:?} once it has been received {JOBS_MAX_RECEIVES} times without being deleted)"
    ))?;

    out.line("")?;
    out.line("send (each call returns once the message is on disk):")?;
    let poison = "resize corrupt.jpg";
    for text in ["resize photo-1.jpg", "resize photo-2.jpg", poison] {
        let sent = jobs.send(text.as_bytes(), SendOptions::default())?;
        out.line(format!("  {text:<20} -> message {}", sent.message_id))?;
    }

    out.line("")?;
    out.line(
        "a worker receives (visibility timeout 0 here, so a failure is retried at once) and deletes what it finished:",
    )?;
    for round in 1..=JOBS_MAX_RECEIVES {
        for m in receive_now(&jobs, Some(Duration::ZERO))? {
            if &m.body[..] == poison.as_bytes() {
                out.line(format!(
                    "  round {round}: {} (receive {}) -> fails, not deleted: it comes back",
                    body(&m),
                    m.receive_count
                ))?;
            } else {
                jobs.delete(&m.receipt_handle)?;
                out.line(format!("  round {round}: {} (receive {}) -> done, deleted", body(&m), m.receive_count))?;
            }
        }
    }
    let next = receive_now(&jobs, Some(Duration::ZERO))?;
    out.line(format!(
        "  round {}: {} messages: the poison message was received {JOBS_MAX_RECEIVES} times, so this receive moved it to {JOBS_DLQ:?}",
        JOBS_MAX_RECEIVES + 1,
        next.len()
    ))?;
    for m in engine.queue(JOBS_DLQ)?.peek(10)? {
        out.line(format!("  peek {JOBS_DLQ}: {} ({})", show_bytes(&m.body, SHOW_BODY), m.state))?;
    }
    let moved = engine.redrive(JOBS_DLQ, None)?;
    out.line(format!("redrive {JOBS_DLQ}: moved {} back to {JOBS:?} (skipped {})", moved.moved, moved.skipped))?;
    for m in jobs.peek(10)? {
        out.line(format!(
            "  peek {JOBS}: {} ({}, received {} times)",
            show_bytes(&m.body, SHOW_BODY),
            m.state,
            m.receive_count
        ))?;
    }
    out.line("  (it waits there for a fixed worker; the next demo run purges it)")?;

    out.line("")?;
    out.line("FIFO: order within each message group, duplicates dropped for 5 minutes:")?;
    let orders = fresh_queue(engine, ORDERS, QueueConfig::fifo(), out)?;
    // Deduplication ids unique to this run: a run a minute ago must not swallow this one's.
    let run = engine.clock().now_ms();
    let steps = [("alice", "placed"), ("bob", "placed"), ("alice", "paid"), ("bob", "paid"), ("alice", "shipped")];
    let mut first_id = String::new();
    for (i, (group, step)) in steps.iter().enumerate() {
        let text = format!("{group}: order {step}");
        let options = SendOptions {
            group: Some(group.to_string()),
            dedup_id: Some(format!("{run}-{i}")),
            ..SendOptions::default()
        };
        let sent = orders.send(text.as_bytes(), options)?;
        out.line(format!(
            "  group {group:<5} {text:<20} -> message {} sequence {}",
            sent.message_id,
            sent.sequence.unwrap_or_default()
        ))?;
        if i == 0 {
            first_id = sent.message_id;
        }
    }
    let again =
        SendOptions { group: Some("alice".into()), dedup_id: Some(format!("{run}-0")), ..SendOptions::default() };
    let duplicate = orders.send(b"alice: order placed", again)?;
    out.line(format!(
        "  the first send again, same deduplication id -> message {} ({}: nothing stored)",
        duplicate.message_id,
        if duplicate.message_id == first_id { "the first one's id" } else { "a new id?" }
    ))?;
    let head = orders.receive(ReceiveOptions { max: 1, wait: Some(Duration::ZERO), ..ReceiveOptions::default() })?;
    for m in &head {
        out.line(format!("receive 1: {} (group {})", body(m), m.group.as_deref().unwrap_or("-")))?;
    }
    let rest = receive_now(&orders, None)?;
    out.line("receive 10 while that one is in flight: its group waits, the other group is served in order")?;
    for m in &rest {
        out.line(format!("  {} (group {})", body(m), m.group.as_deref().unwrap_or("-")))?;
        orders.delete(&m.receipt_handle)?;
    }
    for m in &head {
        orders.delete(&m.receipt_handle)?;
    }
    out.line("delete the first, receive 10 again: the rest of its group, in order")?;
    for m in receive_now(&orders, None)? {
        out.line(format!("  {} (group {})", body(&m), m.group.as_deref().unwrap_or("-")))?;
        orders.delete(&m.receipt_handle)?;
    }
    out.line(format!(
        "  (the same from a script: weir --data {} queue receive {ORDERS} --max 10)",
        engine.dir().display()
    ))
}

/// Topics: one publish fans out to two queues, one of them behind a filter policy.
fn demo_topics(engine: &Engine, out: &mut Out) -> CliResult<()> {
    out.line("")?;
    out.line("== Topics (SNS-style: a publish reaches every subscribed queue whose filter matches) ==")?;
    let audit = fresh_queue(engine, AUDIT, QueueConfig::default(), out)?;
    let billing = fresh_queue(engine, BILLING, QueueConfig::default(), out)?;
    engine.create_topic(EVENTS, TopicConfig::default())?;
    out.line(format!("topic {EVENTS:?} is ready"))?;

    // Keep one subscription of each wanted kind from earlier runs; drop anything else.
    let audit_endpoint = format!("queue:{AUDIT}");
    let billing_endpoint = format!("queue:{BILLING}");
    let (mut have_audit, mut have_billing) = (false, false);
    for sub in engine.list_subscriptions(EVENTS)? {
        let is_audit = sub.endpoint == audit_endpoint && sub.raw && sub.filter_policy.is_none();
        let is_billing = sub.endpoint == billing_endpoint
            && !sub.raw
            && sub.filter_scope == "attributes"
            && sub.filter_policy.as_deref() == Some(BILLING_POLICY);
        if is_audit && !have_audit {
            have_audit = true;
        } else if is_billing && !have_billing {
            have_billing = true;
        } else {
            engine.unsubscribe(&sub.subscription_id)?;
        }
    }
    if !have_audit {
        let options = SubscribeOptions { raw: true, ..SubscribeOptions::default() };
        engine.subscribe(EVENTS, Endpoint::Queue(AUDIT.to_string()), options)?;
    }
    if !have_billing {
        let options =
            SubscribeOptions { filter_policy: Some(BILLING_POLICY.to_string()), ..SubscribeOptions::default() };
        engine.subscribe(EVENTS, Endpoint::Queue(BILLING.to_string()), options)?;
    }
    out.line(format!("  {AUDIT:?} subscribes raw (the body as published), with no filter"))?;
    out.line(format!("  {BILLING:?} subscribes with the filter policy {BILLING_POLICY} (and gets a JSON envelope)"))?;

    out.line("")?;
    out.line("publish (the publish and every queue's copy are written as one: all durable, or none):")?;
    let topic = engine.topic(EVENTS)?;
    for (kind, text) in [("invoice", "invoice 1001: 250.00 EUR"), ("signup", "user alice signed up")] {
        let attributes: Attributes = [("kind".to_string(), AttributeValue::String(kind.to_string()))].into();
        let published = topic.publish(text.as_bytes(), PublishOptions { attributes, ..PublishOptions::default() })?;
        out.line(format!(
            "  kind={kind:<8} {text:<26} -> delivered to {}, filtered out by {}",
            published.delivered, published.filtered
        ))?;
    }

    out.line("")?;
    for (name, queue) in [(AUDIT, &audit), (BILLING, &billing)] {
        let got = receive_now(queue, None)?;
        out.line(format!("receive from {name:?}: {} message{}", got.len(), if got.len() == 1 { "" } else { "s" }))?;
        for m in &got {
            match (m.attributes.get("kind"), std::str::from_utf8(&m.body)) {
                (Some(AttributeValue::String(kind)), _) => {
                    out.line(format!("  {} (attribute kind={kind})", body(m)))?;
                }
                // A non-raw delivery: the SNS-style JSON envelope, shown as it is.
                (_, Ok(text)) if text.starts_with('{') => {
                    let shown: String = text.chars().take(ENVELOPE_CHARS).collect();
                    let more = if shown.len() < text.len() { "..." } else { "" };
                    out.line(format!("  envelope: {shown}{more}"))?;
                }
                _ => out.line(format!("  {}", body(m)))?,
            }
            queue.delete(&m.receipt_handle)?;
        }
    }
    out.line(format!(
        "  (the same from a script: weir --data {} topic publish {EVENTS} TEXT --attr kind=invoice)",
        engine.dir().display()
    ))
}
