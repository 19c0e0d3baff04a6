//! Helpers shared by the subcommands: line-flushed stdout, JSON encoding of record and message
//! bytes, stdin read as batches of lines, and human-readable times and sizes.

use std::fmt::Display;
use std::io::{self, BufRead, Write};
use std::sync::mpsc;

use bytes::Bytes;
use serde::Serialize;
use weir::queue::{AttributeValue, Attributes, MAX_BATCH_ENTRIES};
pub use weir::text::{base64, BodyJson, RecordJson};

/// How a command failed.
#[derive(Debug)]
pub enum CliError {
    /// Print `weir: <message>` to stderr and exit 1.
    Failed(String),
    /// Stdout was closed by its reader: stop quietly.
    BrokenPipe,
}

/// The result of a command step.
pub type CliResult<T> = Result<T, CliError>;

impl From<weir::Error> for CliError {
    fn from(e: weir::Error) -> Self {
        match &e {
            // The first line is the contract (`weir: wrong encryption key for DIR`); which key
            // version did not check out follows on a line of its own.
            weir::Error::WrongKey { detail, .. } => CliError::Failed(format!("{e}\nweir: {detail}")),
            _ => CliError::Failed(e.to_string()),
        }
    }
}

/// Stdout, flushed after every line so a reader sees each line as soon as it is true.
pub struct Out {
    stdout: io::StdoutLock<'static>,
}

impl Out {
    /// Locks stdout.
    pub fn new() -> Out {
        Out { stdout: io::stdout().lock() }
    }

    /// Prints one line of text.
    pub fn line(&mut self, text: impl Display) -> CliResult<()> {
        writeln!(self.stdout, "{text}").and_then(|()| self.stdout.flush()).map_err(stdout_error)
    }

    /// Prints one JSON object on a line of its own (fields in declaration order).
    pub fn json(&mut self, value: &impl Serialize) -> CliResult<()> {
        let text = serde_json::to_string(value).map_err(|e| CliError::Failed(format!("encode JSON: {e}")))?;
        self.line(text)
    }
}

fn stdout_error(e: io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        CliError::BrokenPipe
    } else {
        CliError::Failed(format!("write to stdout: {e}"))
    }
}

/// A line of stdin without its line ending, numbered from 1 for error messages.
pub type Line = (u64, Vec<u8>);

/// Lines read from stdin that may wait for the writer before the reader blocks.
const STDIN_QUEUE_LINES: usize = 4096;

/// Stdin as batches of lines: a reader thread blocks on stdin so that the writer can take
/// whatever has already arrived as one batch. If the writer stops early, the process exits and
/// takes the reader with it.
pub struct StdinLines {
    rx: mpsc::Receiver<io::Result<Line>>,
    /// A line that did not fit the previous batch.
    carry: Option<Line>,
    /// A read error met after the lines of the previous batch.
    error: Option<io::Error>,
}

impl StdinLines {
    /// Starts reading stdin.
    pub fn spawn() -> StdinLines {
        let (tx, rx) = mpsc::sync_channel::<io::Result<Line>>(STDIN_QUEUE_LINES);
        std::thread::spawn(move || {
            let mut stdin = io::stdin().lock();
            for number in 1.. {
                let mut line = Vec::new();
                match stdin.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                            if line.last() == Some(&b'\r') {
                                line.pop();
                            }
                        }
                        if tx.send(Ok((number, line))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        StdinLines { rx, carry: None, error: None }
    }

    /// Waits for the next line, then adds the lines that have already arrived, up to `max` in
    /// all, while `joins(batch so far, line)` says the line may join. An empty batch means the
    /// input has ended.
    pub fn next_batch(&mut self, max: usize, mut joins: impl FnMut(&[Line], &Line) -> bool) -> CliResult<Vec<Line>> {
        let read_error = |e: io::Error| CliError::Failed(format!("read stdin: {e}"));
        let first = match self.carry.take() {
            Some(line) => line,
            None => {
                if let Some(e) = self.error.take() {
                    return Err(read_error(e));
                }
                match self.rx.recv() {
                    Ok(line) => line.map_err(read_error)?,
                    Err(_) => return Ok(Vec::new()),
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < max {
            match self.rx.try_recv() {
                Ok(Ok(line)) if joins(&batch, &line) => batch.push(line),
                Ok(Ok(line)) => {
                    self.carry = Some(line);
                    break;
                }
                Ok(Err(e)) => {
                    self.error = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(batch)
    }
}

/// `list` output of queues, topics and streams: one per name.
#[derive(Serialize)]
pub struct Named<'a> {
    /// The name.
    pub name: &'a str,
}

/// `delete-queue`, `delete-topic` and `stream delete` output.
#[derive(Serialize)]
pub struct Deleted<'a> {
    /// The name.
    pub name: &'a str,
    /// Always true: a failed delete is an error.
    pub deleted: bool,
}

/// Most bytes (bodies plus attributes) one send or publish batch carries, as SQS and SNS.
pub const MAX_BATCH_BYTES: usize = 256 << 10;

/// Sends every line of stdin (without its line ending) as a message body, for `queue send` and
/// `topic publish`. Lines that arrive together go as one batch (at most [`MAX_BATCH_ENTRIES`],
/// their sizes plus `attribute_bytes` each at most `batch_bytes` together), and each result is
/// printed once the batch is durable. A line that is not `plain` (empty, too large, or what
/// `acceptable` rejects) goes on its own, so the lines before it are in and its error names it.
pub fn submit_stdin_lines<T, J: Serialize>(
    out: &mut Out,
    limits: LineLimits,
    acceptable: impl Fn(&[u8]) -> bool,
    mut submit: impl FnMut(Vec<Bytes>) -> weir::Result<Vec<weir::Result<T>>>,
    json: impl Fn(T) -> J,
) -> CliResult<()> {
    let size = |line: &Line| line.1.len() + limits.attribute_bytes;
    let plain = |line: &Line| !line.1.is_empty() && size(line) <= limits.message_bytes && acceptable(&line.1);
    let mut stdin = StdinLines::spawn();
    loop {
        let batch = stdin.next_batch(MAX_BATCH_ENTRIES, |batch, line| {
            batch.iter().all(&plain)
                && plain(line)
                && batch.iter().map(size).sum::<usize>() + size(line) <= limits.batch_bytes
        })?;
        if batch.is_empty() {
            return Ok(());
        }
        let numbers: Vec<u64> = batch.iter().map(|(number, _)| *number).collect();
        let results = submit(batch.into_iter().map(|(_, body)| Bytes::from(body)).collect())?;
        report_lines(&numbers, results, out, &json)?;
    }
}

/// Sizes that decide how stdin lines are batched by [`submit_stdin_lines`].
#[derive(Debug, Clone, Copy)]
pub struct LineLimits {
    /// Bytes the attributes add to every message.
    pub attribute_bytes: usize,
    /// Most bytes (body plus attributes) of one message.
    pub message_bytes: usize,
    /// Most bytes of one batch.
    pub batch_bytes: usize,
}

/// Prints the result of each line of a batch sent from stdin, in line order. Every entry that
/// succeeded is durable and printed; the first that failed fails the command with its line
/// number.
fn report_lines<T, J: Serialize>(
    numbers: &[u64],
    results: Vec<weir::Result<T>>,
    out: &mut Out,
    json: impl Fn(T) -> J,
) -> CliResult<()> {
    let mut failed = None;
    for (number, result) in numbers.iter().zip(results) {
        match result {
            Ok(r) => out.json(&json(r))?,
            Err(e) => {
                failed.get_or_insert_with(|| format!("stdin line {number}: {e}"));
            }
        }
    }
    failed.map_or(Ok(()), |message| Err(CliError::Failed(message)))
}

/// Parses `K=V` (split at the first `=`) for `--attr` and `--attr-number`.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) => Ok((key.to_string(), value.to_string())),
        None => Err(format!("expected NAME=VALUE, not {text:?} (no '=')")),
    }
}

/// Message attributes from `--attr K=V` (String) and `--attr-number K=N` (Number) flags; a
/// name given twice is an error. The library checks names and values.
pub fn message_attributes(strings: Vec<(String, String)>, numbers: Vec<(String, String)>) -> CliResult<Attributes> {
    let mut attributes = Attributes::new();
    let typed = strings
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::String(v)))
        .chain(numbers.into_iter().map(|(k, v)| (k, AttributeValue::Number(v))));
    for (name, value) in typed {
        if attributes.contains_key(&name) {
            return Err(CliError::Failed(format!("invalid argument: attribute {name:?} is given more than once")));
        }
        attributes.insert(name, value);
    }
    Ok(attributes)
}

/// Record bytes for a person to read: quoted and escaped text, or base64 when not UTF-8;
/// shortened past `max` characters.
pub fn show_bytes(bytes: &[u8], max: usize) -> String {
    let shown = match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().count() > max => {
            let head: String = text.chars().take(max).collect();
            format!("{head:?}...")
        }
        Ok(text) => format!("{text:?}"),
        Err(_) if bytes.len() > max => format!("base64:{}...", base64(&bytes[..max])),
        Err(_) => format!("base64:{}", base64(bytes)),
    };
    if bytes.len() > max {
        format!("{shown} ({} bytes)", bytes.len())
    } else {
        shown
    }
}

/// A time in milliseconds since the Unix epoch as UTC, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc(ms: u64) -> String {
    weir::text::iso8601(ms)
}

/// A byte count for a person: `512 B`, `4.0 KiB`, `1.5 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        let _ = utc(u64::MAX);
    }

    #[test]
    fn bytes_become_text_or_base64() {
        let record = RecordJson::new(7, &[0xc3, 0x28], b"hi", 9);
        let text = serde_json::to_string(&record).expect("encodes");
        assert_eq!(text, r#"{"seq":7,"key_base64":"wyg=","data":"hi","time_ms":9}"#);
        assert_eq!(size(1536), "1.5 KiB");
        let body = serde_json::to_string(&BodyJson::new(b"hi")).expect("encodes");
        assert_eq!(body, r#"{"body":"hi"}"#);
        let body = serde_json::to_string(&BodyJson::new(&[0xff])).expect("encodes");
        assert_eq!(body, r#"{"body_base64":"/w=="}"#);
    }

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(parse_key_value("a=b=c"), Ok(("a".to_string(), "b=c".to_string())));
        assert_eq!(parse_key_value("a="), Ok(("a".to_string(), String::new())));
        assert!(parse_key_value("novalue").is_err());
    }
}
