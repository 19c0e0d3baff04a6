//! A kept-alive HTTP/1.1 connection for the `*_http` rows (a minimal client: the server always
//! answers with Content-Length), shared so both rows measure the same client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    host: String,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> Connection {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let writer = stream.try_clone().expect("clone socket");
        Connection { reader: BufReader::new(stream), writer, host: addr.to_string() }
    }

    /// POSTs `body` to `/` with `headers` (each line ending in `\r\n`) and returns the body of
    /// the answer, which must be 200 (`what` names the request in the panic if not).
    pub fn post(&mut self, headers: &str, body: &str, what: &str) -> Vec<u8> {
        let request =
            format!("POST / HTTP/1.1\r\nhost: {}\r\n{headers}content-length: {}\r\n\r\n{body}", self.host, body.len());
        self.writer.write_all(request.as_bytes()).expect("write request");
        let mut status = String::new();
        self.reader.read_line(&mut status).expect("read status");
        assert!(status.starts_with("HTTP/1.1 200"), "{what}: {status}");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("content-length");
                }
            }
        }
        let mut answer = vec![0u8; length];
        self.reader.read_exact(&mut answer).expect("read body");
        answer
    }
}
