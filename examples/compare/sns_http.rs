//! `sns_http_fanout`: Publish over HTTP (SNS's query protocol) into a topic with 10 raw queue
//! subscriptions, against the same publishes through the library. 8 publishers, each over its
//! own kept-alive HTTP/1.1 connection to an in-process `weir::server::Server`; the library run
//! calls `Topic::publish` from 8 threads. One operation is one delivery (a publish counts 10).
//! Durability `Always` in both.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use weir::server::{LogLevel, Server, ServerConfig};
use weir::topic::{Endpoint, PublishOptions, SubscribeOptions, TopicConfig};
use weir::{Durability, Engine};

use crate::common::*;
use crate::http_connection::Connection;

const PUBLISHERS: usize = 8;
const QUEUES: u64 = 10;
const BODY: usize = 256;
/// The target: the HTTP fan-out at least this fraction of the library's rate.
pub const TARGET_FRACTION: f64 = 0.5;

pub fn run(ctx: &Ctx) -> Row {
    let body = String::from_utf8(text_noise(BODY, 5)).expect("text noise is ASCII");
    let mut http_rates = Vec::new();
    let mut library_rates = Vec::new();
    for round in 0..ctx.rounds {
        let order: [bool; 2] = if round % 2 == 0 { [true, false] } else { [false, true] };
        for over_http in order {
            let dir = ctx.tempdir(if over_http { "sns_http_fanout-http" } else { "sns_http_fanout-library" });
            let rate =
                if over_http { http_fanout(ctx, dir.path(), &body) } else { library_fanout(ctx, dir.path(), &body) };
            eprintln!(
                "  {:<24} round {}/{} {:<7} {}",
                "sns_http_fanout",
                round + 1,
                ctx.rounds,
                if over_http { "http" } else { "library" },
                fmt_rate(rate)
            );
            if over_http { &mut http_rates } else { &mut library_rates }.push(rate);
        }
    }
    let (http, library) = (median(&http_rates), median(&library_rates));
    let m = Measured::weir_only(http);
    let mut row = Row::new(
        "sns_http_fanout",
        "deliveries/s through Publish over HTTP",
        m,
        Target::OfOther { label: "library", value: library, frac: TARGET_FRACTION },
    );
    row.note = format!(
        "{PUBLISHERS} publishers over kept-alive HTTP/1.1 (SNS query protocol, {BODY} B messages) into a topic with {QUEUES} raw queue \
         subscriptions, Durability::Always; the same publishes through the library: {} deliveries/s ({:.2} x)",
        fmt_rate(library),
        http / library,
    );
    row
}

/// A topic `fan` with `QUEUES` raw queue subscriptions.
fn setup(dir: &Path) -> Engine {
    let engine = open_weir(dir, Durability::Always);
    engine.create_topic("fan", TopicConfig::default()).expect("weir: create topic");
    for i in 0..QUEUES {
        let name = format!("sub-{i}");
        engine.create_queue(&name, Default::default()).expect("weir: create queue");
        let raw = SubscribeOptions { raw: true, ..Default::default() };
        engine.subscribe("fan", Endpoint::Queue(name), raw).expect("weir: subscribe");
    }
    engine
}

fn library_fanout(ctx: &Ctx, dir: &Path, body: &str) -> f64 {
    let engine = setup(dir);
    let topic = engine.topic("fan").expect("weir: topic");
    timed(PUBLISHERS, ctx.window, |_| {
        let topic = topic.clone();
        move |stop: &Stop| {
            count_until_stop(stop, || {
                topic.publish(body.as_bytes(), PublishOptions::default()).expect("weir: publish").delivered as u64
            })
        }
    })
}

fn http_fanout(ctx: &Ctx, dir: &Path, body: &str) -> f64 {
    let engine = Arc::new(setup(dir));
    let config = ServerConfig { log_level: LogLevel::Warn, ..ServerConfig::new(SocketAddr::from(([127, 0, 0, 1], 0))) };
    let server = Server::bind(Arc::clone(&engine), config).expect("bind");
    let addr = server.local_addr();
    let stopper = server.stopper();
    let serving = std::thread::spawn(move || server.run());
    let form = format!(
        "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3Afan&Message={}",
        percent_encode(body)
    );
    let rate = timed(PUBLISHERS, ctx.window, |_| {
        let mut conn = Connection::open(addr);
        let form = &form;
        move |stop: &Stop| {
            count_until_stop(stop, || {
                let answer = post(&mut conn, form);
                assert!(answer.contains("<MessageId>"), "{answer}");
                QUEUES
            })
        }
    });
    stopper.stop();
    serving.join().expect("server thread").expect("server");
    rate
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One query-protocol form POSTed on a kept-alive connection; the XML answer.
fn post(conn: &mut Connection, form: &str) -> String {
    let headers = "content-type: application/x-www-form-urlencoded; charset=utf-8\r\n";
    String::from_utf8(conn.post(headers, form, "Publish")).expect("XML answer")
}
