//! A kept-alive HTTP/1.1 connection for the `*_http` rows (a minimal client: the server always
//! answers with Content-Length), shared so every row measures the same client. Buffers are
//! reused from call to call, so the client costs the shared cores little.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde::Deserialize;

pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
    body: Vec<u8>,
    host: String,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone socket");
        Connection {
            reader: BufReader::new(stream),
            writer,
            line: String::new(),
            body: Vec::new(),
            host: addr.to_string(),
        }
    }

    /// Sends a whole request and returns its answer's body, which must be 200 (`what` names
    /// the request in the panic if not).
    pub fn exchange(&mut self, request: &[u8], what: &str) -> &[u8] {
        self.writer.write_all(request).expect("write request");
        self.line.clear();
        self.reader.read_line(&mut self.line).expect("read status");
        assert!(self.line.starts_with("HTTP/1.1 200"), "{what}: {}", self.line);
        let mut length = 0usize;
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line).expect("read header");
            let line = self.line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("content-length");
                }
            }
        }
        self.body.resize(length, 0);
        self.reader.read_exact(&mut self.body).expect("read body");
        &self.body
    }

    /// Sends a whole request and parses its answer's body as `T`.
    pub fn call<'a, T: Deserialize<'a>>(&'a mut self, what: &str, request: &[u8]) -> T {
        let body: &'a [u8] = self.exchange(request, what);
        serde_json::from_slice(body)
            .unwrap_or_else(|e| panic!("{what}: not the JSON expected ({e}): {}", String::from_utf8_lossy(body)))
    }

    /// The bytes of an AWS JSON request (`X-Amz-Target: target`), to send with [`Connection::call`]
    /// as often as wanted.
    pub fn target_request(&self, content_type: &str, target: &str, body: &str) -> Vec<u8> {
        format!(
            "POST / HTTP/1.1\r\nhost: {}\r\ncontent-type: {content_type}\r\nx-amz-target: {target}\r\ncontent-length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        )
        .into_bytes()
    }

    /// POSTs `body` to `/` with `headers` (each line ending in `\r\n`) and returns the body of
    /// the answer, which must be 200.
    pub fn post(&mut self, headers: &str, body: &str, what: &str) -> Vec<u8> {
        let request =
            format!("POST / HTTP/1.1\r\nhost: {}\r\n{headers}content-length: {}\r\n\r\n{body}", self.host, body.len());
        self.exchange(request.as_bytes(), what).to_vec()
    }
}
