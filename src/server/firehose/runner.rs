//! Deliveries inside the server: one task per delivery stream, started by a supervisor that
//! follows the engine's list of delivery streams (woken by creates and deletes, and once a
//! second), and woken itself by puts.
//!
//! The engine decides everything (what is due, what to POST, what an answer means, retries,
//! backups, checkpoints) on the blocking pool; a task only waits and, for an HTTP endpoint,
//! makes the POST. A stop ends every task; a POST in flight is dropped unrecorded and made
//! again after the restart (at least once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::delivery_stream_arn;
use crate::firehose::http::{judge_response, Failure, CONNECTION_FAILED, REQUEST_TIMEOUT};
use crate::firehose::{DeliveryStream, Destination, HttpDelivery, HttpOutcome, Recorded, Step};
use crate::server::http_client::{self, PostError};
use crate::server::logging::{fields, LogLevel};
use crate::server::Shared;
use crate::stream::Delivery;
use crate::Error;

/// How long an endpoint has to answer, as Firehose allows (3 minutes).
pub const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(180);
/// Most bytes of an endpoint's answer read (Firehose reads up to 1 MiB).
pub const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The longest a task sleeps without looking again (its leases, a clock that moved).
const MAX_NAP: Duration = Duration::from_secs(1);
/// The pause after a delivery step failed on the engine's side (a full disk, say).
const FAILURE_PAUSE: Duration = Duration::from_secs(1);

struct Running {
    created_ms: u64,
    poke: Arc<Notify>,
    task: JoinHandle<()>,
}

/// The delivery tasks and the supervisor's wake-up.
#[derive(Default)]
pub(crate) struct Runners {
    running: Mutex<HashMap<String, Running>>,
    wake: Notify,
}

impl Runners {
    /// Asks the supervisor to look at the list of delivery streams now (after a create or a
    /// delete).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tells the delivery task of `name` that records arrived.
    pub fn poke(&self, name: &str) {
        if let Some(r) = self.running.lock().get(name) {
            r.poke.notify_one();
        }
    }
}

/// Runs until the server stops: starts a task for every delivery stream that has none (or
/// whose task ended), forgets the tasks of deleted ones.
pub(crate) async fn supervise(shared: Arc<Shared>) {
    let mut stop = shared.stop.clone();
    loop {
        if shared.stopping() {
            break;
        }
        let listed = shared
            .blocking(|e| {
                e.list_delivery_streams()
                    .into_iter()
                    .filter_map(|n| e.delivery_stream(&n).ok())
                    .collect::<Vec<Arc<DeliveryStream>>>()
            })
            .await
            .unwrap_or_default();
        {
            let mut running = shared.firehose.running.lock();
            running.retain(|name, r| {
                let live = listed.iter().any(|d| d.name() == name && d.def().created_ms == r.created_ms);
                if !live {
                    r.task.abort();
                }
                live && !r.task.is_finished()
            });
            for d in listed {
                if running.contains_key(d.name()) {
                    continue;
                }
                let poke = Arc::new(Notify::new());
                let created_ms = d.def().created_ms;
                let name = d.name().to_string();
                let task = tokio::spawn(run(Arc::clone(&shared), d, Arc::clone(&poke)));
                running.insert(name, Running { created_ms, poke, task });
            }
        }
        tokio::select! {
            _ = shared.firehose.wake.notified() => {}
            _ = tokio::time::sleep(MAX_NAP) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    for (_, r) in shared.firehose.running.lock().drain() {
        r.task.abort();
    }
}

/// Sleeps `nap` (at most [`MAX_NAP`]), or until poked or stopped. False once stopping.
async fn nap(shared: &Shared, poke: &Notify, nap: Duration) -> bool {
    let mut stop = shared.stop.clone();
    tokio::select! {
        _ = poke.notified() => {}
        _ = tokio::time::sleep(nap.min(MAX_NAP)) => {}
        _ = stop.wait_for(|s| *s) => return false,
    }
    !shared.stopping()
}

/// Until `at_ms` of the engine clock.
fn until(shared: &Shared, at_ms: u64) -> Duration {
    Duration::from_millis(at_ms.saturating_sub(shared.engine.clock().now_ms()))
}

/// True for the errors that mean the delivery stream went away (deleted, or the engine
/// closing): the task ends quietly.
fn gone(e: &Error) -> bool {
    matches!(e, Error::Closed(_) | Error::NotFound { .. })
}

async fn run(shared: Arc<Shared>, stream: Arc<DeliveryStream>, poke: Arc<Notify>) {
    let name = stream.name().to_string();
    let made = {
        let stream = Arc::clone(&stream);
        shared
            .blocking(move |_| match &stream.config().destination {
                Destination::Directory(_) => stream.directory_delivery().map(|d| (Some(d), None, None)),
                Destination::Http(_) => {
                    let http = stream.http_delivery()?;
                    let backup = stream.backup_delivery()?;
                    Ok((None, Some(http), backup))
                }
            })
            .await
    };
    let (files, http, backup) = match made {
        Ok(Ok(parts)) => parts,
        Ok(Err(e)) => {
            if !gone(&e) {
                shared.log.warn(
                    "firehose delivery cannot start",
                    fields!("delivery_stream" => name, "error" => e.to_string()),
                );
            }
            return;
        }
        Err(_) => return,
    };
    if let Some(files) = files {
        run_files(&shared, &name, files, &poke).await;
    } else if let Some(http) = http {
        run_http(&shared, &name, http, backup, &poke).await;
    }
}

/// One step of a file delivery on the blocking pool: the files written, and when the next
/// buffer falls due.
async fn step_files(shared: &Arc<Shared>, delivery: Delivery) -> Option<(Delivery, crate::Result<usize>, Option<u64>)> {
    shared
        .blocking(move |_| {
            let mut delivery = delivery;
            let written = delivery.step().map(|files| files.len());
            let due = delivery.next_due_ms();
            (delivery, written, due)
        })
        .await
        .ok()
}

async fn run_files(shared: &Arc<Shared>, name: &str, mut delivery: Delivery, poke: &Notify) {
    loop {
        let Some((back, written, due)) = step_files(shared, delivery).await else { return };
        delivery = back;
        let pause = match written {
            Ok(n) => {
                if n > 0 {
                    shared.log.log(
                        LogLevel::Debug,
                        "firehose files written",
                        fields!("delivery_stream" => name, "files" => n),
                    );
                }
                due.map_or(MAX_NAP, |t| until(shared, t))
            }
            Err(e) if gone(&e) => return,
            Err(e) => {
                shared.log.warn(
                    "firehose delivery to files failed",
                    fields!("delivery_stream" => name, "error" => e.to_string()),
                );
                FAILURE_PAUSE
            }
        };
        if !nap(shared, poke, pause).await {
            return;
        }
    }
}

async fn run_http(
    shared: &Arc<Shared>,
    name: &str,
    mut http: HttpDelivery,
    mut backup: Option<Delivery>,
    poke: &Notify,
) {
    let arn = delivery_stream_arn(shared, name);
    loop {
        if let Some(b) = backup.take() {
            let Some((back, written, _)) = step_files(shared, b).await else { return };
            backup = Some(back);
            if let Err(e) = written.as_ref().map_err(|e| (gone(e), e.to_string())) {
                if e.0 {
                    return;
                }
                shared.log.warn(
                    "firehose backup of all data failed",
                    fields!("delivery_stream" => name, "error" => e.1.clone()),
                );
            }
        }
        let Ok((back, step)) = shared
            .blocking(move |_| {
                let mut http = http;
                let step = http.next_step();
                (http, step)
            })
            .await
        else {
            return;
        };
        http = back;
        let pause = match step {
            Ok(Step::Send(request)) => {
                let mut headers = request.headers.clone();
                headers.push(("X-Amz-Firehose-Source-Arn", arn.clone()));
                headers.push(("User-Agent", format!("weir/{}", env!("CARGO_PKG_VERSION"))));
                let mut stop = shared.stop.clone();
                let answer = tokio::select! {
                    a = http_client::post(&request.url, &headers, request.body.clone(), ENDPOINT_TIMEOUT, MAX_ANSWER_BYTES) => a,
                    // Stopping: the POST is dropped unrecorded, and made again after a restart.
                    _ = stop.wait_for(|s| *s) => return,
                };
                let outcome = match answer {
                    Ok(r) => judge_response(&request.request_id, r.status, &r.body),
                    Err(PostError::Timeout) => HttpOutcome::Failed(Failure::new(
                        REQUEST_TIMEOUT,
                        format!("The endpoint did not answer within {} s.", ENDPOINT_TIMEOUT.as_secs()),
                    )),
                    Err(PostError::Connection(m) | PostError::BadUrl(m)) => {
                        HttpOutcome::Failed(Failure::new(CONNECTION_FAILED, m))
                    }
                };
                let failure = match &outcome {
                    HttpOutcome::Failed(f) => Some(f.clone()),
                    HttpOutcome::Delivered => None,
                };
                let id = request.request_id.clone();
                let Ok((back, recorded)) = shared
                    .blocking(move |_| {
                        let mut http = http;
                        let recorded = http.record(&id, outcome);
                        (http, recorded)
                    })
                    .await
                else {
                    return;
                };
                http = back;
                log_attempt(shared, name, &request.request_id, request.attempt, failure.as_ref(), &recorded);
                match recorded {
                    Ok(Recorded::Retry { at_ms, .. }) => until(shared, at_ms),
                    Ok(_) => Duration::ZERO,
                    Err(e) if gone(&e) => return,
                    Err(_) => FAILURE_PAUSE,
                }
            }
            Ok(Step::WaitUntil(t)) => until(shared, t),
            Ok(Step::Idle) => MAX_NAP,
            Err(e) if gone(&e) => return,
            Err(e) => {
                shared
                    .log
                    .warn("firehose delivery failed", fields!("delivery_stream" => name, "error" => e.to_string()));
                FAILURE_PAUSE
            }
        };
        if pause.is_zero() {
            if shared.stopping() {
                return;
            }
            continue;
        }
        if !nap(shared, poke, pause).await {
            return;
        }
    }
}

fn log_attempt(
    shared: &Shared,
    name: &str,
    request_id: &str,
    attempt: u32,
    failure: Option<&Failure>,
    recorded: &crate::Result<Recorded>,
) {
    let base = || fields!("delivery_stream" => name, "request_id" => request_id, "attempt" => attempt);
    match (failure, recorded) {
        (_, Ok(Recorded::Delivered { records, .. })) => {
            let mut f = base();
            f.insert("records".into(), (*records).into());
            shared.log.log(LogLevel::Debug, "firehose batch delivered", f);
        }
        (Some(failure), Ok(Recorded::Retry { .. })) => {
            let mut f = base();
            f.insert("error_code".into(), failure.code.clone().into());
            f.insert("error".into(), failure.message.clone().into());
            shared.log.log(LogLevel::Info, "firehose attempt failed; retrying", f);
        }
        (_, Ok(Recorded::BackedUp { file, records })) => {
            let mut f = base();
            f.insert("records".into(), (*records).into());
            f.insert("file".into(), file.display().to_string().into());
            if let Some(failure) = failure {
                f.insert("error_code".into(), failure.code.clone().into());
            }
            shared.log.warn("firehose batch out of retries: written to the backup directory", f);
        }
        (_, Err(e)) if !gone(e) => {
            let mut f = base();
            f.insert("error".into(), e.to_string().into());
            shared.log.warn("firehose delivery could not record an attempt; it will be made again", f);
        }
        _ => {}
    }
}
