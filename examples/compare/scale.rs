//! `--scale` (issue 15, "Scale"): how weir's cost grows with the number of objects. The same
//! work spread over more of them: `queue_cycle` (8 senders, 8 receivers, `Durability::Always`)
//! over 1, 10, 100 and 1,000 queues, and `stream_put_batch` (one writer, batches of 100 records
//! of 1 KiB) into a stream of 1, 16 and 256 shards.
//!
//! Every run is a child process (this example re-executed with `--child scale-queues` or
//! `scale-shards`) on a fresh directory, so that each run's resident memory is its own: the
//! child reports its rate, its `VmRSS` once its objects exist, and at the end its peak
//! (`VmHWM`), `VmRSS` and `RssAnon`. The counts alternate as the systems of the other rows do
//! (the order rotates every round), and each count's median is reported.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use weir::queue::{Queue, QueueConfig, SendOptions};
use weir::Durability;

use crate::common::*;
use crate::weir_side::{self, BODY, LONG_POLL, RECEIVERS, SENDERS};

/// How long a receiver that owns several queues waits on one of them once a whole pass over
/// them found nothing: short, since messages may meanwhile arrive in the others. A receiver of
/// one queue long-polls it for [`LONG_POLL`], as in `queue_cycle`.
const MULTI_QUEUE_WAIT: Duration = Duration::from_millis(10);

/// One family of the scale table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `queue_cycle` over N queues.
    Queues,
    /// `stream_put_batch` into N shards.
    Shards,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Queues, Family::Shards];

    /// The workload's name (as in the comparison table).
    pub fn workload(self) -> &'static str {
        match self {
            Family::Queues => "queue_cycle",
            Family::Shards => "stream_put_batch",
        }
    }

    /// What is counted.
    pub fn object(self) -> &'static str {
        match self {
            Family::Queues => "queues",
            Family::Shards => "shards",
        }
    }

    pub fn counts(self) -> &'static [usize] {
        match self {
            Family::Queues => &[1, 10, 100, 1000],
            Family::Shards => &[1, 16, 256],
        }
    }

    /// The hidden `--child` value of a run of this family.
    pub fn child_kind(self) -> &'static str {
        match self {
            Family::Queues => "scale-queues",
            Family::Shards => "scale-shards",
        }
    }

    pub fn from_child_kind(kind: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.child_kind() == kind)
    }

    fn ops(self) -> &'static str {
        match self {
            Family::Queues => "messages/s through send+receive+delete",
            Family::Shards => "records/s",
        }
    }
}

/// Resident memory of one child run, in bytes (from its `/proc/self/status`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Memory {
    /// `VmRSS` once the objects were created, before the timed window.
    pub setup_rss: u64,
    /// `VmHWM`: the peak resident set of the whole run.
    pub hwm: u64,
    /// `VmRSS` and `RssAnon` at the end of the window.
    pub rss: u64,
    pub rss_anon: u64,
}

/// One line of the scale table: one family at one count.
pub struct ScaleRow {
    pub family: Family,
    pub count: usize,
    pub series: Series,
    /// The memory of each round, in the order they ran.
    pub memory: Vec<Memory>,
    /// What a unit of work carried in each round: messages per receive that found any
    /// (queues), records per fsync (shards).
    pub batch: Vec<f64>,
}

impl ScaleRow {
    /// The median of each memory figure over the rounds.
    pub fn memory_median(&self) -> Option<Memory> {
        if self.memory.is_empty() {
            return None;
        }
        let m = |f: fn(&Memory) -> u64| median(&self.memory.iter().map(|x| f(x) as f64).collect::<Vec<_>>()) as u64;
        Some(Memory {
            setup_rss: m(|x| x.setup_rss),
            hwm: m(|x| x.hwm),
            rss: m(|x| x.rss),
            rss_anon: m(|x| x.rss_anon),
        })
    }
}

/// Runs one family at each of its counts, alternating, each run in a fresh child process.
pub fn run(ctx: &Ctx, family: Family) -> Vec<ScaleRow> {
    let memory: RefCell<BTreeMap<usize, Vec<(Memory, f64)>>> = RefCell::new(BTreeMap::new());
    let labels: Vec<String> = family.counts().iter().map(|n| n.to_string()).collect();
    let runs: Vec<BoxedRun<'_>> = family
        .counts()
        .iter()
        .map(|&count| {
            let memory = &memory;
            Box::new(move |dir: &Path| {
                let (rate, mem, batch) = spawn_child(ctx, family, count, dir)?;
                memory.borrow_mut().entry(count).or_default().push((mem, batch));
                eprintln!(
                    "    {count} {}: VmRSS after setup {:.1} MiB, VmHWM {:.1} MiB, RssAnon at the end {:.1} MiB",
                    family.object(),
                    mib(mem.setup_rss),
                    mib(mem.hwm),
                    mib(mem.rss_anon)
                );
                Ok(rate)
            }) as BoxedRun<'_>
        })
        .collect();
    let systems: Vec<(&str, TryRun<'_>)> =
        labels.iter().map(|l| l.as_str()).zip(runs.iter().map(|r| &**r as TryRun<'_>)).collect();
    // Every count runs: `--systems` picks the systems of the comparison, not these.
    let all = Ctx { systems: Vec::new(), tmp_root: ctx.tmp_root.clone(), ..*ctx };
    let name = format!("scale_{}", family.workload());
    let series = alternate_series(&all, &name, &systems);
    drop(systems);
    drop(runs);
    let mut memory = memory.into_inner();
    family
        .counts()
        .iter()
        .zip(series)
        .map(|(&count, series)| {
            let (memory, batch) = memory.remove(&count).unwrap_or_default().into_iter().unzip();
            ScaleRow { family, count, series, memory, batch }
        })
        .collect()
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

/// Runs one child and parses its `scale RATE SETUP_RSS HWM RSS RSS_ANON BATCH` line.
fn spawn_child(ctx: &Ctx, family: Family, count: usize, dir: &Path) -> Result<(f64, Memory, f64), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this example's executable: {e}"))?;
    let out = Command::new(exe)
        .args(["--child", family.child_kind(), "--child-dir"])
        .arg(dir.join("data"))
        .args(["--child-count", &count.to_string(), "--window", &ctx.window.as_secs_f64().to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the scale child: {e}"))?;
    if !out.status.success() {
        return Err(format!("the scale child failed: {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("scale ")).ok_or("the scale child printed no result")?;
    parse_result(line)
}

fn parse_result(line: &str) -> Result<(f64, Memory, f64), String> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).ok_or(format!("malformed scale result {line:?}"));
    let rate = num(1)?;
    let mem = Memory { setup_rss: num(2)? as u64, hwm: num(3)? as u64, rss: num(4)? as u64, rss_anon: num(5)? as u64 };
    Ok((rate, mem, num(6)?))
}

/// A field of `/proc/self/status` in bytes (`VmHWM`, `VmRSS`, `RssAnon`: kB in the file).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("cannot read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or_else(|| panic!("no {field} line in /proc/self/status"))
}

/// Entry point of a scale child: one timed run of `family` at `count` on `dir`; prints the
/// result line the parent parses.
pub fn child(family: Family, dir: &Path, count: usize, window: Duration) {
    let (rate, setup_rss, batch) = match family {
        Family::Queues => queues_child(dir, count, window),
        Family::Shards => shards_child(dir, count, window),
    };
    println!(
        "scale {rate} {setup_rss} {} {} {} {batch}",
        status_bytes("VmHWM"),
        status_bytes("VmRSS"),
        status_bytes("RssAnon")
    );
}

/// The queues receiver `j` takes from: every `RECEIVERS`-th queue from `j` on, or, with fewer
/// queues than receivers, queue `j % count` (shared with the other receivers of that queue).
fn receiver_queues(j: usize, count: usize) -> Vec<usize> {
    if count >= RECEIVERS {
        (j..count).step_by(RECEIVERS).collect()
    } else {
        vec![j % count]
    }
}

/// The queue of sender `i`'s `k`-th send: each sender walks over every queue, from its own
/// starting point, so that all queues get the same share.
fn sender_queue(i: usize, k: usize, count: usize) -> usize {
    (i * count / SENDERS + k) % count
}

/// `queue_cycle` over `count` queues; returns (messages/s, VmRSS after setup, messages per
/// receive that found any).
fn queues_child(dir: &Path, count: usize, window: Duration) -> (f64, u64, f64) {
    let engine = open_weir(dir, Durability::Always);
    let queues: Vec<Queue> = (0..count)
        .map(|i| {
            let name = format!("bench-{i:04}");
            engine.create_queue(&name, QueueConfig::default()).expect("weir: create queue");
            engine.queue(&name).expect("weir: queue")
        })
        .collect();
    let body = text_noise(BODY, 3);
    let setup_rss = status_bytes("VmRSS");
    // Receives that returned messages, and the messages they returned (the batch size).
    let (batches, taken) = (AtomicU64::new(0), AtomicU64::new(0));
    let rate = timed(SENDERS + RECEIVERS, window, |i| {
        let (queues, body, batches, taken) = (&queues, &body, &batches, &taken);
        move |stop: &Stop| {
            if i < SENDERS {
                let mut k = 0;
                return count_until_stop(stop, || {
                    let q = &queues[sender_queue(i, k, count)];
                    k += 1;
                    q.send(body, SendOptions::default()).expect("weir: send");
                    0
                });
            }
            let own = receiver_queues(i - SENDERS, count);
            let (mut next, mut empty) = (0, 0);
            count_until_stop(stop, || {
                let q = &queues[own[next]];
                next = (next + 1) % own.len();
                // Wait only once a whole pass over the receiver's queues found nothing.
                let wait = (empty >= own.len()).then_some(if own.len() == 1 { LONG_POLL } else { MULTI_QUEUE_WAIT });
                let n = weir_side::receive_and_delete(q, wait, &mut |_: &[u8]| {}).expect("weir: receive");
                empty = if n == 0 { empty + 1 } else { 0 };
                if n > 0 {
                    batches.fetch_add(1, Ordering::Relaxed);
                    taken.fetch_add(n, Ordering::Relaxed);
                }
                n
            })
        }
    });
    let per_receive = taken.into_inner() as f64 / batches.into_inner().max(1) as f64;
    eprintln!("    {count} queues: {per_receive:.1} messages per receive that found any");
    (rate, setup_rss, per_receive)
}

/// `stream_put_batch` into a stream of `count` shards: 100 records of 1 KiB with 100 distinct
/// partition keys, so that a batch spreads over up to 100 shards; returns (records/s, VmRSS
/// after setup, records per fsync).
fn shards_child(dir: &Path, count: usize, window: Duration) -> (f64, u64, f64) {
    let batch: Vec<(Vec<u8>, Vec<u8>)> =
        (0..100).map(|i| (format!("pk-{i}").into_bytes(), noise(1024, 1 + i as u64))).collect();
    let shards = u32::try_from(count).expect("shard count fits u32");
    // The stream is created by weir_put_batch; its setup RSS is measured here, before it.
    let setup_rss = status_bytes("VmRSS");
    let (rate, per_fsync) = crate::stream::weir_put_batch(window, dir, shards, &batch, true);
    (rate, setup_rss, per_fsync.unwrap_or(f64::NAN))
}

/// The scale table as printed.
pub fn render(rows: &[ScaleRow]) -> String {
    let mut out = format!(
        "{:<18} {:>12} {:>12} {:>9} {:>7} {:>11} {:>11} {:>11}  rounds\n",
        "scale", "objects", "ops/s", "vs 1", "batch", "setup MiB", "VmHWM MiB", "RssAnon MiB"
    );
    for r in rows {
        let rounds: Vec<String> = r.series.rounds.iter().map(|v| fmt_rate(*v)).collect();
        let mem = r.memory_median();
        let cell = |f: fn(&Memory) -> u64| mem.map_or("-".into(), |m| format!("{:.1}", mib(f(&m))));
        out.push_str(&format!(
            "{:<18} {:>12} {:>12} {:>9} {:>7} {:>11} {:>11} {:>11}  {}\n",
            r.family.workload(),
            format!("{} {}", r.count, r.family.object()),
            r.series.median().map_or("-".into(), fmt_rate),
            if r.series.unstable() { "unstable".into() } else { fmt_ratio(vs_one(r, rows)) },
            if r.batch.is_empty() { "-".into() } else { format!("{:.1}", median(&r.batch)) },
            cell(|m| m.setup_rss),
            cell(|m| m.hwm),
            cell(|m| m.rss_anon),
            r.series.error.as_ref().map_or_else(|| rounds.join(" "), |e| format!("ERROR: {e}")),
        ));
    }
    out
}

/// This row's median over the same family's one-object median (None if either is unstable).
pub fn vs_one(row: &ScaleRow, rows: &[ScaleRow]) -> Option<f64> {
    let one = rows.iter().find(|r| r.family == row.family && r.count == 1)?;
    Some(row.series.usable()? / one.series.usable()?)
}

/// The JSON of the scale rows: one object per family and count.
pub fn to_json(rows: &[ScaleRow]) -> serde_json::Value {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mem = r.memory_median();
            serde_json::json!({
                "name": r.family.workload(),
                "object": r.family.object(),
                "count": r.count,
                "ops": r.family.ops(),
                "ops_s": r.series.median(),
                "rounds": r.series.rounds,
                "unstable": r.series.unstable(),
                "vs_one_object": vs_one(r, rows),
                "setup_rss_bytes": mem.map(|m| m.setup_rss),
                "vm_hwm_bytes": mem.map(|m| m.hwm),
                "vm_rss_bytes": mem.map(|m| m.rss),
                "rss_anon_bytes": mem.map(|m| m.rss_anon),
                "batch": (!r.batch.is_empty()).then(|| median(&r.batch)),
                "batch_is": match r.family {
                    Family::Queues => "messages per receive that found any",
                    Family::Shards => "records per fsync",
                },
                "error": r.series.error,
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_spread_evenly_over_every_queue() {
        for count in [1, 10, 100, 1000] {
            let mut hits = vec![0u32; count];
            for i in 0..SENDERS {
                for k in 0..count * 3 {
                    hits[sender_queue(i, k, count)] += 1;
                }
            }
            assert!(hits.iter().all(|&h| h == hits[0]), "{count} queues: {hits:?}");
        }
    }

    #[test]
    fn every_queue_has_a_receiver() {
        for count in [1, 10, 100, 1000] {
            let mut owned = vec![0u32; count];
            for j in 0..RECEIVERS {
                for q in receiver_queues(j, count) {
                    owned[q] += 1;
                }
            }
            assert!(owned.iter().all(|&n| n >= 1), "{count} queues: {owned:?}");
            if count >= RECEIVERS {
                assert!(owned.iter().all(|&n| n == 1), "each queue has exactly one receiver");
            }
        }
    }

    #[test]
    fn child_results_parse() {
        let (rate, m, batch) = parse_result("scale 1234.5 10 20 30 40 9.5").expect("parses");
        assert_eq!(rate, 1234.5);
        assert_eq!(m, Memory { setup_rss: 10, hwm: 20, rss: 30, rss_anon: 40 });
        assert_eq!(batch, 9.5);
        assert!(parse_result("scale 1 2").is_err());
    }
}
