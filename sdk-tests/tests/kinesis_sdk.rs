//! `weir serve` against the AWS SDK for Rust (`aws-sdk-kinesis`, pinned), over cleartext
//! HTTP/2 as the SDKs' async clients speak it: streams, records, errors as the SDK types them,
//! and enhanced fan-out: consumers registered, then SubscribeToShard read as the SDK reads
//! event streams, through a reshard to the children. Run by `cargo test` at the root (a default
//! member of the workspace), or alone with `cargo test -p weir-sdk-tests`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_kinesis::config::{BehaviorVersion, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ConsumerStatus, ShardIteratorType, StartingPosition, StreamMode, StreamModeDetails, SubscribeToShardEventStream,
};
use aws_sdk_kinesis::Client;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::rt::{TokioExecutor, TokioIo};
use weir::server::{LogLevel, Server, ServerConfig, Stopper};
use weir::{Engine, Options};

/// A connector that speaks HTTP/2 with prior knowledge (h2c) to the test server: one new
/// connection per request, which is all a test needs.
#[derive(Debug, Clone)]
struct H2c {
    addr: SocketAddr,
}

impl HttpConnector for H2c {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let addr = self.addr;
        HttpConnectorFuture::new(async move {
            let request = request.try_into_http1x().map_err(|e| ConnectorError::other(e.into(), None))?;
            let stream = tokio::net::TcpStream::connect(addr).await.map_err(|e| ConnectorError::io(e.into()))?;
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .map_err(|e| ConnectorError::io(e.into()))?;
            tokio::spawn(connection);
            let response = sender.send_request(request).await.map_err(|e| ConnectorError::io(e.into()))?;
            assert_eq!(response.version(), http::Version::HTTP_2, "the exchange is HTTP/2");
            let response = response.map(SdkBody::from_body_1_x);
            aws_smithy_runtime_api::http::Response::try_from(response)
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

impl HttpClient for H2c {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

struct Served {
    addr: SocketAddr,
    stopper: Stopper,
    thread: Option<std::thread::JoinHandle<weir::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start() -> Served {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(dir.path(), Options::default()).unwrap());
        let config = ServerConfig { log_level: LogLevel::Warn, ..ServerConfig::new(([127, 0, 0, 1], 0).into()) };
        let server = Server::bind(engine, config).unwrap();
        let addr = server.local_addr();
        let stopper = server.stopper();
        let thread = Some(std::thread::spawn(move || server.run()));
        Served { addr, stopper, thread, _dir: dir }
    }

    fn client(&self) -> Client {
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", self.addr))
            .credentials_provider(Credentials::new("test", "test", None, None, "weir-sdk-tests"))
            .http_client(H2c { addr: self.addr })
            .build();
        Client::from_conf(config)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const DEADLINE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_records_and_errors_through_the_rust_sdk() {
    let served = Served::start();
    let k = served.client();
    k.create_stream().stream_name("Demo").shard_count(2).send().await.unwrap();
    let summary = k.describe_stream_summary().stream_name("Demo").send().await.unwrap();
    let summary = summary.stream_description_summary().unwrap();
    assert_eq!(summary.open_shard_count(), 2);
    assert_eq!(summary.stream_arn(), "arn:aws:kinesis:us-east-1:000000000000:stream/Demo");
    let put =
        k.put_record().stream_name("Demo").partition_key("user1").data(Blob::new("user signup")).send().await.unwrap();
    let it = k
        .get_shard_iterator()
        .stream_name("Demo")
        .shard_id(put.shard_id())
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(put.sequence_number())
        .send()
        .await
        .unwrap();
    let records = k.get_records().shard_iterator(it.shard_iterator().unwrap()).send().await.unwrap();
    assert_eq!(records.records()[0].data().as_ref(), b"user signup");
    assert_eq!(records.records()[0].partition_key(), "user1");
    assert!(records.next_shard_iterator().is_some());

    let missing = k.describe_stream().stream_name("Nope").send().await.unwrap_err();
    assert!(missing.into_service_error().is_resource_not_found_exception());
    let taken = k.create_stream().stream_name("Demo").shard_count(1).send().await.unwrap_err();
    assert!(taken.into_service_error().is_resource_in_use_exception());
    let bad = k.get_records().shard_iterator("00").send().await.unwrap_err();
    assert!(bad.into_service_error().is_invalid_argument_exception());

    k.create_stream()
        .stream_name("OnDemand")
        .stream_mode_details(StreamModeDetails::builder().stream_mode(StreamMode::OnDemand).build().unwrap())
        .send()
        .await
        .unwrap();
    let d = k.describe_stream_summary().stream_name("OnDemand").send().await.unwrap();
    let mode = d.stream_description_summary().unwrap().stream_mode_details().unwrap().stream_mode();
    assert_eq!(mode, &StreamMode::OnDemand);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_to_shard_pushes_records_and_ends_with_the_children() {
    let served = Served::start();
    let k = served.client();
    k.create_stream().stream_name("Fan").shard_count(1).send().await.unwrap();
    for i in 0..3 {
        k.put_record()
            .stream_name("Fan")
            .partition_key(format!("k{i}"))
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .unwrap();
    }
    let arn = k.describe_stream_summary().stream_name("Fan").send().await.unwrap();
    let arn = arn.stream_description_summary().unwrap().stream_arn().to_string();
    let consumer = k.register_stream_consumer().stream_arn(&arn).consumer_name("app").send().await.unwrap();
    let consumer_arn = consumer.consumer().unwrap().consumer_arn().to_string();
    let listed = k.list_stream_consumers().stream_arn(&arn).send().await.unwrap();
    assert_eq!(listed.consumers().len(), 1);
    let started = Instant::now();
    loop {
        let d = k.describe_stream_consumer().consumer_arn(&consumer_arn).send().await.unwrap();
        if d.consumer_description().unwrap().consumer_status() == &ConsumerStatus::Active {
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the consumer never became ACTIVE");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let position = StartingPosition::builder().r#type(ShardIteratorType::TrimHorizon).build().unwrap();
    let mut out = k
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id("shardId-000000000000")
        .starting_position(position)
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut continuation = String::new();
    let mut put_late = false;
    let mut split = false;
    let mut children = Vec::new();
    while children.is_empty() {
        assert!(started.elapsed() < DEADLINE, "the subscription stalled: {seen:?}");
        let event = tokio::time::timeout(DEADLINE, out.event_stream.recv()).await.expect("an event in time").unwrap();
        let Some(SubscribeToShardEventStream::SubscribeToShardEvent(event)) = event else {
            assert!(event.is_some(), "the stream ended before the shard's end");
            continue;
        };
        for r in event.records() {
            seen.push(String::from_utf8(r.data().as_ref().to_vec()).unwrap());
        }
        continuation = event.continuation_sequence_number().to_string();
        if seen.len() == 3 && !put_late {
            // Pushed, not polled: a record put now arrives on the open subscription.
            k.put_record().stream_name("Fan").partition_key("late").data(Blob::new("r3")).send().await.unwrap();
            put_late = true;
        } else if seen.len() == 4 && put_late && !split {
            split = true;
            k.split_shard()
                .stream_name("Fan")
                .shard_to_split("shardId-000000000000")
                .new_starting_hash_key("170141183460469231731687303715884105728")
                .send()
                .await
                .unwrap();
        }
        children = event.child_shards().iter().map(|c| c.shard_id().to_string()).collect();
    }
    assert_eq!(seen, ["r0", "r1", "r2", "r3"]);
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    assert!(!continuation.is_empty());
    // A second subscription to the same shard within five seconds is refused.
    let again = k
        .subscribe_to_shard()
        .consumer_arn(&consumer_arn)
        .shard_id("shardId-000000000000")
        .starting_position(StartingPosition::builder().r#type(ShardIteratorType::Latest).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(again.into_service_error().is_resource_in_use_exception());
    k.deregister_stream_consumer().consumer_arn(&consumer_arn).send().await.unwrap();
    let gone = k.describe_stream_consumer().consumer_arn(&consumer_arn).send().await.unwrap_err();
    assert!(gone.into_service_error().is_resource_not_found_exception());
}
