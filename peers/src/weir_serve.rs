//! weir's server in this process, for the open-protocol rows: `weir serve --amqp ADDR --mqtt
//! ADDR` as a [`weir::server::Server`] over a fresh engine, on loopback, on free ports. The
//! peers' own clients (lapin, rumqttc) then talk to it exactly as they talk to RabbitMQ and
//! Mosquitto.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use weir::server::{LogLevel, Protocol, Server, ServerConfig, Stopper};
use weir::Durability;

use crate::weir_side;

/// A running server; stopped (and its engine closed) when dropped.
pub struct WeirServer {
    amqp: Option<u16>,
    mqtt: Option<u16>,
    stopper: Stopper,
    thread: Option<JoinHandle<weir::Result<()>>>,
}

impl WeirServer {
    /// Opens an engine on `dir` at `durability` and serves it with the listeners asked for.
    pub fn start(dir: &Path, durability: Durability, amqp: bool, mqtt: bool) -> Result<WeirServer, String> {
        let engine = Arc::new(weir_side::open_weir(dir, durability));
        let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let mut config = ServerConfig::new(loopback);
        config.log_level = LogLevel::Warn;
        config.amqp = amqp.then_some(loopback);
        config.mqtt = mqtt.then_some(loopback);
        let server = Server::bind(engine, config).map_err(|e| format!("weir serve: {e}"))?;
        let port = |p| server.protocol_addr(p).map(|a| a.port());
        let (amqp, mqtt) = (port(Protocol::Amqp), port(Protocol::Mqtt));
        let stopper = server.stopper();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let server = server.on_ready(move |_| {
            let _ = ready_tx.send(());
        });
        let thread = std::thread::Builder::new()
            .name("weir-serve".into())
            .spawn(move || server.run())
            .map_err(|e| format!("weir serve: cannot start its thread: {e}"))?;
        let mut me = WeirServer { amqp, mqtt, stopper, thread: Some(thread) };
        if ready_rx.recv_timeout(std::time::Duration::from_secs(30)).is_err() {
            return Err(format!("weir serve did not start: {}", me.finish()));
        }
        Ok(me)
    }

    pub fn amqp_port(&self) -> Result<u16, String> {
        self.amqp.ok_or_else(|| "weir serve: no AMQP listener".to_string())
    }

    pub fn mqtt_port(&self) -> Result<u16, String> {
        self.mqtt.ok_or_else(|| "weir serve: no MQTT listener".to_string())
    }

    /// Stops the server and waits for it; what it ended with.
    fn finish(&mut self) -> String {
        self.stopper.stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(Ok(()))) | None => "stopped".into(),
            Some(Ok(Err(e))) => format!("it failed: {e}"),
            Some(Err(_)) => "its thread panicked".into(),
        }
    }
}

impl Drop for WeirServer {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
