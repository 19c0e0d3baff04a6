//! Session expiry (v5's Session Expiry Interval), durable across a restart of the server: a
//! session whose connection ended is deleted its interval later, unless a connection takes it
//! up again. The interval and the deadline are tags of the session's queue (catalog records,
//! so durable): `mqtt.expiry` (seconds; set when a connection opens the session) and
//! `mqtt.expires-at` (milliseconds by the engine's clock; set when the connection ends, removed
//! when one opens the session). A sweep deletes the sessions past their deadline that no
//! connection holds. A session with an interval and no deadline was open when the server
//! stopped without ending it (a crash): its interval starts at the first sweep after the
//! restart. 3.1.1's persistent sessions and v5's interval 0xFFFFFFFF never expire.

use std::sync::Arc;
use std::time::Duration;

use super::broker::{self, Broker, SessionNames};
use super::message::SESSION_PREFIX;
use crate::engine::tags::{ResourceRef, Tags};
use crate::error::Result;
use crate::server::protocols::stopped;
use crate::server::Shared;
use crate::Engine;

/// The tag holding a session's Session Expiry Interval, in seconds.
pub(crate) const INTERVAL_TAG: &str = "mqtt.expiry";
/// The tag holding when a session whose connection ended expires (ms since the Unix epoch).
pub(crate) const DEADLINE_TAG: &str = "mqtt.expires-at";
/// The interval that never expires.
pub(crate) const NEVER: u32 = u32::MAX;
/// Longest wait between sweeps (the engine's clock may be moved by other means than time).
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A connection opened the session of queue `queue` with `interval`: no deadline while it
/// lives. Writes only what changed. Blocking.
pub(crate) fn opened(engine: &Engine, queue: &str, interval: u32) -> Result<()> {
    let tags = engine.tags(ResourceRef::Queue(queue))?;
    let want = interval.to_string();
    if tags.get(INTERVAL_TAG) != Some(&want) {
        engine.tag(ResourceRef::Queue(queue), &Tags::from([(INTERVAL_TAG.to_string(), want)]))?;
    }
    if tags.contains_key(DEADLINE_TAG) {
        engine.untag(ResourceRef::Queue(queue), &[DEADLINE_TAG.to_string()])?;
    }
    Ok(())
}

/// The connection of the session of queue `queue` ended with `interval` (its last word, from
/// DISCONNECT): the session expires that long from now. Blocking.
pub(crate) fn ended(engine: &Engine, queue: &str, interval: u32) -> Result<()> {
    let mut tags = Tags::from([(INTERVAL_TAG.to_string(), interval.to_string())]);
    if interval != NEVER {
        let at = engine.clock().now_ms().saturating_add(u64::from(interval) * 1000);
        tags.insert(DEADLINE_TAG.to_string(), at.to_string());
    } else if engine.tags(ResourceRef::Queue(queue))?.get(INTERVAL_TAG) == tags.get(INTERVAL_TAG) {
        // A session that never expires (3.1.1's persistent ones): nothing to write each time.
        return Ok(());
    }
    engine.tag(ResourceRef::Queue(queue), &tags)
}

/// Whether the session of queue `queue` (which exists) is past its deadline. Blocking.
pub(crate) fn expired(engine: &Engine, queue: &str) -> Result<bool> {
    let tags = engine.tags(ResourceRef::Queue(queue))?;
    Ok(deadline(&tags).is_some_and(|at| at <= engine.clock().now_ms()))
}

fn deadline(tags: &Tags) -> Option<u64> {
    tags.get(DEADLINE_TAG).and_then(|v| v.parse().ok())
}

/// Deletes every session past its deadline that no connection holds, and gives a deadline to
/// those a crash left without one. Returns the earliest deadline still ahead. Blocking.
pub(crate) fn sweep(engine: &Engine, sessions: &Broker) -> Result<Option<u64>> {
    let mut next: Option<u64> = None;
    for queue in engine.list_queues().into_iter().filter(|q| q.starts_with(SESSION_PREFIX)) {
        let Ok(tags) = engine.tags(ResourceRef::Queue(&queue)) else { continue };
        let Some(interval) = tags.get(INTERVAL_TAG).and_then(|v| v.parse::<u32>().ok()) else { continue };
        if interval == NEVER {
            continue;
        }
        let Some(names) = SessionNames::of_queue(&queue) else { continue };
        let done = sessions.unless_live(&queue, || -> Result<Option<u64>> {
            let now = engine.clock().now_ms();
            let Some(at) = deadline(&tags) else {
                // Open when the server stopped without ending it: it ended now.
                ended(engine, &queue, interval)?;
                return Ok(Some(now.saturating_add(u64::from(interval) * 1000)));
            };
            if at <= now {
                broker::delete_session(engine, &names)?;
                return Ok(None);
            }
            Ok(Some(at))
        });
        if let Some(Some(at)) = done.transpose()? {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    }
    Ok(next)
}

/// Sweeps until the server stops: again at the earliest deadline, when a connection sets a
/// deadline, and at least every minute.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stop = shared.stop.clone();
    loop {
        let sessions = Arc::clone(&shared);
        let swept = shared.blocking(move |e| sweep(e, &sessions.mqtt)).await;
        let wait = match swept {
            Ok(Ok(Some(at))) => {
                let now = shared.engine.clock().now_ms();
                Duration::from_millis(at.saturating_sub(now)).min(MAX_WAIT)
            }
            Ok(Ok(None)) => MAX_WAIT,
            Ok(Err(e)) => {
                shared.log.warn(
                    "MQTT session expiry sweep failed",
                    crate::server::logging::fields!("error" => e.to_string()),
                );
                MAX_WAIT
            }
            Err(_) => MAX_WAIT,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.mqtt.expiry_changed.notified() => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::Options;

    const START: u64 = 1_700_000_000_000;

    fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
        let options = Options { clock: Arc::clone(clock) as _, background: false, ..Options::default() };
        Engine::open(dir, options).expect("open")
    }

    fn session(engine: &Engine, client: &str) -> SessionNames {
        let names = SessionNames::of(client);
        for name in [&names.queue, &names.qos2, &names.pubrel] {
            broker::ensure_queue(engine, name, false).unwrap();
        }
        names
    }

    fn exists(engine: &Engine, names: &SessionNames) -> bool {
        [&names.queue, &names.qos2, &names.pubrel].iter().all(|n| engine.queue(n).is_ok())
    }

    #[test]
    fn a_session_expires_its_interval_after_its_connection_ended_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let (ended_one, forever) = {
            let engine = open(dir.path(), &clock);
            let a = session(&engine, "ends");
            opened(&engine, &a.queue, 30).unwrap();
            ended(&engine, &a.queue, 30).unwrap();
            let b = session(&engine, "persistent");
            opened(&engine, &b.queue, NEVER).unwrap();
            ended(&engine, &b.queue, NEVER).unwrap();
            (a, b)
        };
        // The server restarts 20 s later: the deadline is still 10 s ahead.
        clock.advance(Duration::from_secs(20));
        let engine = open(dir.path(), &clock);
        let sessions = Broker::default();
        assert_eq!(sweep(&engine, &sessions).unwrap(), Some(START + 30_000));
        assert!(exists(&engine, &ended_one));
        assert!(!expired(&engine, &ended_one.queue).unwrap());
        clock.advance(Duration::from_secs(10));
        assert!(expired(&engine, &ended_one.queue).unwrap());
        assert_eq!(sweep(&engine, &sessions).unwrap(), None);
        assert!(!exists(&engine, &ended_one), "deleted at its deadline");
        assert!(exists(&engine, &forever), "3.1.1 persistent sessions never expire");
    }

    #[test]
    fn a_session_open_at_a_crash_expires_its_interval_after_the_restart() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let names = {
            let engine = open(dir.path(), &clock);
            let names = session(&engine, "crashed");
            opened(&engine, &names.queue, 5).unwrap();
            names // no `ended`: the server died with the connection open
        };
        clock.advance(Duration::from_secs(3600));
        let restarted = START + 3_600_000;
        let engine = open(dir.path(), &clock);
        let sessions = Broker::default();
        assert_eq!(sweep(&engine, &sessions).unwrap(), Some(restarted + 5_000));
        drop(engine);
        // The deadline is durable: a second restart does not start the interval again.
        clock.advance(Duration::from_secs(4));
        let engine = open(dir.path(), &clock);
        assert_eq!(sweep(&engine, &sessions).unwrap(), Some(restarted + 5_000));
        clock.advance(Duration::from_secs(1));
        sweep(&engine, &sessions).unwrap();
        assert!(!exists(&engine, &names));
    }

    #[test]
    fn a_session_taken_up_again_does_not_expire() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let engine = open(dir.path(), &clock);
        let names = session(&engine, "back");
        opened(&engine, &names.queue, 5).unwrap();
        ended(&engine, &names.queue, 5).unwrap();
        // A connection opens it again before the deadline: no deadline while it lives.
        opened(&engine, &names.queue, 5).unwrap();
        clock.advance(Duration::from_secs(60));
        let sessions = Broker::default();
        let _claim = claimed(&sessions, "back");
        assert_eq!(sweep(&engine, &sessions).unwrap(), None);
        assert!(exists(&engine, &names), "a live session stays");
    }

    /// Claims a client id on a small runtime (the claim is async: it may wait for a takeover).
    fn claimed(sessions: &Broker, client: &str) -> broker::Claim {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(sessions.claim(client)).expect("claimed")
    }
}
