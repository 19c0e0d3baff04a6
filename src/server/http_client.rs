//! The server's HTTP client, for deliveries it makes to endpoints (Firehose's HTTP endpoint
//! destinations): one POST over a fresh HTTP/1.1 connection with hyper, bounded in time and in
//! the size of the answer it reads. Plain `http://` only (no TLS client in the server yet).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;

/// An answer: status and (at most the limit of) its body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Why a POST got no answer.
#[derive(Debug)]
pub(crate) enum PostError {
    /// The URL cannot be used.
    BadUrl(String),
    /// Connecting, sending or reading failed.
    Connection(String),
    /// No whole answer within the time allowed.
    Timeout,
}

/// `http://HOST[:PORT]` and the request target (`/PATH?QUERY`) of a URL.
fn split_url(url: &str) -> Result<(String, String, String), PostError> {
    let rest =
        url.strip_prefix("http://").ok_or_else(|| PostError::BadUrl(format!("{url:?} is not an http:// URL")))?;
    let (authority, target) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let target = target.split('#').next().unwrap_or("/");
    let target = if target.starts_with('?') { format!("/{target}") } else { target.to_string() };
    if authority.is_empty() || authority.contains('@') {
        return Err(PostError::BadUrl(format!("{url:?} has no host")));
    }
    // Connect to HOST:PORT (port 80 when none is given; IPv6 hosts in brackets).
    let connect = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_string()
        } else {
            format!("{authority}:80")
        }
    } else if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((connect, authority.to_string(), target))
}

/// POSTs `body` with `headers` to `url` and reads the answer (at most `max_answer` bytes of
/// body), all within `timeout`.
pub(crate) async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
    max_answer: usize,
) -> Result<Response, PostError> {
    let (connect, host, target) = split_url(url)?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(&connect)
            .await
            .map_err(|e| PostError::Connection(format!("connect to {connect}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| PostError::Connection(format!("HTTP handshake with {connect}: {e}")))?;
        let driver = tokio::spawn(conn);
        let mut request = Request::builder().method("POST").uri(&target).header("host", &host);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request =
            request.body(Full::new(body)).map_err(|e| PostError::BadUrl(format!("a request to {url:?}: {e}")))?;
        let answer = sender.send_request(request).await;
        let result = match answer {
            Ok(response) => {
                let status = response.status().as_u16();
                match Limited::new(response.into_body(), max_answer).collect().await {
                    Ok(collected) => Ok(Response { status, body: collected.to_bytes() }),
                    Err(e) => Err(PostError::Connection(format!("reading the answer of {connect}: {e}"))),
                }
            }
            Err(e) => Err(PostError::Connection(format!("POST to {connect}: {e}"))),
        };
        driver.abort();
        result
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(PostError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_where_to_connect_and_what_to_ask() {
        let split = |u: &str| split_url(u).ok();
        assert_eq!(split("http://h:8080/a/b?x=1#f"), Some(("h:8080".into(), "h:8080".into(), "/a/b?x=1".into())));
        assert_eq!(split("http://h"), Some(("h:80".into(), "h".into(), "/".into())));
        assert_eq!(split("http://h?q"), Some(("h:80".into(), "h".into(), "/?q".into())));
        assert_eq!(split("http://[::1]:9/p"), Some(("[::1]:9".into(), "[::1]:9".into(), "/p".into())));
        assert_eq!(split("https://h/"), None);
        assert_eq!(split("http:///p"), None);
        assert_eq!(split("http://u@h/"), None);
    }
}
