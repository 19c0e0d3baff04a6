//! Structured log lines on stderr: one JSON object per line. Requests are logged at `debug`
//! (operation, queue, status, duration); warnings and errors at any level but `error`, which
//! keeps only errors.

use std::io::Write;
use std::str::FromStr;

use serde_json::{Map, Value};

/// How much the server writes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Failures only.
    Error,
    /// Failures and things an operator should look at.
    Warn,
    /// Also lifecycle events (start, stop).
    Info,
    /// Also one line per request.
    Debug,
}

impl LogLevel {
    fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

impl FromStr for LogLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Ok(LogLevel::Error),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            _ => Err(format!("log level must be error, warn, info or debug, not {s:?}")),
        }
    }
}

/// Writes log lines at or above its level.
#[derive(Debug)]
pub struct Logger {
    level: LogLevel,
}

impl Logger {
    /// A logger that keeps lines at `level` and more severe.
    pub fn new(level: LogLevel) -> Self {
        Logger { level }
    }

    /// True if a line at `level` would be written (skip building it otherwise).
    pub fn enabled(&self, level: LogLevel) -> bool {
        level <= self.level
    }

    /// Writes `{"time_ms":..,"level":..,"msg":..,...fields}` as one line.
    pub fn log(&self, level: LogLevel, msg: &str, fields: Map<String, Value>) {
        if !self.enabled(level) {
            return;
        }
        let mut line = Map::new();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        line.insert("time_ms".into(), now_ms.into());
        line.insert("level".into(), level.name().into());
        line.insert("msg".into(), msg.into());
        line.extend(fields);
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write of the whole line, so lines of concurrent requests never interleave.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    /// A warning.
    pub fn warn(&self, msg: &str, fields: Map<String, Value>) {
        self.log(LogLevel::Warn, msg, fields);
    }

    /// An error.
    pub fn error(&self, msg: &str, fields: Map<String, Value>) {
        self.log(LogLevel::Error, msg, fields);
    }
}

/// Builds a field map: `fields!("op" => "SendMessage", "status" => 200)`.
macro_rules! fields {
    ($($key:expr => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut map = serde_json::Map::new();
        $(map.insert($key.to_string(), serde_json::Value::from($value));)*
        map
    }};
}
pub(crate) use fields;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!("DEBUG".parse::<LogLevel>().unwrap(), LogLevel::Debug);
        assert!("loud".parse::<LogLevel>().is_err());
        let logger = Logger::new(LogLevel::Warn);
        assert!(logger.enabled(LogLevel::Error));
        assert!(logger.enabled(LogLevel::Warn));
        assert!(!logger.enabled(LogLevel::Debug));
    }
}
