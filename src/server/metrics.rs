//! `GET /metrics`: Prometheus text format (version 0.0.4).
//!
//! - per queue: messages visible, in flight and delayed, and the oldest message's age (what
//!   autoscaling on queue depth reads);
//! - per stream and shard: records and bytes stored, records and bytes written and read since
//!   the engine opened (counters: `rate()` gives the rates), and the write and read rates since
//!   the previous scrape (gauges, for dashboards without PromQL);
//! - per operation: requests, errors, and a latency histogram.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Shared;
use crate::stream::ShardStats;

/// The content type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the latency histogram's buckets, seconds: from a cached answer to a 20 s
/// long poll.
const BUCKETS_S: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0];

#[derive(Debug, Default, Clone)]
struct OpStats {
    requests: u64,
    errors: u64,
    /// Count per bucket (not cumulative); the last slot is +Inf.
    buckets: [u64; BUCKETS_S.len() + 1],
    sum_s: f64,
}

/// Counters of the requests served, and the previous scrape's shard counters (for rates).
#[derive(Debug, Default)]
pub struct Metrics {
    ops: Mutex<BTreeMap<(&'static str, &'static str), OpStats>>,
    last_scrape: Mutex<HashMap<(String, u32), (Instant, ShardStats)>>,
}

impl Metrics {
    /// Counts one request. Operations no table knows are counted as `unknown`, so a client
    /// cannot grow the label set.
    pub fn record(&self, service: &'static str, operation: Option<&'static str>, error: bool, elapsed: Duration) {
        let mut ops = self.ops.lock();
        let stats = ops.entry((service, operation.unwrap_or("unknown"))).or_default();
        stats.requests += 1;
        stats.errors += u64::from(error);
        let s = elapsed.as_secs_f64();
        let bucket = BUCKETS_S.iter().position(|&b| s <= b).unwrap_or(BUCKETS_S.len());
        stats.buckets[bucket] += 1;
        stats.sum_s += s;
    }
}

struct QueueSample {
    name: String,
    visible: u64,
    in_flight: u64,
    delayed: u64,
    oldest_age_s: u64,
}

/// The whole exposition.
pub(crate) async fn render(shared: &Arc<Shared>) -> String {
    let sampled = shared
        .blocking(|engine| {
            let queues: Vec<QueueSample> = engine
                .list_queues()
                .into_iter()
                .filter_map(|name| engine.queue(&name).ok())
                .map(|q| {
                    let a = q.attributes();
                    QueueSample {
                        name: a.name,
                        visible: a.approximate_visible,
                        in_flight: a.approximate_in_flight,
                        delayed: a.approximate_delayed,
                        oldest_age_s: a.oldest_message_age_s,
                    }
                })
                .collect();
            let shards: Vec<(String, u32, ShardStats)> = engine
                .list_streams()
                .into_iter()
                .filter_map(|name| engine.stream(&name).ok().map(|s| (name, s)))
                .flat_map(|(name, stream)| {
                    stream.shards().into_iter().map(move |shard| (name.clone(), shard.meta.id, shard.stats()))
                })
                .collect();
            (queues, shards)
        })
        .await;
    let (queues, shards) = sampled.unwrap_or_default();
    let mut out = String::new();
    write_queues(&mut out, &queues);
    write_shards(&mut out, &shards, &shared.metrics);
    write_ops(&mut out, &shared.metrics.ops.lock());
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn write_queues(out: &mut String, queues: &[QueueSample]) {
    header(out, "weir_queue_messages", "gauge", "Messages in a queue by state (visible, in_flight, delayed).");
    for q in queues {
        let name = label(&q.name);
        for (state, n) in [("visible", q.visible), ("in_flight", q.in_flight), ("delayed", q.delayed)] {
            let _ = writeln!(out, "weir_queue_messages{{queue=\"{name}\",state=\"{state}\"}} {n}");
        }
    }
    header(
        out,
        "weir_queue_oldest_message_age_seconds",
        "gauge",
        "Age of the oldest message in a queue (0 when empty).",
    );
    for q in queues {
        let _ =
            writeln!(out, "weir_queue_oldest_message_age_seconds{{queue=\"{}\"}} {}", label(&q.name), q.oldest_age_s);
    }
}

fn write_shards(out: &mut String, shards: &[(String, u32, ShardStats)], metrics: &Metrics) {
    type Field = fn(&ShardStats) -> u64;
    let gauges: [(&str, &str, Field); 2] = [
        ("weir_stream_shard_records", "Records stored in a shard.", |s| s.records),
        ("weir_stream_shard_bytes", "Bytes of a shard's segments on disk.", |s| s.bytes),
    ];
    let counters: [(&str, &str, Field); 4] = [
        ("weir_stream_shard_written_records_total", "Records written to a shard since the engine opened.", |s| {
            s.written_records
        }),
        ("weir_stream_shard_written_bytes_total", "Bytes written to a shard since the engine opened.", |s| {
            s.written_bytes
        }),
        ("weir_stream_shard_read_records_total", "Records read from a shard since the engine opened.", |s| {
            s.read_records
        }),
        ("weir_stream_shard_read_bytes_total", "Bytes read from a shard since the engine opened.", |s| s.read_bytes),
    ];
    for (name, help, field) in gauges {
        header(out, name, "gauge", help);
        for (stream, shard, stats) in shards {
            let _ = writeln!(out, "{name}{{stream=\"{}\",shard=\"{shard}\"}} {}", label(stream), field(stats));
        }
    }
    for (name, help, field) in counters {
        header(out, name, "counter", help);
        for (stream, shard, stats) in shards {
            let _ = writeln!(out, "{name}{{stream=\"{}\",shard=\"{shard}\"}} {}", label(stream), field(stats));
        }
    }
    // Rates since the previous scrape.
    let now = Instant::now();
    let mut last = metrics.last_scrape.lock();
    let mut rates = Vec::with_capacity(shards.len());
    for (stream, shard, stats) in shards {
        let key = (stream.clone(), *shard);
        let rate = match last.get(&key) {
            Some((then, before)) => {
                let secs = now.duration_since(*then).as_secs_f64().max(1e-3);
                let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
                [
                    per_s(stats.written_records, before.written_records),
                    per_s(stats.written_bytes, before.written_bytes),
                    per_s(stats.read_records, before.read_records),
                    per_s(stats.read_bytes, before.read_bytes),
                ]
            }
            None => [0.0; 4],
        };
        last.insert(key, (now, *stats));
        rates.push((stream, shard, rate));
    }
    last.retain(|(stream, shard), _| shards.iter().any(|(s, id, _)| s == stream && id == shard));
    let names = [
        ("weir_stream_shard_write_records_per_second", "Records written per second since the previous scrape."),
        ("weir_stream_shard_write_bytes_per_second", "Bytes written per second since the previous scrape."),
        ("weir_stream_shard_read_records_per_second", "Records read per second since the previous scrape."),
        ("weir_stream_shard_read_bytes_per_second", "Bytes read per second since the previous scrape."),
    ];
    for (i, (name, help)) in names.iter().enumerate() {
        header(out, name, "gauge", help);
        for (stream, shard, rate) in &rates {
            let _ = writeln!(out, "{name}{{stream=\"{}\",shard=\"{shard}\"}} {}", label(stream), rate[i]);
        }
    }
}

fn write_ops(out: &mut String, ops: &BTreeMap<(&'static str, &'static str), OpStats>) {
    header(out, "weir_requests_total", "counter", "Requests served, by service and operation.");
    for ((service, op), s) in ops {
        let _ = writeln!(out, "weir_requests_total{{service=\"{service}\",operation=\"{op}\"}} {}", s.requests);
    }
    header(out, "weir_request_errors_total", "counter", "Requests answered with an error, by service and operation.");
    for ((service, op), s) in ops {
        let _ = writeln!(out, "weir_request_errors_total{{service=\"{service}\",operation=\"{op}\"}} {}", s.errors);
    }
    header(out, "weir_request_duration_seconds", "histogram", "Time to answer a request (long polls included).");
    for ((service, op), s) in ops {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS_S.iter().enumerate() {
            cumulative += s.buckets[i];
            let _ = writeln!(
                out,
                "weir_request_duration_seconds_bucket{{service=\"{service}\",operation=\"{op}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += s.buckets[BUCKETS_S.len()];
        let _ = writeln!(
            out,
            "weir_request_duration_seconds_bucket{{service=\"{service}\",operation=\"{op}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ =
            writeln!(out, "weir_request_duration_seconds_sum{{service=\"{service}\",operation=\"{op}\"}} {}", s.sum_s);
        let _ = writeln!(
            out,
            "weir_request_duration_seconds_count{{service=\"{service}\",operation=\"{op}\"}} {}",
            s.requests
        );
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_end_at_the_count() {
        let m = Metrics::default();
        m.record("sqs", Some("SendMessage"), false, Duration::from_micros(300));
        m.record("sqs", Some("SendMessage"), true, Duration::from_millis(30));
        m.record("sqs", Some("ReceiveMessage"), false, Duration::from_secs(60));
        m.record("sqs", None, true, Duration::ZERO);
        let mut out = String::new();
        write_ops(&mut out, &m.ops.lock());
        assert!(out.contains("weir_requests_total{service=\"sqs\",operation=\"SendMessage\"} 2"), "{out}");
        assert!(out.contains("weir_request_errors_total{service=\"sqs\",operation=\"SendMessage\"} 1"));
        assert!(out.contains("weir_request_errors_total{service=\"sqs\",operation=\"unknown\"} 1"));
        assert!(out.contains("operation=\"SendMessage\",le=\"0.0005\"} 1"));
        assert!(out.contains("operation=\"SendMessage\",le=\"0.05\"} 2"));
        assert!(out.contains("operation=\"ReceiveMessage\",le=\"25\"} 0"));
        assert!(out.contains("operation=\"ReceiveMessage\",le=\"+Inf\"} 1"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
