//! MQTT against real clients: the paho-mqtt conformance suite (`tests/clients/test_mqtt.py`,
//! which also passes against Mosquitto: `tests/clients/mosquitto.sh`), a kill -9 with QoS 1
//! and 2 in flight and persistent sessions, and MQTT publish -> SNS-style subscription ->
//! SQS receive with boto3.
//!
//! `tests/clients/setup.sh` makes the client venv under `target/` once (pinned paho-mqtt and
//! boto3; it needs PyPI the first time).

mod server_support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use server_support::{python, ServeChild};
use weir::queue::QueueConfig;
use weir::server::{LogLevel, Protocol, Server, ServerConfig};
use weir::topic::{Endpoint, SubscribeOptions, TopicConfig};
use weir::{Engine, Options};

fn mqtt_addr(serve: &ServeChild) -> SocketAddr {
    let line: serde_json::Value = serde_json::from_str(&serve.startup_line).expect("startup line");
    line["mqtt"].as_str().expect("the startup line names the mqtt listener").parse().expect("address")
}

#[test]
fn paho_passes_the_mqtt_suite() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = ServeChild::start(dir.path(), &["--log-level", "warn", "--mqtt", "127.0.0.1:0"]);
    let addr = mqtt_addr(&serve);
    let port = addr.port().to_string();
    server_support::run_client_suite(
        "test_mqtt.py",
        &[("MQTT_HOST", "127.0.0.1".as_ref()), ("MQTT_PORT", port.as_ref())],
    );
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn paho_passes_the_mqtt_suite_over_tls_with_credentials_checked() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key, credentials) = server_support::tls_and_credentials(
        files.path(),
        serde_json::json!([
            {"access_key_id": "AKIAMQTT000000001", "secret_access_key": "mqtt-secret", "account": "000000000000", "user": "device"},
            {"access_key_id": "AKIAMQTTREADONLY1", "secret_access_key": "reader-secret", "account": "000000000000", "user": "reader",
             "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sns:Subscribe", "Resource": "*"}]}},
        ]),
    );
    let args = [
        "--log-level",
        "warn",
        "--mqtt",
        "127.0.0.1:0",
        "--auth",
        credentials.to_str().unwrap(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut serve = ServeChild::start(dir.path(), &args);
    let port = mqtt_addr(&serve).port().to_string();
    server_support::run_client_suite(
        "test_mqtt.py",
        &[
            ("MQTT_HOST", "127.0.0.1".as_ref()),
            ("MQTT_PORT", port.as_ref()),
            ("MQTT_CA", cert.as_os_str()),
            ("MQTT_USER", "AKIAMQTT000000001".as_ref()),
            ("MQTT_PASSWORD", "mqtt-secret".as_ref()),
            ("MQTT_READER", "AKIAMQTTREADONLY1".as_ref()),
            ("MQTT_READER_PASSWORD", "reader-secret".as_ref()),
        ],
    );
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

#[test]
fn an_mqtt_publish_reaches_an_sqs_queue_through_a_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Arc::new(Engine::open(dir.path(), Options::default()).unwrap());
    engine.create_topic("mqtt", TopicConfig::default()).unwrap();
    engine.create_queue("kitchen", QueueConfig::default()).unwrap();
    let options = SubscribeOptions {
        filter_policy: Some(r#"{"mqtt.topic": [{"prefix": "sensors/kitchen/"}]}"#.into()),
        raw: true,
        ..SubscribeOptions::default()
    };
    engine.subscribe("mqtt", Endpoint::Queue("kitchen".into()), options).unwrap();
    let config = ServerConfig {
        log_level: LogLevel::Warn,
        mqtt: Some(([127, 0, 0, 1], 0).into()),
        ..ServerConfig::new(([127, 0, 0, 1], 0).into())
    };
    let server = Server::bind(Arc::clone(&engine), config).unwrap();
    let endpoint = format!("http://{}", server.local_addr());
    let port = server.protocol_addr(Protocol::Mqtt).unwrap().port().to_string();
    let stopper = server.stopper();
    let thread = std::thread::spawn(move || server.run());
    server_support::run_client_suite(
        "test_mqtt_sns.py",
        &[("WEIR_ENDPOINT", endpoint.as_ref()), ("MQTT_PORT", port.as_ref()), ("QUEUE_NAME", "kitchen".as_ref())],
    );
    stopper.stop();
    thread.join().unwrap().unwrap();
}

/// A port free now (for a server that must come back on the same port after a kill).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `tests/clients/<file> MODE PORT MORE...` in the client venv.
fn helper(file: &str, mode: &str, port: u16, more: &[&str]) -> Command {
    let mut c = Command::new(python());
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(file)).arg(mode).arg(port.to_string());
    c.args(more);
    c
}

fn script(mode: &str, port: u16, more: &[&str]) -> Command {
    helper("crash_mqtt.py", mode, port, more)
}

/// A `weir serve --mqtt` on a port of its own, started again on the same data and port after
/// a kill -9.
struct Restartable {
    dir: tempfile::TempDir,
    port: u16,
}

impl Restartable {
    fn new() -> Restartable {
        Restartable { dir: tempfile::tempdir().unwrap(), port: free_port() }
    }

    fn start(&self) -> ServeChild {
        let mqtt = format!("127.0.0.1:{}", self.port);
        ServeChild::start(self.dir.path(), &["--log-level", "warn", "--mqtt", mqtt.as_str()])
    }

    fn kill_9(&self, mut serve: ServeChild) {
        serve.child.kill().unwrap();
        serve.child.wait().unwrap();
    }
}

/// Messages the publisher sends in all.
const TOTAL: usize = 400;
/// Acknowledged publishes before the kill.
const BEFORE_KILL: usize = 100;

#[test]
fn a_kill_9_loses_no_acknowledged_publish() {
    kill_9_with_qos_1_and_2_in_flight(false);
}

/// Once failed about one run in six on a loaded machine: the publishing client (paho-mqtt
/// 2.1.0) sent a QoS 2 message again as a new PUBLISH after its PUBREL when it needed more
/// than one attempt to reconnect; `crash_mqtt.py` works around that client bug (see its
/// `Client`), so this checks the server.
#[test]
fn a_kill_9_loses_no_acknowledged_publish_and_repeats_no_qos2_message() {
    kill_9_with_qos_1_and_2_in_flight(true);
}

/// Publishes QoS 1 and 2 from a persistent session through a kill -9 and a restart, then
/// drains a persistent subscriber: nothing acknowledged is lost, and with `exactly_once` no
/// QoS 2 message comes twice.
fn kill_9_with_qos_1_and_2_in_flight(exactly_once: bool) {
    let journal_dir = tempfile::tempdir().unwrap();
    let journal = journal_dir.path().join("acked");
    let server = Restartable::new();
    let port = server.port;
    let serve = server.start();
    assert!(script("subscribe", port, &[]).status().unwrap().success(), "subscriber setup");
    let mut publisher = script("publish", port, &[journal.to_str().unwrap(), &TOTAL.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the publisher");
    let read = || std::fs::read_to_string(&journal).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(120);
    while read().lines().count() < BEFORE_KILL {
        assert!(Instant::now() < deadline, "only {} acknowledged publishes", read().lines().count());
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill_9(serve);
    let acked_at_kill = read().lines().count();
    let mut serve = server.start();
    // Bounded: the publisher gives up after its own deadline; this one covers a hang.
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = publisher.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = publisher.kill();
            panic!("the publisher did not finish within 240 s of the restart:\n{}", read());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "publisher {status:?}");
    let lines = read();
    assert_eq!(lines.lines().last(), Some("done"), "the publisher finished after the restart:\n{lines}");
    let acked: BTreeSet<String> = lines.lines().filter(|l| *l != "done").map(str::to_string).collect();
    assert_eq!(acked.len(), TOTAL);
    assert!(acked_at_kill >= BEFORE_KILL);

    let out = script("drain", port, &[]).output().unwrap();
    assert!(out.status.success(), "drain: {}", String::from_utf8_lossy(&out.stderr));
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *seen.entry(v["payload"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let missing: Vec<&String> = acked.iter().filter(|p| !seen.contains_key(*p)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    let repeated: Vec<(&String, &usize)> = seen.iter().filter(|(p, n)| p.starts_with("q2-") && **n > 1).collect();
    if exactly_once {
        assert!(repeated.is_empty(), "QoS 2 delivered more than once: {repeated:?}");
    }
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// Sessions across a kill -9: a PUBLISH left unacknowledged is sent again with DUP and its
/// original packet id; a shared subscription's member gets the group's messages after
/// reconnecting without subscribing again; a session whose Session Expiry Interval passed
/// (its deadline durable in the engine) is gone. The expiry's own timing is tested with
/// the engine's clock (`server::mqtt::expiry`); this waits on the server's real clock once.
#[test]
fn packet_ids_shared_subscriptions_and_session_expiry_survive_a_kill_9() {
    let stamp_dir = tempfile::tempdir().unwrap();
    let stamp = stamp_dir.path().join("left");
    let server = Restartable::new();
    let run = |mode: &str| {
        let out = helper("restart_mqtt.py", mode, server.port, &[stamp.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let serve = server.start();
    run("join");
    server.kill_9(serve);
    let mut serve = server.start();
    run("check");
    let status = serve.signal_and_wait("TERM", Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// The same suite against Mosquitto, to show it checks MQTT and not weir's habits. Opt-in:
/// `WEIR_REFERENCE_BROKERS=1` (needs `mosquitto` from Debian's packages).
#[test]
fn the_mqtt_suite_passes_against_mosquitto_when_asked() {
    if std::env::var_os("WEIR_REFERENCE_BROKERS").is_none() {
        eprintln!("skipped: set WEIR_REFERENCE_BROKERS=1 to run the suite against Mosquitto");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/mosquitto.sh");
    let out = Command::new("bash").arg(script).output().expect("run mosquitto.sh");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the suite failed against Mosquitto:\n{report}");
}
