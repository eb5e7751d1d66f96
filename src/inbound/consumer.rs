//! `consume`: the worker daemon's job done by the service itself, for containers (ECS,
//! Fargate, Kubernetes) where there is no daemon and no public endpoint is wanted.
//!
//! It long-polls the SQS queue and hands each message to exactly the path a worker-daemon
//! delivery takes ([`http::deliver`] with [`Origin::Queue`]): the same parsing, gate, case
//! logic, logging and metrics. The answer decides what happens to the message, as it does
//! for sqsd: 200 deletes it (done, or deliberately dropped); anything else leaves it in the
//! queue, hidden for a while (a retryable failure: `RETRY_VISIBILITY`, doubled per receive;
//! input that will never succeed: `RETRY_VISIBILITY` once more, so it reaches the
//! dead-letter queue after the queue's receive count, without spinning).
//!
//! `redrive` moves messages from a dead-letter queue back through the same path.

use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::inbound::http::{self, AppState, Origin};
use crate::ports::queue::{QueueError, QueueMessage, WorkQueue};

/// SQS keeps a message hidden for 12 hours at most; retries back off to 15 minutes.
const MAX_RETRY_VISIBILITY: Duration = Duration::from_secs(15 * 60);
/// Long polling: one ReceiveMessage waits up to this long for messages. A poll under way
/// when the process is told to stop cannot be called off (SQS may already have hidden
/// messages for it), so it is waited for: 5 s rather than SQS's longest 20 keeps a stop quick,
/// for about 12 empty receives a minute (some 0.5 million a month, $0.20).
const POLL_WAIT: Duration = Duration::from_secs(5);

/// What to do with a message, from the answer its delivery got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done or deliberately dropped: delete it.
    Delete,
    /// A retry can succeed: hide it for this long, then it comes back.
    Retry(Duration),
    /// It will never succeed: hide it like a retry, so that after the queue's receive
    /// count it moves to the dead-letter queue where someone sees it.
    Poison(Duration),
}

/// The retry delay for a message received `receive_count` times.
pub fn backoff(base: Duration, receive_count: u32) -> Duration {
    let doublings = receive_count.saturating_sub(1).min(16);
    base.saturating_mul(1 << doublings)
        .min(MAX_RETRY_VISIBILITY)
}

pub fn disposition(status: StatusCode, base: Duration, receive_count: u32) -> Disposition {
    if status == StatusCode::OK {
        Disposition::Delete
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Disposition::Retry(backoff(base, receive_count))
    } else {
        Disposition::Poison(base)
    }
}

/// The headers the worker daemon would have sent with this message.
pub fn sqsd_headers(msg: &QueueMessage, queue: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(name.to_ascii_lowercase()),
            HeaderValue::from_str(value),
        ) {
            h.insert(n, v);
        }
    };
    put("user-agent", "cw-support-api-consume");
    put("x-aws-sqsd-msgid", &msg.id);
    put("x-aws-sqsd-queue", queue);
    put("x-aws-sqsd-receive-count", &msg.receive_count.to_string());
    if let Some(s) = &msg.sender_id {
        put("x-aws-sqsd-sender-id", s);
    }
    for (name, value) in &msg.attributes {
        put(&format!("x-aws-sqsd-attr-{name}"), value);
    }
    h
}

/// Reads one queue and handles its messages until shut down.
pub struct Consumer {
    pub queue: Arc<dyn WorkQueue>,
    /// Messages handled at once.
    pub concurrency: usize,
    /// First retry delay (doubled per receive).
    pub retry_visibility: Duration,
    /// On shutdown, how long messages in progress may take before they are given back.
    pub shutdown_grace: Duration,
}

/// What a consumer did with the messages it received, for its final log line: every
/// received message is counted once, so `received` is the sum of the others.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    pub received: usize,
    pub deleted: usize,
    pub retried: usize,
    pub poison: usize,
    /// Given back at shutdown (visible again at once): received by a poll that was under
    /// way when the signal came, or still in progress when the grace ran out.
    pub returned: usize,
    /// To be given back at shutdown, but SQS refused: visible again after the queue's
    /// visibility timeout.
    pub unreturned: usize,
}

/// The messages in progress, by message id, with their receipt handles: handed back at
/// shutdown if their work is still running then. A message is settled by whoever takes it
/// out of here first, so it is counted once.
#[derive(Default)]
struct InFlight(Mutex<HashMap<String, String>>);

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Consumer {
    /// The long poll's wait: at most the shutdown grace, so that a poll under way when the
    /// signal comes can be waited for within it.
    fn poll_wait(&self) -> Duration {
        POLL_WAIT.min(self.shutdown_grace.max(Duration::from_secs(1)))
    }

    pub async fn run(
        &self,
        state: AppState,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Consumed {
        let queue = self.queue.name().to_owned();
        info!(queue = %queue, concurrency = self.concurrency, "consuming the SQS queue");
        let run = Run {
            consumer: self,
            state,
            queue,
            permits: Arc::new(Semaphore::new(self.concurrency.max(1))),
            tasks: TaskTracker::new(),
            report: Arc::new(Mutex::new(Consumed::default())),
            in_flight: Arc::new(InFlight::default()),
        };
        let stopped_at = run.poll(shutdown).await;
        run.finish(stopped_at).await
    }

    /// Makes messages visible again at once: how many were handed back, and how many the
    /// queue refused (those come back after its visibility timeout).
    async fn hand_back(&self, receipts: &[String]) -> (usize, usize) {
        let returned = self.queue.hand_back(receipts).await;
        (returned, receipts.len().saturating_sub(returned))
    }
}

/// The tally, also after a task that held its lock panicked (the counts stay usable).
fn lock(report: &Mutex<Consumed>) -> std::sync::MutexGuard<'_, Consumed> {
    report.lock().unwrap_or_else(|p| p.into_inner())
}

/// One run of a consumer: the permits that bound the work in progress, the tasks doing it,
/// the messages in flight and the tally, shared by the poll loop and the shutdown.
struct Run<'a> {
    consumer: &'a Consumer,
    state: AppState,
    queue: String,
    permits: Arc<Semaphore>,
    tasks: TaskTracker,
    report: Arc<Mutex<Consumed>>,
    in_flight: Arc<InFlight>,
}

impl Run<'_> {
    /// Receives and starts messages until `shutdown`; when the signal came during a poll,
    /// the instant it came (the grace counts from there).
    async fn poll(&self, shutdown: impl Future<Output = ()> + Send) -> Option<Instant> {
        // After a failed receive: 200 ms, doubling, at most 20 s; reset by a good one.
        let backoff =
            crate::retry::Backoff::new(Duration::from_millis(200), 2, Duration::from_secs(20));
        let mut failures = 0;
        tokio::pin!(shutdown);
        loop {
            // Receive only what can be started now: a message waiting in this process is
            // a message no other consumer can take.
            let first = tokio::select! {
                biased;
                _ = &mut shutdown => return None,
                p = self.permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => return None,
                },
            };
            let wanted = (self.permits.available_permits() + 1).min(10);
            let receive = self
                .consumer
                .queue
                .receive(wanted, self.consumer.poll_wait(), None);
            tokio::pin!(receive);
            // A poll cannot be taken back: SQS may already have hidden messages for it. Once
            // the signal comes, it is waited for (it ends within the grace) and what it
            // brings is handed back at once, instead of hidden for the visibility timeout
            // with its receive count spent.
            let (received, stopped_at) = tokio::select! {
                biased;
                r = &mut receive => (r, None),
                _ = &mut shutdown => {
                    let at = Instant::now();
                    (receive.await, Some(at))
                }
            };
            let messages = match received {
                Ok(messages) => {
                    failures = 0;
                    messages
                }
                Err(e) if stopped_at.is_some() => {
                    warn!(error = %e, "the last receive failed while stopping");
                    return stopped_at;
                }
                Err(e) => {
                    warn!(error = %e, "receiving failed; trying again");
                    drop(first);
                    failures += 1;
                    tokio::time::sleep(backoff.after(failures)).await;
                    continue;
                }
            };
            lock(&self.report).received += messages.len();
            if stopped_at.is_some() {
                let receipts: Vec<String> = messages.iter().map(|m| m.receipt.clone()).collect();
                let (back, not) = self.consumer.hand_back(&receipts).await;
                let mut r = lock(&self.report);
                r.returned += back;
                r.unreturned += not;
                return stopped_at;
            }
            self.start_all(first, messages).await;
        }
    }

    /// Starts each message as its own task, the first on the permit already held, the
    /// others as permits come free.
    async fn start_all(&self, first: OwnedSemaphorePermit, messages: Vec<QueueMessage>) {
        let mut first = Some(first);
        for msg in messages {
            let permit = match first.take() {
                Some(p) => p,
                None => match self.permits.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            self.start(permit, msg);
        }
    }

    fn start(&self, permit: OwnedSemaphorePermit, msg: QueueMessage) {
        self.in_flight
            .lock()
            .insert(msg.id.clone(), msg.receipt.clone());
        let (state, work_queue, queue) = (
            self.state.clone(),
            self.consumer.queue.clone(),
            self.queue.clone(),
        );
        let (report, in_flight, base) = (
            self.report.clone(),
            self.in_flight.clone(),
            self.consumer.retry_visibility,
        );
        self.tasks.spawn(async move {
            let _permit = permit;
            let done = handle_message(&state, &*work_queue, &queue, &msg, base).await;
            // Handed back at shutdown meanwhile: counted there.
            if in_flight.lock().remove(&msg.id).is_some() {
                let mut r = lock(&report);
                match done {
                    Disposition::Delete => r.deleted += 1,
                    Disposition::Retry(_) => r.retried += 1,
                    Disposition::Poison(_) => r.poison += 1,
                }
            }
        });
    }

    /// Shutting down: what is in progress gets what is left of the grace, and whatever is
    /// still running then goes back to the queue at once, for this or another consumer,
    /// with its claims let go where that is safe.
    async fn finish(self, stopped_at: Option<Instant>) -> Consumed {
        let grace = self.consumer.shutdown_grace;
        self.tasks.close();
        let deadline = stopped_at.unwrap_or_else(Instant::now) + grace;
        if tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            let stopped = self.state.cases.stop_claims().await;
            let receipts: Vec<String> = self.in_flight.lock().drain().map(|(_, r)| r).collect();
            let (back, not) = self.consumer.hand_back(&receipts).await;
            {
                let mut r = lock(&self.report);
                r.returned += back;
                r.unreturned += not;
            }
            warn!(
                returned = back,
                unreturned = not,
                claims_released = stopped.released,
                claims_lapsing = stopped.lapsing,
                grace = ?grace,
                "shutdown grace elapsed with messages in progress: handed back to the queue"
            );
        }
        let r = *lock(&self.report);
        info!(
            received = r.received,
            deleted = r.deleted,
            retried = r.retried,
            poison = r.poison,
            returned = r.returned,
            unreturned = r.unreturned,
            "stopped consuming"
        );
        r
    }
}

/// One message through the worker-daemon path, then deleted or hidden for a retry.
async fn handle_message(
    state: &AppState,
    work_queue: &dyn WorkQueue,
    queue: &str,
    msg: &QueueMessage,
    base: Duration,
) -> Disposition {
    let headers = sqsd_headers(msg, queue);
    let body = Bytes::from(msg.body.clone());
    let answer = http::deliver(state, Origin::Queue, &headers, body).await;
    let disposition = disposition(answer.status(), base, msg.receive_count);
    let result = match disposition {
        Disposition::Delete => work_queue.delete(&msg.receipt).await,
        Disposition::Retry(d) | Disposition::Poison(d) => work_queue.hide(&msg.receipt, d).await,
    };
    if let Err(e) = result {
        // Deleting failed: the redelivery is recognised as a duplicate. Hiding failed: the
        // message comes back after the queue's own visibility timeout.
        warn!(message_id = %msg.id, error = %e, ?disposition, "could not settle a message");
    }
    disposition
}

/// What `redrive` did with the dead-letter queue's messages.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Redriven {
    /// Handled now (a case opened, updated, ...).
    pub handled: usize,
    /// Handled before: nothing new happened.
    pub duplicate: usize,
    /// Still failing: left in the dead-letter queue.
    pub failing: usize,
}

/// Why a redrive stopped: the dead-letter queue failed, or its report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("writing the report: {0}")]
    Write(#[from] std::io::Error),
}

/// Moves messages from a dead-letter queue back through the worker-daemon path: each one
/// answered 200 is deleted from the dead-letter queue; the others stay there. With
/// `dry_run`, every message is only previewed (the case logic's plan, as `process` shows
/// it) and stays. Each message is looked at once: what was received is kept hidden until
/// the run ends, then what stays is made visible again.
pub async fn redrive(
    state: &AppState,
    dlq: &dyn WorkQueue,
    dry_run: bool,
    limit: usize,
    out: &mut dyn std::io::Write,
) -> Result<Redriven, RedriveError> {
    let queue = dlq.name().to_owned();
    let mut report = Redriven::default();
    let mut kept: Vec<String> = Vec::new();
    let mut seen = 0usize;
    let terminal = std::io::stderr().is_terminal();
    'receive: while limit == 0 || seen < limit {
        let messages = dlq
            .receive(10, Duration::from_secs(1), Some(Duration::from_secs(600)))
            .await?;
        if messages.is_empty() {
            break;
        }
        for msg in messages {
            let receipt = msg.receipt.clone();
            if limit > 0 && seen >= limit {
                kept.push(receipt);
                break 'receive;
            }
            seen += 1;
            let headers = sqsd_headers(&msg, &queue);
            let body = msg.body.as_bytes().to_vec();
            let id = msg.id.clone();
            let line = if dry_run {
                kept.push(receipt);
                let preview = preview(&state.cases, &headers, &body).await;
                format!("{id}: would be {preview}")
            } else {
                let answer = http::deliver(state, Origin::Queue, &headers, Bytes::from(body)).await;
                let status = answer.status();
                let bytes = axum::body::to_bytes(answer.into_body(), 64 * 1024)
                    .await
                    .unwrap_or_default();
                let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
                if status == StatusCode::OK {
                    dlq.delete(&receipt).await?;
                    match v["outcome"].as_str() {
                        Some("duplicate") => report.duplicate += 1,
                        _ => report.handled += 1,
                    }
                    format!(
                        "{id}: {} {}",
                        v["outcome"].as_str().unwrap_or("handled"),
                        v["caseId"].as_str().unwrap_or("")
                    )
                } else {
                    report.failing += 1;
                    kept.push(receipt);
                    format!(
                        "{id}: still failing ({} {})",
                        status.as_u16(),
                        v["error"].as_str().unwrap_or("")
                    )
                }
            };
            if terminal {
                eprint!(
                    "\r[{seen}] handled {} duplicate {} failing {}",
                    report.handled, report.duplicate, report.failing
                );
            }
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    if terminal {
        eprintln!();
    }
    dlq.hand_back(&kept).await;
    Ok(report)
}

/// One line on what the case logic would do with a body: `outcome (case id)` for each
/// alarm in it, or why the body is refused. Changes nothing.
async fn preview(cases: &crate::case::CaseService, headers: &HeaderMap, body: &[u8]) -> String {
    let parsed = crate::inbound::delivery::receive(headers, body).and_then(|r| r.into_message());
    let (delivery, message) = match parsed {
        Ok(p) => p,
        Err(e) => return format!("refused: {} ({e})", e.code()),
    };
    let one = |v: &serde_json::Value| {
        format!(
            "{} for alarm {:?}{}",
            v["outcome"].as_str().unwrap_or("?"),
            v["alarm"].as_str().unwrap_or("?"),
            v["caseId"]
                .as_str()
                .map(|c| format!(" (case {c})"))
                .unwrap_or_default()
        )
    };
    match cases.preview(&delivery, &message).await {
        Ok(v) => match v["alarms"].as_array() {
            Some(all) => all.iter().map(one).collect::<Vec<_>>().join("; "),
            None => one(&v),
        },
        Err(e) => format!("unknown now: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decide_what_happens_to_a_message() {
        let base = Duration::from_secs(30);
        assert_eq!(disposition(StatusCode::OK, base, 1), Disposition::Delete);
        assert_eq!(
            disposition(StatusCode::SERVICE_UNAVAILABLE, base, 1),
            Disposition::Retry(Duration::from_secs(30))
        );
        assert_eq!(
            disposition(StatusCode::BAD_GATEWAY, base, 3),
            Disposition::Retry(Duration::from_secs(120))
        );
        assert_eq!(
            disposition(StatusCode::INTERNAL_SERVER_ERROR, base, 40),
            Disposition::Retry(MAX_RETRY_VISIBILITY)
        );
        assert_eq!(
            disposition(StatusCode::BAD_REQUEST, base, 5),
            Disposition::Poison(base)
        );
        assert_eq!(
            disposition(StatusCode::FORBIDDEN, base, 1),
            Disposition::Poison(base)
        );
    }

    #[test]
    fn a_message_gets_the_worker_daemons_headers() {
        let msg = QueueMessage {
            id: "m-1".into(),
            receipt: "r".into(),
            body: "{}".into(),
            receive_count: 3,
            sender_id: Some("AIDAEXAMPLE".into()),
            attributes: vec![("team".into(), "db".into())],
        };
        let h = sqsd_headers(&msg, "worker-queue");
        assert_eq!(h["x-aws-sqsd-msgid"], "m-1");
        assert_eq!(h["x-aws-sqsd-queue"], "worker-queue");
        assert_eq!(h["x-aws-sqsd-receive-count"], "3");
        assert_eq!(h["x-aws-sqsd-sender-id"], "AIDAEXAMPLE");
        assert_eq!(h["x-aws-sqsd-attr-team"], "db");
    }
}
