//! `weir inspect` and `weir verify`: read-only looks at segment files, without the engine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use weir::inspect::{self, SegmentReport};

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

/// `weir inspect PATH [--records] [--json]`.
pub fn inspect(args: &InspectArgs) -> CliResult<()> {
    let report = inspect::inspect_path(&args.path)?;
    let mut out = Out::new();
    let (mut segments, mut records, mut bytes) = (0u64, 0u64, 0u64);
    for log in &report.logs {
        if !args.json {
            out.line(format!("{}  segments: {}", log.dir.display(), log.segments.len()))?;
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
    if !args.json {
        out.line(format!(
            "total: {} logs, {segments} segments, {records} records, {}",
            report.logs.len(),
            size(bytes)
        ))?;
    }
    Ok(())
}

/// A segment in `inspect --json` output.
#[derive(Serialize)]
struct SegmentLine<'a> {
    kind: &'static str,
    log: String,
    #[serde(flatten)]
    segment: &'a SegmentReport,
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
    let mut line = format!(
        "  {name}  {seqs}  {} frames ({} compressed)  {}  {compression}{times}  index: {index}",
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
    for record in inspect::segment_records(&segment.path)? {
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

/// `weir verify DIR`: exit 0 when everything checks out, else one `FILE:OFFSET: problem` line
/// per problem on stdout and exit 1.
pub fn verify(args: &VerifyArgs) -> CliResult<ExitCode> {
    let problems = inspect::verify_dir(&args.dir)?;
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = Out::new();
    for problem in &problems {
        out.line(problem)?;
    }
    Err(CliError::Failed(format!("{}: {} problem(s) found", args.dir.display(), problems.len())))
}
