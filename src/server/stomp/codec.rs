//! STOMP 1.0, 1.1 and 1.2 frames, pure: no I/O, no panic on any input. A frame is a command
//! line, header lines, an empty line, a body and a NUL (`EOL` is LF or CR LF); a body is as
//! long as its `content-length` header says, or runs to the first NUL without one. End-of-line
//! bytes between frames are heart-beats. Header values are escaped (`\r`, `\n`, `\c`, `\\`;
//! `\r` from 1.2 on, none in 1.0, never in CONNECT and CONNECTED frames); a repeated header
//! keeps its first value. Every read is bounded by [`Limits`]: a frame that breaks them, or
//! that is malformed, is a [`FrameError`], which the session answers with an ERROR frame
//! before it closes the connection (the spec's rule).

use std::fmt;

/// The protocol versions served, in the `accept-version` spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// STOMP 1.0: no header escapes.
    V1_0,
    /// STOMP 1.1: escapes without `\r`.
    V1_1,
    /// STOMP 1.2.
    V1_2,
}

impl Version {
    /// The version's name in `accept-version` and `version` headers.
    pub fn name(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Picks the highest version both sides speak from a CONNECT's `accept-version` (absent:
    /// 1.0, as the spec says). `None` if there is none in common.
    pub fn negotiate(accept_version: Option<&str>) -> Option<Version> {
        let Some(list) = accept_version else { return Some(Version::V1_0) };
        list.split(',')
            .filter_map(|v| match v.trim() {
                "1.0" => Some(Version::V1_0),
                "1.1" => Some(Version::V1_1),
                "1.2" => Some(Version::V1_2),
                _ => None,
            })
            .max()
    }
}

/// The frame commands, both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Client: open a session (also spelled STOMP).
    Connect,
    /// Client: open a session, the 1.1+ spelling.
    Stomp,
    /// Client: send a message.
    Send,
    /// Client: subscribe to a destination.
    Subscribe,
    /// Client: end a subscription.
    Unsubscribe,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: roll a transaction back.
    Abort,
    /// Client: acknowledge a message.
    Ack,
    /// Client: refuse a message.
    Nack,
    /// Client: close the session.
    Disconnect,
    /// Server: the session is open.
    Connected,
    /// Server: a message for a subscription.
    Message,
    /// Server: a frame with a `receipt` header was processed.
    Receipt,
    /// Server: something went wrong; the connection closes after it.
    Error,
}

impl Command {
    /// The command's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    fn parse(name: &[u8]) -> Option<Command> {
        const ALL: [Command; 15] = [
            Command::Connect,
            Command::Stomp,
            Command::Send,
            Command::Subscribe,
            Command::Unsubscribe,
            Command::Begin,
            Command::Commit,
            Command::Abort,
            Command::Ack,
            Command::Nack,
            Command::Disconnect,
            Command::Connected,
            Command::Message,
            Command::Receipt,
            Command::Error,
        ];
        ALL.into_iter().find(|c| c.name().as_bytes() == name)
    }

    /// Whether the frame's header values are sent as they are (the spec exempts CONNECT and
    /// CONNECTED from escaping, so that 1.0 peers can read them).
    fn raw_headers(self) -> bool {
        matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its command.
    pub command: Command,
    /// Its headers in order, unescaped; a name may repeat (see [`Frame::header`]).
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl Frame {
    /// A frame without headers or body.
    pub fn new(command: Command) -> Frame {
        Frame { command, headers: Vec::new(), body: Vec::new() }
    }

    /// Adds a header (builder style).
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Frame {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The value of a header: the first one when it repeats (the spec's rule).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Bounds on what one frame may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of the command and header lines together.
    pub max_header_bytes: usize,
    /// Most header lines.
    pub max_headers: usize,
    /// Most body bytes.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_header_bytes: 64 << 10, max_headers: 256, max_body: 16 << 20 }
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not STOMP: the reason.
    Malformed(String),
    /// Over a [`Limits`] bound: which.
    TooLarge(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Malformed(m) => write!(f, "malformed frame: {m}"),
            FrameError::TooLarge(m) => write!(f, "frame too large: {m}"),
        }
    }
}

fn malformed<T>(msg: impl Into<String>) -> Result<T, FrameError> {
    Err(FrameError::Malformed(msg.into()))
}

/// What [`decode`] found at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// End-of-line bytes between frames (a heart-beat), this many bytes of them.
    Heartbeat(usize),
    /// A whole frame and how many bytes it took (its NUL included).
    Frame(Frame, usize),
}

/// Reads the first frame (or heart-beat) of `buf`. `Ok(None)`: more bytes are needed, and the
/// limits say they may still come. `version` decides the header escapes (CONNECT frames have
/// none whatever it is).
pub fn decode(buf: &[u8], version: Version, limits: &Limits) -> Result<Option<Decoded>, FrameError> {
    let eols = buf.iter().take_while(|&&b| b == b'\n' || b == b'\r').count();
    if eols > 0 {
        // A CR is a heart-beat only as part of CR LF; a lone CR at the end may be half of one.
        let mut n = 0;
        while n < eols {
            match (buf[n], buf.get(n + 1)) {
                (b'\n', _) => n += 1,
                (b'\r', Some(b'\n')) => n += 2,
                (b'\r', None) => break,
                (b'\r', Some(_)) => return malformed("a CR not followed by LF between frames"),
                _ => break,
            }
        }
        return Ok(if n == 0 { None } else { Some(Decoded::Heartbeat(n)) });
    }
    if buf.is_empty() {
        return Ok(None);
    }
    // The command line and the header lines, up to the empty line.
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut pos = 0;
    let header_end = loop {
        let Some(lf) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() > limits.max_header_bytes {
                return Err(FrameError::TooLarge(format!("headers over {} bytes", limits.max_header_bytes)));
            }
            return Ok(None);
        };
        let mut line = &buf[pos..pos + lf];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        pos += lf + 1;
        if pos > limits.max_header_bytes.saturating_add(2) {
            return Err(FrameError::TooLarge(format!("headers over {} bytes", limits.max_header_bytes)));
        }
        if line.is_empty() {
            break pos;
        }
        if lines.len() > limits.max_headers {
            return Err(FrameError::TooLarge(format!("more than {} headers", limits.max_headers)));
        }
        lines.push(line);
    };
    let Some((command_line, header_lines)) = lines.split_first() else {
        // Unreachable: leading EOLs were taken as heart-beats above, so the first line is not empty.
        return malformed("no command");
    };
    let Some(command) = Command::parse(command_line) else {
        let shown: String = String::from_utf8_lossy(command_line).chars().take(32).collect();
        return malformed(format!("unknown command {shown:?}"));
    };
    let unescape = if command.raw_headers() { None } else { Some(version) };
    let mut headers = Vec::with_capacity(header_lines.len());
    for line in header_lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return malformed("a header line without a colon");
        };
        let name = decode_text(&line[..colon], unescape)?;
        let value = decode_text(&line[colon + 1..], unescape)?;
        headers.push((name, value));
    }
    let frame_headers = Frame { command, headers, body: Vec::new() };
    let length = match frame_headers.header("content-length") {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if text.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return malformed(format!("content-length {text:?} is not a number")),
        },
    };
    let rest = &buf[header_end..];
    let body_len = match length {
        Some(n) => {
            if n > limits.max_body {
                return Err(FrameError::TooLarge(format!("body of {n} bytes, over {}", limits.max_body)));
            }
            if rest.len() <= n {
                return Ok(None);
            }
            if rest[n] != 0 {
                return malformed("the body is not followed by NUL where content-length says it ends");
            }
            n
        }
        None => match rest.iter().position(|&b| b == 0) {
            Some(n) if n <= limits.max_body => n,
            Some(n) => return Err(FrameError::TooLarge(format!("body of {n} bytes, over {}", limits.max_body))),
            None if rest.len() > limits.max_body => {
                return Err(FrameError::TooLarge(format!("body over {} bytes", limits.max_body)))
            }
            None => return Ok(None),
        },
    };
    let frame = Frame { body: rest[..body_len].to_vec(), ..frame_headers };
    Ok(Some(Decoded::Frame(frame, header_end + body_len + 1)))
}

/// UTF-8 text of a header name or value, unescaped for `version` (`None`: as it is).
fn decode_text(bytes: &[u8], unescape: Option<Version>) -> Result<String, FrameError> {
    let Ok(text) = std::str::from_utf8(bytes) else { return malformed("a header that is not UTF-8") };
    let Some(version) = unescape.filter(|v| *v >= Version::V1_1) else { return Ok(text.to_string()) };
    if !text.contains('\\') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some('r') if version >= Version::V1_2 => out.push('\r'),
            Some(other) => return malformed(format!("undefined escape \\{other} in a header")),
            None => return malformed("a header ends in a lone backslash"),
        }
    }
    Ok(out)
}

fn encode_text(text: &str, escape: Option<Version>, out: &mut Vec<u8>) {
    let Some(version) = escape.filter(|v| *v >= Version::V1_1) else {
        out.extend_from_slice(text.as_bytes());
        return;
    };
    for c in text.chars() {
        match c {
            '\n' => out.extend_from_slice(b"\\n"),
            ':' => out.extend_from_slice(b"\\c"),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\r' if version >= Version::V1_2 => out.extend_from_slice(b"\\r"),
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
}

/// Appends `frame` to `out`, its headers escaped for `version` (CONNECTED's never). The caller
/// adds `content-length` when it wants one.
pub fn encode(frame: &Frame, version: Version, out: &mut Vec<u8>) {
    let escape = if frame.command.raw_headers() { None } else { Some(version) };
    out.extend_from_slice(frame.command.name().as_bytes());
    out.push(b'\n');
    for (name, value) in &frame.headers {
        encode_text(name, escape, out);
        out.push(b':');
        encode_text(value, escape, out);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&frame.body);
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> (Frame, usize) {
        match decode(bytes, Version::V1_2, &Limits::default()) {
            Ok(Some(Decoded::Frame(f, n))) => (f, n),
            other => panic!("expected a frame from {bytes:?}, got {other:?}"),
        }
    }

    fn error(bytes: &[u8], limits: &Limits) -> FrameError {
        match decode(bytes, Version::V1_2, limits) {
            Err(e) => e,
            other => panic!("expected an error from {bytes:?}, got {other:?}"),
        }
    }

    #[test]
    fn the_specs_example_frames_decode() {
        let (f, n) = one(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0");
        assert_eq!(f.command, Command::Send);
        assert_eq!(f.header("destination"), Some("/queue/a"));
        assert_eq!(f.header("content-type"), Some("text/plain"));
        assert_eq!(f.body, b"hello queue a");
        assert_eq!(n, 65);
        let (f, _) = one(b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\n\n\0");
        assert_eq!((f.command, f.header("host")), (Command::Connect, Some("stomp.github.org")));
        assert!(f.body.is_empty());
    }

    #[test]
    fn both_end_of_line_forms_are_read() {
        let (f, n) = one(b"SEND\r\ndestination:/queue/a\r\n\r\nbody\0");
        assert_eq!(f.header("destination"), Some("/queue/a"));
        assert_eq!((f.body.as_slice(), n), (&b"body"[..], 35));
        let (mixed, _) = one(b"SEND\r\ndestination:/queue/a\n\r\nbody\0");
        assert_eq!(mixed, f);
    }

    #[test]
    fn end_of_lines_between_frames_are_heartbeats() {
        let limits = Limits::default();
        assert_eq!(decode(b"\n", Version::V1_2, &limits), Ok(Some(Decoded::Heartbeat(1))));
        assert_eq!(decode(b"\r\n\nSEND", Version::V1_2, &limits), Ok(Some(Decoded::Heartbeat(3))));
        // A lone CR at the end may be the first half of a CR LF.
        assert_eq!(decode(b"\r", Version::V1_2, &limits), Ok(None));
        assert!(matches!(decode(b"\rX", Version::V1_2, &limits), Err(FrameError::Malformed(_))));
    }

    #[test]
    fn a_repeated_header_keeps_its_first_value() {
        let (f, _) = one(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0");
        assert_eq!(f.header("foo"), Some("World"));
        assert_eq!(f.headers.len(), 2);
    }

    #[test]
    fn header_escapes_follow_the_version() {
        let bytes = b"SEND\na\\cb:x\\ny\\\\z\\r\n\n\0";
        let (f, _) = one(bytes);
        assert_eq!(f.headers, vec![("a:b".to_string(), "x\ny\\z\r".to_string())]);
        // 1.1 has no \r; 1.0 no escapes at all.
        assert!(matches!(decode(bytes, Version::V1_1, &Limits::default()), Err(FrameError::Malformed(_))));
        let Ok(Some(Decoded::Frame(f10, _))) = decode(bytes, Version::V1_0, &Limits::default()) else {
            panic!("1.0 reads escapes as they are")
        };
        assert_eq!(f10.header("a\\cb"), Some("x\\ny\\\\z\\r"));
        // Undefined escapes are errors, and a value may hold a colon unescaped.
        for bad in [&b"SEND\na:\\t\n\n\0"[..], b"SEND\na:b\\\n\n\0"] {
            assert!(matches!(error(bad, &Limits::default()), FrameError::Malformed(_)), "{bad:?}");
        }
        let (f, _) = one(b"SEND\nurl:http://x:80/\n\n\0");
        assert_eq!(f.header("url"), Some("http://x:80/"));
    }

    #[test]
    fn connect_frames_are_never_unescaped() {
        let (f, _) = one(b"CONNECT\npasscode:a\\cb\n\n\0");
        assert_eq!(f.header("passcode"), Some("a\\cb"));
        let mut out = Vec::new();
        encode(&Frame::new(Command::Connected).with("server", "a:b"), Version::V1_2, &mut out);
        assert_eq!(out, b"CONNECTED\nserver:a:b\n\n\0");
    }

    #[test]
    fn encode_then_decode_is_the_identity() {
        for version in [Version::V1_1, Version::V1_2] {
            let frame = Frame::new(Command::Message)
                .with("destination", "/queue/a:b")
                .with("weird\nname", "back\\slash\r")
                .with("empty", "");
            let frame = Frame { body: b"with\0nul".to_vec(), ..frame }.with("content-length", "8");
            let mut out = Vec::new();
            encode(&frame, version, &mut out);
            if version == Version::V1_1 {
                // 1.1 cannot carry a CR in a header: it goes as it is and reads back as a line end.
                continue;
            }
            let Ok(Some(Decoded::Frame(back, n))) = decode(&out, version, &Limits::default()) else {
                panic!("round trip")
            };
            assert_eq!((back, n), (frame.clone(), out.len()));
        }
    }

    #[test]
    fn content_length_reads_bodies_with_nuls_and_checks_the_terminator() {
        let (f, n) = one(b"SEND\ncontent-length:3\n\na\0b\0trailing");
        assert_eq!((f.body.as_slice(), n), (&b"a\0b"[..], 27));
        assert!(matches!(error(b"SEND\ncontent-length:3\n\nabcd\0", &Limits::default()), FrameError::Malformed(_)));
        for bad in ["-1", "x", "", "+3", " 3"] {
            let bytes = format!("SEND\ncontent-length:{bad}\n\n\0");
            assert!(matches!(error(bytes.as_bytes(), &Limits::default()), FrameError::Malformed(_)), "{bad}");
        }
        // The first content-length wins.
        let (f, _) = one(b"SEND\ncontent-length:1\ncontent-length:5\n\na\0");
        assert_eq!(f.body, b"a");
    }

    #[test]
    fn a_partial_frame_asks_for_more_at_every_cut() {
        let whole = b"SEND\r\ndestination:/queue/a\r\ncontent-length:5\r\n\r\nhello\0";
        for cut in 0..whole.len() {
            assert_eq!(decode(&whole[..cut], Version::V1_2, &Limits::default()), Ok(None), "cut at {cut}");
        }
        assert_eq!(one(whole).1, whole.len());
    }

    #[test]
    fn limits_bound_headers_and_bodies() {
        let limits = Limits { max_header_bytes: 64, max_headers: 2, max_body: 8 };
        let long = format!("SEND\nh:{}\n\n\0", "x".repeat(100));
        assert!(matches!(error(long.as_bytes(), &limits), FrameError::TooLarge(_)));
        // Too long even before the line ends.
        assert!(matches!(error("SEND".repeat(20).as_bytes(), &limits), FrameError::TooLarge(_)));
        assert!(matches!(error(b"SEND\na:1\nb:2\nc:3\nd:4\n\n\0", &limits), FrameError::TooLarge(_)));
        assert!(matches!(error(b"SEND\ncontent-length:9\n\n", &limits), FrameError::TooLarge(_)));
        assert!(matches!(error(b"SEND\n\n123456789", &limits), FrameError::TooLarge(_)));
        assert!(matches!(error(b"SEND\n\n123456789\0", &limits), FrameError::TooLarge(_)));
        assert!(matches!(decode(b"SEND\n\n12345678\0", Version::V1_2, &limits), Ok(Some(Decoded::Frame(..)))));
    }

    #[test]
    fn malformed_frames_are_errors() {
        for bad in
            [&b"FOO\n\n\0"[..], b"send\n\n\0", b"SEND\nno-colon\n\n\0", b"SEND\nname:\xff\n\n\0", b"\xff\xfe\n\n\0"]
        {
            assert!(matches!(error(bad, &Limits::default()), FrameError::Malformed(_)), "{bad:?}");
        }
    }

    #[test]
    fn versions_are_negotiated_to_the_highest_in_common() {
        assert_eq!(Version::negotiate(None), Some(Version::V1_0));
        assert_eq!(Version::negotiate(Some("1.0,1.1,1.2")), Some(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.1, 1.0")), Some(Version::V1_1));
        assert_eq!(Version::negotiate(Some("2.0,3.1")), None);
        assert_eq!(Version::negotiate(Some("")), None);
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            let limits = Limits { max_header_bytes: 64, max_headers: 4, max_body: 32 };
            let mut rest = bytes.as_slice();
            while let Ok(Some(found)) = decode(rest, Version::V1_2, &limits) {
                let n = match found { Decoded::Heartbeat(n) | Decoded::Frame(_, n) => n };
                proptest::prop_assert!(n > 0 && n <= rest.len());
                rest = &rest[n..];
            }
        }
    }
}
