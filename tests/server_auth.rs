//! `weir serve --auth` over real HTTP: every authentication error in both SQS protocols,
//! presigned URLs, the 15-minute window on a ManualClock-driven engine, key rotation, and
//! authorization (identity policies, queue policies, AddPermission, another account's key).
//! Requests are signed here by a signer written from AWS's description, apart from the
//! server's.

mod server_support;

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::Request;
use serde_json::{json, Value};
use server_support::{encode, Answer, Client};
use sha2::{Digest, Sha256};
use weir::server::{LogLevel, Server, ServerConfig, Stopper};
use weir::{Engine, ManualClock, Options};

const OWNER: &str = "111122223333";
const OTHER: &str = "444455556666";
/// 2026-03-01T12:00:00Z.
const START_MS: u64 = 1_772_366_400_000;

struct Key {
    id: &'static str,
    secret: &'static str,
}

const ROOT: Key = Key { id: "AKIAOWNERROOT0001", secret: "owner-secret" };
const SENDER: Key = Key { id: "AKIAOWNERSEND0001", secret: "sender-secret" };
const BOB: Key = Key { id: "AKIAOTHERBOB00001", secret: "bob-secret" };

fn credentials_file(dir: &std::path::Path, root_id: &str) -> std::path::PathBuf {
    let path = dir.join("credentials.json");
    let doc = json!({"credentials": [
        {"access_key_id": root_id, "secret_access_key": ROOT.secret, "account": OWNER, "user": "admin"},
        {"access_key_id": SENDER.id, "secret_access_key": SENDER.secret, "account": OWNER, "user": "sender",
         "policy": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"], "Resource": "arn:aws:sqs:*:111122223333:*"}]}},
        {"access_key_id": BOB.id, "secret_access_key": BOB.secret, "account": OTHER, "user": "bob"},
    ]});
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(doc.to_string().as_bytes()).unwrap();
    path
}

struct AuthServer {
    addr: std::net::SocketAddr,
    clock: Arc<ManualClock>,
    stopper: Stopper,
    reloader: weir::server::Reloader,
    dir: tempfile::TempDir,
    thread: Option<std::thread::JoinHandle<weir::Result<()>>>,
}

impl AuthServer {
    fn start() -> AuthServer {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(START_MS));
        let options = Options { clock: clock.clone(), ..Options::default() };
        let engine = Arc::new(Engine::open(dir.path().join("data"), options).unwrap());
        let config = ServerConfig {
            log_level: LogLevel::Error,
            account_id: OWNER.into(),
            auth_file: Some(credentials_file(dir.path(), ROOT.id)),
            ..ServerConfig::new(([127, 0, 0, 1], 0).into())
        };
        let server = Server::bind(engine, config).unwrap();
        assert!(server.startup_line().ends_with(r#","auth":"sigv4"}"#), "{}", server.startup_line());
        let (addr, stopper, reloader) = (server.local_addr(), server.stopper(), server.reloader());
        let thread = Some(std::thread::spawn(move || server.run()));
        AuthServer { addr, clock, stopper, reloader, dir, thread }
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn amz_time(ms: u64) -> String {
    let iso = weir::text::iso8601(ms);
    format!("{}Z", iso.chars().take(19).filter(|c| *c != '-' && *c != ':').collect::<String>())
}

fn signature(secret: &str, time: &str, canonical: &str) -> String {
    let date = &time[..8];
    let scope = format!("{date}/us-east-1/sqs/aws4_request");
    let to_sign = format!("AWS4-HMAC-SHA256\n{time}\n{scope}\n{}", hex(&Sha256::digest(canonical.as_bytes())));
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), date);
    for part in ["us-east-1", "sqs", "aws4_request"] {
        key = hmac(&key, part);
    }
    hex(&hmac(&key, &to_sign))
}

/// A signed AWS JSON 1.0 SQS request made at `at_ms`.
fn signed_json(c: &Client, key: &Key, op: &str, body: &Value, at_ms: u64) -> Request<Full<Bytes>> {
    let body = body.to_string();
    let host = c.addr.to_string();
    let time = amz_time(at_ms);
    let target = format!("AmazonSQS.{op}");
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:{host}\nx-amz-date:{time}\nx-amz-target:{target}\n\n\
         content-type;host;x-amz-date;x-amz-target\n{}",
        hex(&Sha256::digest(body.as_bytes()))
    );
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}",
        key.id,
        &time[..8],
        signature(key.secret, &time, &canonical)
    );
    Request::builder()
        .method("POST")
        .uri(format!("http://{host}/"))
        .header("host", &host)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", target)
        .header("x-amz-date", time)
        .header("authorization", authorization)
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn call(c: &mut Client, key: &Key, op: &str, body: Value, at_ms: u64) -> Answer {
    let req = signed_json(c, key, op, &body, at_ms);
    c.send(req)
}

/// The error as SDKs read it: the legacy code of `x-amzn-query-error`.
fn code(a: &Answer) -> String {
    a.header("x-amzn-query-error").unwrap_or_default().split(';').next().unwrap_or_default().to_string()
}

#[test]
fn every_authentication_failure_answers_as_aws_does() {
    let s = AuthServer::start();
    let mut c = Client::connect(s.addr, false);
    let now = START_MS;
    let ok = call(&mut c, &ROOT, "ListQueues", json!({}), now);
    assert_eq!(ok.status, 200, "{}", ok.text());

    // Unsigned, in both protocols.
    let unsigned = c.json("ListQueues", json!({}));
    assert_eq!((unsigned.status, code(&unsigned).as_str()), (403, "MissingAuthenticationToken"), "{}", unsigned.text());
    let form = c.query("/", &[("Action", "ListQueues"), ("Version", "2012-11-05")]);
    assert_eq!(form.status, 403);
    assert!(form.text().contains("<Code>MissingAuthenticationToken</Code>"), "{}", form.text());
    assert!(form.text().contains("<ErrorResponse"), "{}", form.text());

    // An unknown key.
    let stranger = Key { id: "AKIASTRANGER00001", secret: "x" };
    let a = call(&mut c, &stranger, "ListQueues", json!({}), now);
    assert_eq!((a.status, code(&a).as_str()), (403, "InvalidClientTokenId"));
    assert_eq!(a.shape(), "InvalidClientTokenId");

    // A known key with the wrong secret; a body changed after signing.
    let forged = Key { id: ROOT.id, secret: "guessed" };
    let a = call(&mut c, &forged, "ListQueues", json!({}), now);
    assert_eq!((a.status, code(&a).as_str()), (403, "SignatureDoesNotMatch"));
    let mut req = signed_json(&c, &ROOT, "ListQueues", &json!({}), now);
    *req.body_mut() = Full::new(Bytes::from_static(br#"{"QueueNamePrefix":"x"}"#));
    let a = c.send(req);
    assert_eq!(code(&a), "SignatureDoesNotMatch");

    // Malformed Authorization headers.
    for bad in [
        "AWS4-HMAC-SHA256 Credential=AKIAOWNERROOT0001/20260301/us-east-1/sqs/aws4_request".to_string(),
        "AWS4-HMAC-SHA1 Credential=x, SignedHeaders=host, Signature=00".to_string(),
        format!("AWS4-HMAC-SHA256 Credential={}/20260301/us-east-1/sqs/aws4_request, SignedHeaders=x-amz-date, Signature={}", ROOT.id, "0".repeat(64)),
    ] {
        let mut req = signed_json(&c, &ROOT, "ListQueues", &json!({}), now);
        req.headers_mut().insert("authorization", bad.parse().unwrap());
        let a = c.send(req);
        assert_eq!((a.status, code(&a).as_str()), (403, "IncompleteSignature"), "{bad}: {}", a.text());
    }

    // The window is the engine clock's: 15 minutes either way.
    let signed_at = now;
    s.clock.set_ms(now + 14 * 60 * 1000);
    assert_eq!(call(&mut c, &ROOT, "ListQueues", json!({}), signed_at).status, 200);
    s.clock.set_ms(now + 16 * 60 * 1000);
    let a = call(&mut c, &ROOT, "ListQueues", json!({}), signed_at);
    assert_eq!((a.status, code(&a).as_str()), (403, "RequestExpired"), "{}", a.text());
    let a = call(&mut c, &ROOT, "ListQueues", json!({}), signed_at + 32 * 60 * 1000);
    assert_eq!(code(&a), "RequestExpired", "a signature from the future");
    s.clock.set_ms(now);

    // The connection survived every refusal.
    assert_eq!(call(&mut c, &ROOT, "ListQueues", json!({}), now).status, 200);
}

/// A presigned query-protocol URL: `GET /?Action=...&X-Amz-Signature=...`.
fn presigned(c: &Client, key: &Key, params: &[(&str, &str)], at_ms: u64, expires: u64) -> String {
    let host = c.addr.to_string();
    let time = amz_time(at_ms);
    let credential = format!("{}/{}/us-east-1/sqs/aws4_request", key.id, &time[..8]);
    let expires = expires.to_string();
    let mut all: Vec<(String, String)> = params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    for (k, v) in [
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        ("X-Amz-Credential", credential.as_str()),
        ("X-Amz-Date", time.as_str()),
        ("X-Amz-Expires", expires.as_str()),
        ("X-Amz-SignedHeaders", "host"),
    ] {
        all.push((encode(k), encode(v)));
    }
    all.sort();
    let query = all.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let canonical = format!("GET\n/\n{query}\nhost:{host}\n\nhost\n{}", hex(&Sha256::digest(b"")));
    format!("/?{query}&X-Amz-Signature={}", signature(key.secret, &time, &canonical))
}

#[test]
fn presigned_urls_work_until_they_expire() {
    let s = AuthServer::start();
    let mut c = Client::connect(s.addr, false);
    assert_eq!(call(&mut c, &ROOT, "CreateQueue", json!({"QueueName": "jobs"}), START_MS).status, 200);
    let url = presigned(&c, &ROOT, &[("Action", "ListQueues"), ("Version", "2012-11-05")], START_MS, 300);
    let a = c.get(&url);
    assert_eq!(a.status, 200, "{}", a.text());
    assert!(a.text().contains("/111122223333/jobs"), "{}", a.text());
    s.clock.set_ms(START_MS + 300_000);
    assert_eq!(c.get(&url).status, 200, "the last second of its validity");
    s.clock.set_ms(START_MS + 301_000);
    let a = c.get(&url);
    assert_eq!(a.status, 403);
    assert!(a.text().contains("<Code>RequestExpired</Code>"), "{}", a.text());
    s.clock.set_ms(START_MS);
    let tampered = url.replace("ListQueues", "ListQueueX");
    assert!(c.get(&tampered).text().contains("<Code>SignatureDoesNotMatch</Code>"));
}

#[test]
fn policies_decide_what_each_key_may_do() {
    let s = AuthServer::start();
    let mut c = Client::connect(s.addr, false);
    let now = START_MS;
    let url = call(&mut c, &ROOT, "CreateQueue", json!({"QueueName": "jobs"}), now).json()["QueueUrl"]
        .as_str()
        .unwrap()
        .to_string();
    // The limited key: what its policy allows, nothing else.
    let a = call(&mut c, &SENDER, "SendMessage", json!({"QueueUrl": url, "MessageBody": "hi"}), now);
    assert_eq!(a.status, 200, "{}", a.text());
    let a = call(&mut c, &SENDER, "ReceiveMessage", json!({"QueueUrl": url}), now);
    assert_eq!((a.status, code(&a).as_str()), (403, "AccessDenied"), "{}", a.text());
    assert!(a.json()["message"].as_str().unwrap().contains("sqs:ReceiveMessage"));
    let a = call(
        &mut c,
        &SENDER,
        "SendMessageBatch",
        json!({"QueueUrl": url, "Entries": [{"Id": "1", "MessageBody": "b"}]}),
        now,
    );
    assert_eq!(a.status, 200, "a batch is authorized as its single action: {}", a.text());
    assert_eq!(code(&call(&mut c, &SENDER, "ListQueues", json!({}), now)), "AccessDenied");

    // Another account's key needs the queue's policy.
    let a = call(&mut c, &BOB, "SendMessage", json!({"QueueUrl": url, "MessageBody": "from bob"}), now);
    assert_eq!(code(&a), "AccessDenied", "{}", a.text());
    let a = call(
        &mut c,
        &ROOT,
        "AddPermission",
        json!({"QueueUrl": url, "Label": "bob-sends", "AWSAccountIds": [OTHER], "Actions": ["SendMessage"]}),
        now,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let a = call(&mut c, &BOB, "SendMessage", json!({"QueueUrl": url, "MessageBody": "from bob"}), now);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(code(&call(&mut c, &BOB, "PurgeQueue", json!({"QueueUrl": url}), now)), "AccessDenied");
    let policy = call(&mut c, &ROOT, "GetQueueAttributes", json!({"QueueUrl": url, "AttributeNames": ["Policy"]}), now);
    let policy: Value = serde_json::from_str(policy.json()["Attributes"]["Policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Sid"], "bob-sends");
    let a = call(&mut c, &ROOT, "RemovePermission", json!({"QueueUrl": url, "Label": "bob-sends"}), now);
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        code(&call(&mut c, &BOB, "SendMessage", json!({"QueueUrl": url, "MessageBody": "x"}), now)),
        "AccessDenied"
    );

    // A Policy attribute with an explicit Deny stops even the owner's root key.
    let deny = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "sqs:PurgeQueue", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "sqs:ReceiveMessage", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]});
    let a = call(
        &mut c,
        &ROOT,
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"Policy": deny.to_string()}}),
        now,
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(code(&call(&mut c, &ROOT, "PurgeQueue", json!({"QueueUrl": url}), now)), "AccessDenied");
    let a = call(&mut c, &BOB, "ReceiveMessage", json!({"QueueUrl": url}), now);
    assert_eq!(a.status, 200, "the source address condition holds for 127.0.0.1: {}", a.text());
    // A policy the evaluator cannot read is refused when set.
    let a = call(
        &mut c,
        &ROOT,
        "SetQueueAttributes",
        json!({"QueueUrl": url, "Attributes": {"Policy": "{\"Statement\":[{\"Effect\":\"Maybe\"}]}"}}),
        now,
    );
    assert_eq!((a.status, code(&a).as_str()), (400, "InvalidAttributeValue"), "{}", a.text());
}

#[test]
fn a_reload_rotates_keys() {
    let s = AuthServer::start();
    let mut c = Client::connect(s.addr, false);
    assert_eq!(call(&mut c, &ROOT, "ListQueues", json!({}), START_MS).status, 200);
    let rotated = Key { id: "AKIAOWNERROOT0002", secret: ROOT.secret };
    credentials_file(s.dir.path(), rotated.id);
    assert_eq!(call(&mut c, &ROOT, "ListQueues", json!({}), START_MS).status, 200, "until the reload");
    assert_eq!(s.reloader.reload().unwrap(), 3);
    assert_eq!(code(&call(&mut c, &ROOT, "ListQueues", json!({}), START_MS)), "InvalidClientTokenId");
    assert_eq!(call(&mut c, &rotated, "ListQueues", json!({}), START_MS).status, 200);
    // A broken file keeps the keys in force.
    std::fs::write(s.dir.path().join("credentials.json"), "{").unwrap();
    assert!(s.reloader.reload().is_err());
    assert_eq!(call(&mut c, &rotated, "ListQueues", json!({}), START_MS).status, 200);
}
