//! The HTTP client that POSTs to subscribed endpoints: hyper's HTTP/1.1 client connection over
//! a TCP stream (TLS for `https://`, with rustls and a pure-Rust crypto provider, trusting the
//! system's certificate authorities, or those of `$SSL_CERT_FILE` / `$SSL_CERT_DIR` when set),
//! with a small pool of idle keep-alive connections per endpoint, and one deadline for
//! connecting, sending and reading the answer.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

/// What SNS's requests call themselves.
pub const SNS_USER_AGENT: &str = "Amazon Simple Notification Service Agent";
/// Idle connections kept per endpoint authority.
const MAX_IDLE_PER_AUTHORITY: usize = 8;

/// How a POST ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostOutcome {
    /// The endpoint answered with this status.
    Answered(u16),
    /// No answer: the endpoint could not be reached, the connection broke, or the deadline
    /// passed.
    Failed(String),
}

/// A pooled HTTP/1.1 client. Cheap to share behind an `Arc`.
#[derive(Default)]
pub struct HttpClient {
    /// Idle connections by scheme and authority.
    idle: Mutex<HashMap<String, Vec<SendRequest<Full<Bytes>>>>>,
    /// The TLS settings, made at the first `https://` POST (or why they cannot be).
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

/// An endpoint URL, split for connecting.
struct Target {
    tls: bool,
    authority: String,
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    /// The key of its pool of idle connections.
    fn pool_key(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.authority)
    }
}

fn parse(url: &str) -> Result<Target, String> {
    let uri: Uri = url.parse().map_err(|e| format!("the endpoint URL does not parse: {e}"))?;
    let tls = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err("the endpoint URL is not http:// or https://".into()),
    };
    let authority = uri.authority().ok_or("the endpoint URL has no host")?;
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path_and_query = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
    Ok(Target { tls, authority: authority.as_str().to_string(), host, port, path_and_query })
}

/// TLS settings: rustls with the pure-Rust crypto provider, trusting the platform's CAs (or
/// `$SSL_CERT_FILE` / `$SSL_CERT_DIR`).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = rustls::RootCertStore::empty();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err("no trusted certificate authorities were found for HTTPS endpoints (set SSL_CERT_FILE)".into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls_rustcrypto::provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl HttpClient {
    /// POSTs `body` to `url` with `headers`, within `deadline`; the answer's body is read
    /// (and dropped) so the connection can be used again.
    pub async fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(HeaderName, String)],
        body: Bytes,
        deadline: Duration,
    ) -> PostOutcome {
        let target = match parse(url) {
            Ok(t) => t,
            Err(reason) => return PostOutcome::Failed(reason),
        };
        match tokio::time::timeout(deadline, self.send(&target, content_type, headers, body)).await {
            Ok(Ok(status)) => PostOutcome::Answered(status),
            Ok(Err(reason)) => PostOutcome::Failed(reason),
            Err(_) => PostOutcome::Failed(format!("no answer within {} s", deadline.as_secs())),
        }
    }

    async fn send(
        &self,
        target: &Target,
        content_type: &str,
        headers: &[(HeaderName, String)],
        body: Bytes,
    ) -> Result<u16, String> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.path_and_query.as_str())
            .body(Full::new(body))
            .map_err(|e| format!("the request cannot be made: {e}"))?;
        let h = request.headers_mut();
        let value = |v: &str| HeaderValue::from_str(v).map_err(|_| format!("header value {v:?} is not allowed"));
        h.insert(HOST, value(&target.authority)?);
        h.insert(CONTENT_TYPE, value(content_type)?);
        h.insert(USER_AGENT, HeaderValue::from_static(SNS_USER_AGENT));
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        for (name, v) in headers {
            h.insert(name.clone(), value(v)?);
        }
        let mut sender = match self.idle_connection(&target.pool_key()) {
            Some(sender) => sender,
            None if target.tls => {
                let config = self.tls.get_or_init(tls_config).clone()?;
                connect_tls(target, config).await?
            }
            None => connect(target).await?,
        };
        let response = sender.send_request(request).await.map_err(|e| format!("the request failed: {e}"))?;
        let status = response.status().as_u16();
        // Read the answer to its end: a connection with an unread body cannot be reused.
        let reusable = http_body_util::BodyExt::collect(response.into_body()).await.is_ok();
        if reusable && sender.is_ready() {
            let mut idle = self.idle.lock();
            let pool = idle.entry(target.pool_key()).or_default();
            if pool.len() < MAX_IDLE_PER_AUTHORITY {
                pool.push(sender);
            }
        }
        Ok(status)
    }

    fn idle_connection(&self, key: &str) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock();
        let pool = idle.get_mut(key)?;
        while let Some(sender) = pool.pop() {
            if sender.is_ready() && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }
}

async fn tcp(target: &Target) -> Result<tokio::net::TcpStream, String> {
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.authority))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, String> {
    let (sender, connection) =
        http1::handshake(TokioIo::new(tcp(target).await?)).await.map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        // Ends when the connection closes, from either side.
        let _ = connection.await;
    });
    Ok(sender)
}

async fn connect_tls(target: &Target, config: Arc<rustls::ClientConfig>) -> Result<SendRequest<Full<Bytes>>, String> {
    let name = rustls_pki_types::ServerName::try_from(target.host.clone())
        .map_err(|_| format!("{:?} is not a host name TLS can check", target.host))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp(target).await?)
        .await
        .map_err(|e| format!("TLS with {} failed: {e}", target.authority))?;
    let (sender, connection) =
        http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("HTTP handshake failed: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_for_connecting() {
        let t = parse("http://127.0.0.1:8080/hook?x=1").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path_and_query.as_str()), ("127.0.0.1", 8080, "/hook?x=1"));
        let t = parse("http://example.com").unwrap();
        assert_eq!((t.port, t.path_and_query.as_str(), t.authority.as_str()), (80, "/", "example.com"));
        let t = parse("http://[::1]:9/").unwrap();
        assert_eq!(t.host, "::1");
        let t = parse("https://example.com/x").unwrap();
        assert_eq!((t.tls, t.port, t.pool_key().as_str()), (true, 443, "https://example.com"));
        assert!(parse("ftp://x/").is_err());
        assert!(parse("not a url").is_err());
    }
}
