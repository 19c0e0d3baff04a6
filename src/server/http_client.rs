//! The server's HTTP client, for the requests it makes itself: Firehose's HTTP endpoint
//! deliveries and SNS's POSTs to HTTP/HTTPS subscriptions. hyper's HTTP/1.1 client connection
//! over a TCP stream (TLS for `https://`, with rustls and the server's `ring` provider,
//! trusting the system's certificate authorities, or those of `$SSL_CERT_FILE` /
//! `$SSL_CERT_DIR` when set), a small pool of idle keep-alive connections per endpoint, one
//! deadline for connecting, sending and reading the answer, and a bound on the answer's size.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderName, HeaderValue, CONNECTION, HOST};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;

/// Idle connections kept per endpoint authority.
const MAX_IDLE_PER_AUTHORITY: usize = 8;

/// An answer: status and (at most the limit of) its body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Why a POST got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PostError {
    /// The URL (or a header) cannot be used.
    BadUrl(String),
    /// Connecting, TLS, sending or reading failed (or the answer was over the limit).
    Connection(String),
    /// No whole answer within the time allowed.
    Timeout,
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::BadUrl(m) | PostError::Connection(m) => f.write_str(m),
            PostError::Timeout => f.write_str("no answer in time"),
        }
    }
}

/// A pooled HTTP/1.1 client. Cheap to share behind an `Arc`.
#[derive(Default)]
pub(crate) struct HttpClient {
    /// Idle connections by scheme and authority.
    idle: Mutex<HashMap<String, Vec<SendRequest<Full<Bytes>>>>>,
}

/// An endpoint URL, split for connecting.
#[derive(Debug)]
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

fn parse(url: &str) -> Result<Target, PostError> {
    let bad = |why: &str| PostError::BadUrl(format!("{url:?} {why}"));
    let uri: Uri = url.parse().map_err(|_| bad("does not parse as a URL"))?;
    let tls = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(bad("is not an http:// or https:// URL")),
    };
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(bad("has no host (or names a user)"));
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    // A request target starts with `/`, also when the URL has a query but no path.
    let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") => "/".to_string(),
        Some(p) if p.starts_with('?') => format!("/{p}"),
        Some(p) => p.to_string(),
    };
    Ok(Target { tls, authority: authority.as_str().to_string(), host, port, path_and_query })
}

/// TLS settings, made once per process: rustls with the `ring` provider (the one the server's
/// own TLS uses), trusting the platform's CAs (or `$SSL_CERT_FILE` / `$SSL_CERT_DIR`).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, PostError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let made = CONFIG.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = rustls::RootCertStore::empty();
        for cert in found.certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err("no trusted certificate authorities were found for HTTPS endpoints (set SSL_CERT_FILE)".into());
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS cannot be set up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    });
    made.clone().map_err(PostError::Connection)
}

/// POSTs once over a connection of its own (no pool): see [`HttpClient::post`].
pub(crate) async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
    max_answer: usize,
) -> Result<Response, PostError> {
    HttpClient::default().post(url, headers, body, timeout, max_answer).await
}

impl HttpClient {
    /// POSTs `body` with `headers` to `url` and reads the answer (at most `max_answer` bytes
    /// of body), all within `timeout`. A connection whose answer was read whole goes back to
    /// the pool.
    pub(crate) async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
        timeout: Duration,
        max_answer: usize,
    ) -> Result<Response, PostError> {
        let target = parse(url)?;
        match tokio::time::timeout(timeout, self.send(&target, headers, body, max_answer)).await {
            Ok(result) => result,
            Err(_) => Err(PostError::Timeout),
        }
    }

    async fn send(
        &self,
        target: &Target,
        headers: &[(&str, String)],
        body: Bytes,
        max_answer: usize,
    ) -> Result<Response, PostError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(target.path_and_query.as_str())
            .body(Full::new(body))
            .map_err(|e| PostError::BadUrl(format!("the request cannot be made: {e}")))?;
        let h = request.headers_mut();
        let value = |v: &str| {
            HeaderValue::from_str(v).map_err(|_| PostError::BadUrl(format!("header value {v:?} is not allowed")))
        };
        h.insert(HOST, value(&target.authority)?);
        h.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        for (name, v) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PostError::BadUrl(format!("header name {name:?} is not allowed")))?;
            h.insert(name, value(v)?);
        }
        let mut sender = match self.idle_connection(&target.pool_key()) {
            Some(sender) => sender,
            None if target.tls => connect_tls(target, tls_config()?).await?,
            None => connect(target).await?,
        };
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| PostError::Connection(format!("POST to {}: {e}", target.authority)))?;
        let status = response.status().as_u16();
        // Read the answer to its end: a connection with an unread body cannot be reused.
        let body = Limited::new(response.into_body(), max_answer)
            .collect()
            .await
            .map_err(|e| PostError::Connection(format!("reading the answer of {}: {e}", target.authority)))?
            .to_bytes();
        if sender.is_ready() {
            let mut idle = self.idle.lock();
            let pool = idle.entry(target.pool_key()).or_default();
            if pool.len() < MAX_IDLE_PER_AUTHORITY {
                pool.push(sender);
            }
        }
        Ok(Response { status, body })
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

async fn tcp(target: &Target) -> Result<tokio::net::TcpStream, PostError> {
    let stream = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| PostError::Connection(format!("cannot connect to {}: {e}", target.authority)))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, PostError> {
    handshake(target, tcp(target).await?).await
}

async fn connect_tls(
    target: &Target,
    config: Arc<rustls::ClientConfig>,
) -> Result<SendRequest<Full<Bytes>>, PostError> {
    let name = rustls_pki_types::ServerName::try_from(target.host.clone())
        .map_err(|_| PostError::BadUrl(format!("{:?} is not a host name TLS can check", target.host)))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp(target).await?)
        .await
        .map_err(|e| PostError::Connection(format!("TLS with {} failed: {e}", target.authority)))?;
    handshake(target, stream).await
}

/// HTTP/1.1 over a connected stream (TCP or TLS); the connection runs in a task of its own
/// until either side closes it.
async fn handshake<S>(target: &Target, stream: S) -> Result<SendRequest<Full<Bytes>>, PostError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| PostError::Connection(format!("HTTP handshake with {} failed: {e}", target.authority)))?;
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
        let t = parse("http://h?q").unwrap();
        assert_eq!(t.path_and_query, "/?q");
        let t = parse("http://h/a#fragment").unwrap();
        assert_eq!(t.path_and_query, "/a");
        let t = parse("http://[::1]:9/").unwrap();
        assert_eq!((t.host.as_str(), t.authority.as_str()), ("::1", "[::1]:9"));
        let t = parse("https://example.com/x").unwrap();
        assert_eq!((t.tls, t.port, t.pool_key().as_str()), (true, 443, "https://example.com"));
        for bad in ["ftp://x/", "not a url", "http:///p", "http://u@h/"] {
            assert!(matches!(parse(bad), Err(PostError::BadUrl(_))), "{bad} accepted");
        }
    }
}
