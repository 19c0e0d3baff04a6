//! An HTTPS subscription end to end: the server's delivery client speaks TLS to an endpoint
//! whose certificate it trusts through `$SSL_CERT_FILE` (a certificate made for this test),
//! through the confirmation request and a notification. One test in this binary: it sets the
//! environment variable before the server makes its first TLS connection.

mod server_support;

use std::io::Write;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use server_support::{Answer, Client, TestServer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn sns(c: &mut Client, action: &str, params: &[(&str, &str)]) -> Answer {
    let mut form = vec![("Action", action), ("Version", "2010-03-31")];
    form.extend_from_slice(params);
    c.query("/", &form)
}

fn text(a: &Answer, name: &str) -> String {
    let body = a.text();
    let start = body.find(&format!("<{name}>")).unwrap_or_else(|| panic!("no {name}: {body}")) + name.len() + 2;
    body[start..start + body[start..].find('<').unwrap()].to_string()
}

/// An HTTPS endpoint on `localhost` with a fresh self-signed certificate (written to
/// `cert_file`): every request's head and body, answered 200.
fn https_endpoint(cert_file: &std::path::Path) -> (u16, mpsc::Receiver<(String, Vec<u8>)>) {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::File::create(cert_file).and_then(|mut f| f.write_all(key.cert.pem().as_bytes())).expect("write cert");
    let cert = key.cert.der().clone();
    let private = rustls_pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let Ok(tls) = acceptor.accept(tcp).await else { continue };
                let mut reader = BufReader::new(tls);
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body).await;
                let mut tls = reader.into_inner();
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").await;
                let _ = tls.shutdown().await;
                if tx.send((head, body)).is_err() {
                    return;
                }
            }
        });
    });
    (port, rx)
}

#[test]
fn an_https_endpoint_is_confirmed_and_notified_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_file = dir.path().join("endpoint.pem");
    let (port, posts) = https_endpoint(&cert_file);
    // Read by the delivery client when it makes its first TLS connection, below.
    std::env::set_var("SSL_CERT_FILE", &cert_file);
    let server = TestServer::start();
    let mut c = server.client();
    let topic = text(&sns(&mut c, "CreateTopic", &[("Name", "secure")]), "TopicArn");
    let url = format!("https://localhost:{port}/hook");
    let a = sns(&mut c, "Subscribe", &[("TopicArn", &topic), ("Protocol", "https"), ("Endpoint", &url)]);
    assert_eq!(a.status, 200, "{}", a.text());
    let (head, body) = posts.recv_timeout(Duration::from_secs(30)).expect("the confirmation request, over TLS");
    assert!(head.contains("x-amz-sns-message-type: SubscriptionConfirmation"), "{head}");
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let token = doc["Token"].as_str().expect("token");
    let confirmed = sns(&mut c, "ConfirmSubscription", &[("TopicArn", &topic), ("Token", token)]);
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    let sub = text(&confirmed, "SubscriptionArn");
    sns(&mut c, "Publish", &[("TopicArn", &topic), ("Message", "over TLS")]);
    let (head, body) = posts.recv_timeout(Duration::from_secs(30)).expect("the notification, over TLS");
    assert!(head.contains(&format!("x-amz-sns-subscription-arn: {sub}")), "{head}");
    let doc: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(doc["Message"], "over TLS");
    let attrs = sns(&mut c, "GetSubscriptionAttributes", &[("SubscriptionArn", &sub)]).text();
    assert!(attrs.contains("<key>Protocol</key><value>https</value>"), "{attrs}");
}
