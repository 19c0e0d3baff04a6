//! `weir inspect` and `weir verify`: read-only looks at segment files, without the engine;
//! `weir salvage`: set damaged bytes aside so a data directory opens again.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use weir::inspect::{self, SalvageReport, SegmentReport};

use crate::out::{show_bytes, size, utc, CliError, CliResult, Out, RecordJson};

/// Longest key or data shown per record in text output.
const SHOW_BYTES: usize = 120;

/// Arguments of `weir inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A segment file (*.seg) or a directory (a data directory, or any log directory in it).
    path: PathBuf,
    /// Also list every record.
    #[arg(long)]
    records: bool,
    /// Print JSON, one object per line: {"kind":"segment",..} and, with --records, {"kind":"record",..}.
    #[arg(long)]
    json: bool,
}

/// Arguments of `weir verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A data directory (or a log directory, or one segment file).
    dir: PathBuf,
}

/// Arguments of `weir salvage`.
#[derive(Debug, Args)]
pub struct SalvageArgs {
    /// The data directory (it takes the directory's lock: stop the process using it first).
    dir: PathBuf,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `weir inspect PATH [--records] [--json]`.
pub fn inspect(args: &InspectArgs) -> CliResult<()> {
    let report = inspect::inspect_path_keyed(&args.path, crate::key_source().as_ref())?;
    let mut out = Out::new();
    let (mut segments, mut records, mut bytes) = (0u64, 0u64, 0u64);
    for log in &report.logs {
        if args.json {
            if log.head.is_some() || log.head_problem.is_some() {
                out.json(&HeadLine {
                    kind: "head",
                    log: log.dir.display().to_string(),
                    head: log.head.as_ref(),
                    problem: log.head_problem.as_deref(),
                })?;
            }
            if log.encrypted {
                let (versions, problem) = match &log.key_versions {
                    Ok(v) => (Some(v), None),
                    Err(p) => (None, Some(p.as_str())),
                };
                out.json(&KeysLine {
                    kind: "keys",
                    log: log.dir.display().to_string(),
                    key_versions: versions,
                    problem,
                })?;
            }
        } else {
            out.line(format!("{}  segments: {}", log.dir.display(), log.segments.len()))?;
            match (&log.head, &log.head_problem) {
                (Some(h), _) => out.line(format!(
                    "  HEAD: active segment {}, numbers reserved below {}, durable below {}",
                    h.active_base, h.reserved_next, h.durable_next
                ))?,
                (None, Some(problem)) => out.line(format!("  HEAD: BAD: {problem}"))?,
                (None, None) => {}
            }
            if log.encrypted {
                out.line(match &log.key_versions {
                    Ok(versions) if versions.is_empty() => "  encrypted: no data key yet".to_string(),
                    Ok(versions) => format!(
                        "  encrypted: data keys wrapped under {}",
                        versions
                            .iter()
                            .map(|v| format!("{} ({})", v.version, v.data_keys))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Err(problem) => format!("  encrypted: KEYS: BAD: {problem}"),
                })?;
            }
        }
        for segment in &log.segments {
            segments += 1;
            records += segment.records;
            bytes += segment.file_bytes;
            if args.json {
                out.json(&SegmentLine { kind: "segment", log: log.dir.display().to_string(), segment })?;
            } else {
                out.line(segment_text(segment))?;
            }
            if args.records {
                print_records(segment, args.json, &mut out)?;
            }
        }
    }
    // The HTTP/HTTPS subscriptions of a data directory, with the deliveries they wait for.
    for sub in inspect::http_subscriptions(&args.path, crate::key_source().as_ref())? {
        if args.json {
            out.json(&HttpLine { kind: "http_subscription", sub: &sub })?;
        } else {
            out.line(format!(
                "http subscription {} of topic {} -> {}: {} pending deliveries{}",
                sub.subscription_id,
                sub.topic,
                sub.endpoint,
                sub.pending_deliveries,
                if sub.pending_confirmation { " (waiting for confirmation)" } else { "" }
            ))?;
        }
    }
    if !args.json {
        out.line(format!(
            "total: {} logs, {segments} segments, {records} records, {}",
            report.logs.len(),
            size(bytes)
        ))?;
    }
    Ok(())
}

/// An HTTP/HTTPS subscription in `inspect --json` output.
#[derive(Serialize)]
struct HttpLine<'a> {
    kind: &'static str,
    #[serde(flatten)]
    sub: &'a inspect::HttpSubscriptionReport,
}

/// A segment in `inspect --json` output.
#[derive(Serialize)]
struct SegmentLine<'a> {
    kind: &'static str,
    log: String,
    #[serde(flatten)]
    segment: &'a SegmentReport,
}

/// A log's `HEAD` file in `inspect --json` output.
#[derive(Serialize)]
struct HeadLine<'a> {
    kind: &'static str,
    log: String,
    #[serde(flatten)]
    head: Option<&'a weir::format::Head>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
}

/// The data keys of an encrypted log in `inspect --json` output: which key-file versions wrap
/// them (names only).
#[derive(Serialize)]
struct KeysLine<'a> {
    kind: &'static str,
    log: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_versions: Option<&'a Vec<inspect::KeyVersionUse>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
}

/// A record in `inspect --records --json` output.
#[derive(Serialize)]
struct RecordLine {
    kind: &'static str,
    segment: String,
    #[serde(flatten)]
    record: RecordJson,
}

fn segment_text(s: &SegmentReport) -> String {
    let name = s.path.file_name().map_or_else(|| s.path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let seqs = if s.records == 0 {
        format!("empty, next seq {}", s.next_seq)
    } else {
        format!("seq {}..={} ({} records)", s.base_seq, s.next_seq - 1, s.records)
    };
    let compression = if s.payload_bytes > 0 {
        format!(
            "payload {} stored / {} raw ({:.0}%)",
            size(s.stored_payload_bytes),
            size(s.payload_bytes),
            s.stored_payload_bytes as f64 * 100.0 / s.payload_bytes as f64
        )
    } else {
        "no payload".to_string()
    };
    let times = match (s.first_time_ms, s.last_time_ms) {
        (Some(first), Some(last)) => format!("  {} .. {}", utc(first), utc(last)),
        _ => String::new(),
    };
    let index = match s.index {
        inspect::IndexState::Missing => "none",
        inspect::IndexState::Ok => "ok",
        inspect::IndexState::Stale => "stale",
        inspect::IndexState::Bad => "BAD",
    };
    let preallocated = match s.preallocated_bytes {
        0 => String::new(),
        n => format!(" ({} preallocated)", size(n)),
    };
    let version = match s.version {
        Some(2) => String::new(),
        Some(v) => format!("  (format version {v})"),
        None => "  (header unreadable)".to_string(),
    };
    let skipped = s.skipped_from.map_or(String::new(), |from| format!("  (skipped {from}..={})", s.base_seq - 1));
    let mut line = format!(
        "  {name}  {seqs}  {} frames ({} compressed)  {}{preallocated}  {compression}{times}  index: {index}{version}{skipped}",
        s.frames,
        s.compressed_frames,
        size(s.file_bytes),
    );
    if let Some(d) = &s.damage {
        line.push_str(&format!("\n    {} at offset {}: {}", d.kind.to_uppercase(), d.offset, d.reason));
    }
    line
}

fn print_records(segment: &SegmentReport, json: bool, out: &mut Out) -> CliResult<()> {
    for record in inspect::segment_records_keyed(&segment.path, crate::key_source().as_ref())? {
        let record = record?;
        if json {
            out.json(&RecordLine {
                kind: "record",
                segment: segment.path.display().to_string(),
                record: RecordJson::new(record.seq, &record.key, &record.value, record.time_ms),
            })?;
        } else {
            out.line(format!(
                "    seq {}  {}  key {}  data {}",
                record.seq,
                utc(record.time_ms),
                show_bytes(&record.key, SHOW_BYTES),
                show_bytes(&record.value, SHOW_BYTES)
            ))?;
        }
    }
    Ok(())
}

/// `weir verify DIR`: one `FILE:OFFSET: note: ...` or `FILE:OFFSET: damage: ...` line per
/// finding on stdout; exit 0 when there is no damage (notes are what a crash normally leaves,
/// which the engine repairs at open), else exit 1.
pub fn verify(args: &VerifyArgs) -> CliResult<ExitCode> {
    let mut progress = Progress::new();
    let keys = crate::key_source();
    let problems = inspect::verify_dir_keyed(&args.dir, keys.as_ref(), &mut |done, total| progress.show(done, total));
    progress.finish();
    let problems = problems?;
    let mut out = Out::new();
    for problem in &problems {
        out.line(problem)?;
    }
    let damage = problems.iter().filter(|p| p.is_damage()).count();
    if damage == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    Err(CliError::Failed(format!("{}: damage found ({damage} problem(s))", args.dir.display())))
}

/// `weir salvage DIR [--json]`: exit 0 when the engine opens afterwards, 1 otherwise.
pub fn salvage(args: &SalvageArgs) -> CliResult<ExitCode> {
    let mut progress = Progress::new();
    let keys = crate::key_source();
    let report = inspect::salvage_dir_keyed(&args.dir, keys.as_ref(), &mut |done, total| progress.show(done, total));
    progress.finish();
    let report = report?;
    let mut out = Out::new();
    if args.json {
        out.json(&report)?;
    } else {
        for line in salvage_text(&report) {
            out.line(line)?;
        }
    }
    match &report.open_error {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => {
            Err(CliError::Failed(format!("{}: the engine still does not open after salvage: {e}", args.dir.display())))
        }
    }
}

/// The text form of a salvage report: a paragraph per log that changed, then a summary.
fn salvage_text(report: &SalvageReport) -> Vec<String> {
    let mut lines = Vec::new();
    for log in report.logs.iter().filter(|l| l.changed() || !l.findings.is_empty()) {
        lines.push(format!("{} ({})", log.relative.display(), log.kind));
        for finding in &log.findings {
            lines.push(format!("  found: {finding}"));
        }
        if log.lost.is_empty() {
            lines.push("  lost: nothing".to_string());
        } else {
            let ranges: Vec<String> = log
                .lost
                .iter()
                .map(|&(s, e)| if e - s == 1 { format!("{s}") } else { format!("{s}..={}", e - 1) })
                .collect();
            lines.push(format!("  lost: sequence numbers {} ({} in all)", ranges.join(", "), log.lost_count()));
        }
        if log.torn_bytes_cut > 0 {
            lines.push(format!("  torn tail cut: {} (an unfinished write)", size(log.torn_bytes_cut)));
        }
        for path in &log.quarantined {
            lines.push(format!("  quarantined: {}", path.display()));
        }
        for path in &log.written {
            lines.push(format!("  written: {}", path.display()));
        }
        lines.push(format!("  kept: {} of segments", size(log.bytes_kept)));
    }
    let changed = report.logs.iter().filter(|l| l.changed()).count();
    let lost: u64 = report.logs.iter().map(|l| l.lost_count()).sum();
    lines.push(format!(
        "checked {} logs ({}): {changed} changed, {lost} records lost",
        report.logs.len(),
        size(report.bytes_checked)
    ));
    if changed > 0 {
        lines.push(format!("original bytes kept in {}", report.quarantine.display()));
    }
    if report.metadata_lost {
        lines.push(
            "METADATA LOST: catalog records are gone; queues, topics, streams or subscriptions they created or \
             changed may be missing or out of date"
                .to_string(),
        );
    }
    lines.push(match &report.open_error {
        None => "the engine opens: yes".to_string(),
        Some(e) => format!("the engine opens: NO ({e})"),
    });
    lines
}

/// "checked X of Y bytes" on stderr, updated in place, only when stderr is a terminal.
struct Progress {
    tty: bool,
    shown: bool,
    last: Option<Instant>,
}

/// How often the progress line is redrawn at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl Progress {
    fn new() -> Progress {
        Progress { tty: std::io::stderr().is_terminal(), shown: false, last: None }
    }

    fn show(&mut self, done: u64, total: u64) {
        if !self.tty || (self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) && done < total) {
            return;
        }
        self.last = Some(Instant::now());
        self.shown = true;
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[Kchecked {} of {} bytes", done, total);
        let _ = err.flush();
    }

    /// Clears the progress line so what follows starts on a clean line.
    fn finish(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
            self.shown = false;
        }
    }
}
