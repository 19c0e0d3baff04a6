//! Crash test for topics: a child process publishes to a topic with three subscribed queues
//! (one filtered) from several threads and prints each acknowledged publish; the parent kills
//! it with SIGKILL at random moments and checks, after every restart, that each acknowledged
//! publish is in every matching queue exactly once, that no publish is ever in a queue twice,
//! and that every publish present anywhere is present in every queue it matches (a publish and
//! its deliveries are atomic).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use weir::queue::{AttributeValue, QueueConfig};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine, Options};

const TEST_NAME: &str = "acknowledged_publishes_reach_every_matching_queue_exactly_once_across_sigkills";
const CHILD_ENV: &str = "WEIR_TOPIC_CRASH_CHILD";
const ITERATIONS: u64 = 12;
const PUBLISHERS: u64 = 3;

fn options() -> Options {
    Options {
        durability: Durability::Always,
        segment_bytes: 32 << 10,
        background: false,
        lock_wait: Duration::from_secs(5),
        ..Options::default()
    }
}

#[test]
fn acknowledged_publishes_reach_every_matching_queue_exactly_once_across_sigkills() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let engine = Engine::open(tmp.path(), options()).expect("open");
        engine.create_topic("events", TopicConfig::default()).expect("topic");
        for q in ["all", "only-a", "wrapped"] {
            engine.create_queue(q, QueueConfig::default()).expect("queue");
        }
        let raw = SubscribeOptions { raw: true, ..Default::default() };
        engine.subscribe("events", Endpoint::Queue("all".into()), raw.clone()).expect("sub");
        let filtered = SubscribeOptions { filter_policy: Some(r#"{"kind":["a"]}"#.into()), ..raw };
        engine.subscribe("events", Endpoint::Queue("only-a".into()), filtered).expect("sub");
        engine.subscribe("events", Endpoint::Queue("wrapped".into()), SubscribeOptions::default()).expect("sub");
    }
    let mut acked: BTreeMap<String, String> = BTreeMap::new(); // body -> kind
    for iteration in 0..ITERATIONS {
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, tmp.path())
            .env("WEIR_TOPIC_CRASH_ITERATION", iteration.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child to be ready, then let it publish for a pseudo-random while.
        // The child's test harness prints its banner first, and "ready" may share its line.
        while !rx.recv_timeout(Duration::from_secs(30)).expect("child ready").ends_with("ready") {}
        std::thread::sleep(Duration::from_millis(20 + (iteration * 37) % 130));
        child.kill().expect("kill");
        child.wait().expect("wait");
        reader.join().expect("reader");
        for line in rx.try_iter() {
            if let Some(rest) = line.strip_prefix("ack ") {
                let (body, kind) = rest.split_once(' ').expect("ack line");
                acked.insert(body.to_string(), kind.to_string());
            }
        }
        check(tmp.path(), &acked, iteration);
    }
    assert!(acked.len() > 10, "the children acknowledged too little to test anything: {}", acked.len());
}

fn check(dir: &Path, acked: &BTreeMap<String, String>, iteration: u64) {
    let engine = Engine::open(dir, options()).expect("reopen after kill");
    let bodies = |queue: &str, wrapped: bool| -> Vec<String> {
        let q = engine.queue(queue).expect("queue");
        q.peek(1_000_000)
            .expect("peek")
            .into_iter()
            .map(|m| {
                if wrapped {
                    let doc: serde_json::Value = serde_json::from_slice(&m.body).expect("envelope");
                    doc["Message"].as_str().expect("Message").to_string()
                } else {
                    String::from_utf8(m.body.to_vec()).expect("utf-8")
                }
            })
            .collect()
    };
    let all = bodies("all", false);
    let only_a = bodies("only-a", false);
    let wrapped = bodies("wrapped", true);
    for (name, list) in [("all", &all), ("only-a", &only_a), ("wrapped", &wrapped)] {
        let unique: BTreeSet<&String> = list.iter().collect();
        assert_eq!(unique.len(), list.len(), "iteration {iteration}: a publish is in {name} twice");
    }
    let all_set: BTreeSet<&String> = all.iter().collect();
    let a_set: BTreeSet<&String> = only_a.iter().collect();
    let wrapped_set: BTreeSet<&String> = wrapped.iter().collect();
    for (body, kind) in acked {
        assert!(all_set.contains(body), "iteration {iteration}: acknowledged {body} missing from all");
        assert!(wrapped_set.contains(body), "iteration {iteration}: acknowledged {body} missing from wrapped");
        assert_eq!(a_set.contains(body), kind == "a", "iteration {iteration}: {body} (kind {kind}) in only-a is wrong");
    }
    // Atomicity: whatever is in one queue is in every queue it matches, acknowledged or not.
    assert_eq!(all_set, wrapped_set, "iteration {iteration}: deliveries of one publish diverge");
    for body in &a_set {
        assert!(all_set.contains(body), "iteration {iteration}: {body} only in the filtered queue");
        assert!(body.ends_with(":a"), "iteration {iteration}: {body} passed the filter wrongly");
    }
}

/// Publishes until killed; prints `ack <body> <kind>` after each acknowledged publish.
fn child(dir: &Path) -> ! {
    let iteration: u64 = std::env::var("WEIR_TOPIC_CRASH_ITERATION").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let engine = match Engine::open(dir, options()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("child: open: {e}");
            std::process::exit(3);
        }
    };
    let topic = match engine.topic("events") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("child: topic: {e}");
            std::process::exit(3);
        }
    };
    println!("ready");
    let _ = std::io::stdout().flush();
    std::thread::scope(|scope| {
        for t in 0..PUBLISHERS {
            let topic = &topic;
            scope.spawn(move || {
                for n in 0u64..100_000 {
                    let kind = if (n + t) % 2 == 0 { "a" } else { "b" };
                    let body = format!("i{iteration}-t{t}-n{n}:{kind}");
                    let attributes = [("kind".to_string(), AttributeValue::String(kind.into()))].into_iter().collect();
                    match topic.publish(body.as_bytes(), PublishOptions { attributes, ..Default::default() }) {
                        Ok(_) => {
                            let mut out = std::io::stdout().lock();
                            let _ = writeln!(out, "ack {body} {kind}");
                            let _ = out.flush();
                        }
                        Err(e) => {
                            eprintln!("child: publish: {e}");
                            std::process::exit(4);
                        }
                    }
                }
            });
        }
    });
    std::process::exit(0);
}
