//! Helpers of the server tests: a server on a fresh data directory in this process, an HTTP
//! client over one kept-alive connection (HTTP/1.1 or cleartext HTTP/2), and `weir serve` as
//! a child process.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use weir::server::{LogLevel, Server, ServerConfig, Stopper};
use weir::{Engine, Options};

/// A server on a fresh data directory, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Arc<Engine>,
    stopper: Stopper,
    thread: Option<JoinHandle<weir::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(|c| c)
    }

    pub fn start_with(configure: impl FnOnce(ServerConfig) -> ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = Arc::new(Engine::open(dir.path(), Options::default()).expect("open engine"));
        let config =
            configure(ServerConfig { log_level: LogLevel::Warn, ..ServerConfig::new(([127, 0, 0, 1], 0).into()) });
        let server = Server::bind(Arc::clone(&engine), config).expect("bind");
        let addr = server.local_addr();
        let stopper = server.stopper();
        let thread = std::thread::spawn(move || server.run());
        TestServer { addr, engine, stopper, thread: Some(thread), _dir: dir }
    }

    /// Stops the server and waits for `run` to return.
    pub fn stop(&mut self) -> weir::Result<()> {
        self.stopper.stop();
        self.thread.take().map_or(Ok(()), |t| t.join().expect("server thread"))
    }

    pub fn client(&self) -> Client {
        Client::connect(self.addr, false)
    }

    pub fn h2_client(&self) -> Client {
        Client::connect(self.addr, true)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// One connection, kept alive across requests; every call blocks until answered.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    sender: Sender,
    pub addr: SocketAddr,
}

/// An answer: status, headers, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap_or_default().to_string())
    }

    /// The `__type` shape name after `#`.
    pub fn shape(&self) -> String {
        let t = self.json()["__type"].as_str().unwrap_or_default().to_string();
        t.rsplit('#').next().unwrap_or_default().to_string()
    }
}

impl Client {
    pub fn connect(addr: SocketAddr, h2: bool) -> Client {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let sender = runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let io = TokioIo::new(stream);
            if h2 {
                let (sender, conn) = http2::handshake(TokioExecutor::new(), io).await.expect("h2 handshake");
                tokio::spawn(conn);
                Sender::H2(sender)
            } else {
                let (sender, conn) = http1::handshake(io).await.expect("h1 handshake");
                tokio::spawn(conn);
                Sender::H1(sender)
            }
        });
        Client { runtime, sender, addr }
    }

    /// Sends a request; `Err` if the connection is gone.
    pub fn try_send(&mut self, req: Request<Full<Bytes>>) -> Result<Answer, String> {
        let sender = &mut self.sender;
        self.runtime.block_on(async {
            let response: Response<hyper::body::Incoming> = match sender {
                Sender::H1(s) => {
                    s.ready().await.map_err(|e| e.to_string())?;
                    s.send_request(req).await.map_err(|e| e.to_string())?
                }
                Sender::H2(s) => {
                    s.ready().await.map_err(|e| e.to_string())?;
                    s.send_request(req).await.map_err(|e| e.to_string())?
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(Answer { status, headers, body })
        })
    }

    pub fn send(&mut self, req: Request<Full<Bytes>>) -> Answer {
        self.try_send(req).expect("request")
    }

    fn builder(&self, method: &str, path: &str) -> hyper::http::request::Builder {
        let b = Request::builder().method(method).uri(format!("http://{}{path}", self.addr));
        match self.sender {
            Sender::H1(_) => b.header("host", self.addr.to_string()),
            Sender::H2(_) => b,
        }
    }

    /// An AWS JSON 1.0 call: `X-Amz-Target: AmazonSQS.<op>`.
    pub fn json(&mut self, op: &str, body: Value) -> Answer {
        self.json_raw(&format!("AmazonSQS.{op}"), body.to_string().into_bytes())
    }

    /// An AWS JSON 1.1 call to Firehose: `X-Amz-Target: Firehose_20150804.<op>`.
    pub fn firehose(&mut self, op: &str, body: Value) -> Answer {
        let req = self
            .builder("POST", "/")
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", format!("Firehose_20150804.{op}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        self.send(req)
    }

    pub fn json_raw(&mut self, target: &str, body: Vec<u8>) -> Answer {
        let req = self
            .builder("POST", "/")
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", target)
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        self.send(req)
    }

    /// A query-protocol call: a form body POSTed to `path`.
    pub fn query(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let body = form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        self.form(path, body.into_bytes())
    }

    pub fn form(&mut self, path: &str, body: Vec<u8>) -> Answer {
        let req = self
            .builder("POST", path)
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        self.send(req)
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let req = self.builder("GET", path).body(Full::new(Bytes::new())).expect("request");
        self.send(req)
    }
}

/// Percent-encodes a form value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `weir serve --listen 127.0.0.1:0` on `dir` as a child process, with its startup line read.
pub struct ServeChild {
    pub child: Child,
    pub endpoint: String,
    pub addr: SocketAddr,
    pub startup_line: String,
}

impl ServeChild {
    pub fn start(dir: &Path, extra: &[&str]) -> ServeChild {
        Self::start_with_stderr(dir, extra, Stdio::inherit())
    }

    /// [`ServeChild::start`] with stderr going where `stderr` says (a pipe, to read the log).
    pub fn start_with_stderr(dir: &Path, extra: &[&str], stderr: Stdio) -> ServeChild {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("--data")
            .arg(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn weir serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("weir serve printed no startup line within 30 s");
        let parsed: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("startup line {line:?}: {e}"));
        let endpoint = parsed["endpoint"].as_str().expect("endpoint").to_string();
        let addr: SocketAddr = parsed["listening"].as_str().expect("listening").parse().expect("address");
        ServeChild { child, endpoint, addr, startup_line: line.trim_end().to_string() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `INT`) and waits up to `within` for the exit status.
    pub fn signal_and_wait(&mut self, signal: &str, within: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{signal} failed");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "weir serve did not exit within {within:?} of SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client venv's python (`tests/clients/setup.sh` makes the venv under `target/` with the
/// pinned clients once; it needs PyPI the first time, and Python 3 with `venv`). Made once per
/// test binary (the tests run in parallel).
pub fn python() -> &'static Path {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(|| {
        let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/setup.sh");
        let out =
            Command::new("bash").arg(&setup).stderr(Stdio::inherit()).output().expect("run tests/clients/setup.sh");
        assert!(out.status.success(), "tests/clients/setup.sh failed");
        let stdout = String::from_utf8_lossy(&out.stdout);
        std::path::PathBuf::from(stdout.lines().last().expect("setup.sh prints the venv's python").trim())
    })
}

/// Runs the unittest suite `tests/clients/<script>` in the client venv with `env`, and asserts
/// that it passed.
pub fn run_client_suite(script: &str, env: &[(&str, &std::ffi::OsStr)]) {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(script);
    let out = Command::new(python())
        .args(["-m", "unittest", "-v"])
        .arg(&suite)
        .current_dir(suite.parent().expect("tests/clients"))
        .envs(env.iter().copied())
        .output()
        .expect("run the client suite");
    let report = String::from_utf8_lossy(&out.stderr);
    eprintln!("{report}");
    assert!(out.status.success(), "the client suite failed:\n{report}");
    assert!(report.contains("OK"), "{report}");
}

/// Waits up to `within` for a child (a load generator whose server was killed) to end, then
/// kills it; either way it is reaped.
pub fn reap_within(child: &mut std::process::Child, within: Duration) {
    let deadline = Instant::now() + within;
    while child.try_wait().expect("poll the child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.wait();
}

/// A self-signed certificate for 127.0.0.1 and localhost written into `dir`: the paths of
/// the PEM certificate (also the CA a client trusts) and of its private key.
pub fn self_signed_tls(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("a self-signed certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).expect("write cert.pem");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key.pem");
    (cert, key)
}

/// Files of a server with TLS and `--auth`, written in `dir`: a self-signed certificate
/// ([`self_signed_tls`]) and a credentials file holding `credentials` (the list under
/// `"credentials"`). Returns their paths: certificate, key, credentials.
pub fn tls_and_credentials(dir: &Path, credentials: Value) -> (PathBuf, PathBuf, PathBuf) {
    let (cert, key) = self_signed_tls(dir);
    let file = dir.join("credentials.json");
    std::fs::write(&file, serde_json::json!({ "credentials": credentials }).to_string())
        .expect("write credentials.json");
    (cert, key, file)
}
