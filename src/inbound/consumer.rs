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

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::inbound::http::{self, AppState, Origin};

/// SQS keeps a message hidden for 12 hours at most; retries back off to 15 minutes.
const MAX_RETRY_VISIBILITY: Duration = Duration::from_secs(15 * 60);
/// Long polling: one ReceiveMessage waits up to this long for messages. A poll under way
/// when the process is told to stop cannot be called off (SQS may already have hidden
/// messages for it), so it is waited for: 5 s rather than SQS's longest 20 keeps a stop quick,
/// for about 12 empty receives a minute (some 0.5 million a month, $0.20).
const WAIT_SECONDS: i32 = 5;

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
pub fn sqsd_headers(msg: &Message, queue: &str) -> HeaderMap {
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
    if let Some(id) = msg.message_id() {
        put("x-aws-sqsd-msgid", id);
    }
    put("x-aws-sqsd-queue", queue);
    let attrs = msg.attributes();
    let attr = |a: MessageSystemAttributeName| attrs.and_then(|m| m.get(&a)).map(String::as_str);
    if let Some(n) = attr(MessageSystemAttributeName::ApproximateReceiveCount) {
        put("x-aws-sqsd-receive-count", n);
    }
    if let Some(s) = attr(MessageSystemAttributeName::SenderId) {
        put("x-aws-sqsd-sender-id", s);
    }
    for (name, value) in msg.message_attributes().into_iter().flatten() {
        if let Some(v) = value.string_value() {
            put(&format!("x-aws-sqsd-attr-{name}"), v);
        }
    }
    h
}

fn receive_count(msg: &Message) -> u32 {
    msg.attributes()
        .and_then(|m| m.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The queue's name, for the `X-Aws-Sqsd-Queue` header and the log.
fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// Reads one queue and handles its messages until shut down.
pub struct Consumer {
    pub sqs: Client,
    pub queue_url: String,
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
    fn poll_wait(&self) -> i32 {
        let grace = i32::try_from(self.shutdown_grace.as_secs()).unwrap_or(i32::MAX);
        WAIT_SECONDS.min(grace.max(1))
    }

    pub async fn run(
        &self,
        state: AppState,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Consumed {
        let queue = queue_name(&self.queue_url).to_owned();
        info!(queue = %queue, concurrency = self.concurrency, "consuming the SQS queue");
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let tasks = TaskTracker::new();
        let report = Arc::new(Mutex::new(Consumed::default()));
        let in_flight = Arc::new(InFlight::default());
        let mut pause = Duration::from_millis(200);
        let mut stopped_at = None;
        tokio::pin!(shutdown);
        loop {
            // Receive only what can be started now: a message waiting in this process is
            // a message no other consumer can take.
            let first = tokio::select! {
                biased;
                _ = &mut shutdown => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let wanted = (permits.available_permits() + 1).min(10);
            let receive = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(i32::try_from(wanted).unwrap_or(10))
                .wait_time_seconds(self.poll_wait())
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .message_attribute_names("All")
                .send();
            tokio::pin!(receive);
            // A poll cannot be taken back: SQS may already have hidden messages for it. Once
            // the signal comes, it is waited for (it ends within the grace) and what it
            // brings is handed back at once, instead of hidden for the visibility timeout
            // with its receive count spent.
            let (received, stopping) = tokio::select! {
                biased;
                r = &mut receive => (r, false),
                _ = &mut shutdown => {
                    stopped_at = Some(tokio::time::Instant::now());
                    (receive.await, true)
                }
            };
            let messages = match received {
                Ok(out) => {
                    pause = Duration::from_millis(200);
                    out.messages.unwrap_or_default()
                }
                Err(e) if stopping => {
                    warn!(error = %crate::backend::aws::describe(&e), "the last ReceiveMessage failed while stopping");
                    break;
                }
                Err(e) => {
                    warn!(error = %crate::backend::aws::describe(&e), "ReceiveMessage failed; trying again");
                    drop(first);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(20));
                    continue;
                }
            };
            report.lock().unwrap_or_else(|p| p.into_inner()).received += messages.len();
            if stopping {
                let receipts: Vec<String> = messages
                    .iter()
                    .filter_map(|m| m.receipt_handle().map(str::to_owned))
                    .collect();
                let (back, not) = self.hand_back(&receipts).await;
                let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                r.returned += back;
                r.unreturned += not;
                break;
            }
            let mut first = Some(first);
            for msg in messages {
                let permit = match first.take() {
                    Some(p) => p,
                    None => match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let (Some(id), Some(receipt)) = (msg.message_id(), msg.receipt_handle()) else {
                    warn!(
                        "SQS answered a message without an id or receipt handle; left to the queue"
                    );
                    report.lock().unwrap_or_else(|p| p.into_inner()).received -= 1;
                    continue;
                };
                in_flight.lock().insert(id.to_owned(), receipt.to_owned());
                let (state, sqs, url, queue) = (
                    state.clone(),
                    self.sqs.clone(),
                    self.queue_url.clone(),
                    queue.clone(),
                );
                let (report, in_flight, base) =
                    (report.clone(), in_flight.clone(), self.retry_visibility);
                tasks.spawn(async move {
                    let _permit = permit;
                    let done = handle_message(&state, &sqs, &url, &queue, &msg, base).await;
                    // Handed back at shutdown meanwhile: counted there.
                    let id = msg.message_id().unwrap_or_default();
                    if in_flight.lock().remove(id).is_some() {
                        let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                        match done {
                            Disposition::Delete => r.deleted += 1,
                            Disposition::Retry(_) => r.retried += 1,
                            Disposition::Poison(_) => r.poison += 1,
                        }
                    }
                });
            }
        }
        // Shutting down: what is in progress gets what is left of the grace, and whatever
        // is still running then goes back to the queue at once, for this or another
        // consumer, with its claims let go where that is safe.
        tasks.close();
        let deadline = stopped_at.unwrap_or_else(tokio::time::Instant::now) + self.shutdown_grace;
        if tokio::time::timeout_at(deadline, tasks.wait())
            .await
            .is_err()
        {
            let stopped = state.cases.stop_claims().await;
            let receipts: Vec<String> = in_flight.lock().drain().map(|(_, r)| r).collect();
            let (back, not) = self.hand_back(&receipts).await;
            {
                let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                r.returned += back;
                r.unreturned += not;
            }
            warn!(
                returned = back,
                unreturned = not,
                claims_released = stopped.released,
                claims_lapsing = stopped.lapsing,
                grace = ?self.shutdown_grace,
                "shutdown grace elapsed with messages in progress: handed back to the queue"
            );
        }
        let r = *report.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Makes messages visible again at once (ChangeMessageVisibilityBatch, ten at a time).
    /// Answers how many were handed back, and how many SQS refused (those come back after
    /// the queue's visibility timeout).
    async fn hand_back(&self, receipts: &[String]) -> (usize, usize) {
        use aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry as Entry;
        let mut returned = 0;
        for chunk in receipts.chunks(10) {
            let entries: Vec<Entry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, receipt)| {
                    Entry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            match self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for f in out.failed() {
                        warn!(
                            code = f.code(),
                            message = f.message().unwrap_or("-"),
                            "a message could not be handed back; it returns after the queue's visibility timeout"
                        );
                    }
                    returned += out.successful().len();
                }
                Err(e) => {
                    warn!(error = %crate::backend::aws::describe(&e), messages = chunk.len(), "messages could not be handed back; they return after the queue's visibility timeout")
                }
            }
        }
        (returned, receipts.len() - returned)
    }
}

/// One message through the worker-daemon path, then deleted or hidden for a retry.
async fn handle_message(
    state: &AppState,
    sqs: &Client,
    url: &str,
    queue: &str,
    msg: &Message,
    base: Duration,
) -> Disposition {
    let headers = sqsd_headers(msg, queue);
    let body = Bytes::from(msg.body().unwrap_or_default().to_owned());
    let answer = http::deliver(state, Origin::Queue, &headers, body).await;
    let disposition = disposition(answer.status(), base, receive_count(msg));
    let receipt = msg.receipt_handle().unwrap_or_default();
    let result = match disposition {
        Disposition::Delete => sqs
            .delete_message()
            .queue_url(url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::backend::aws::describe(&e)),
        Disposition::Retry(d) | Disposition::Poison(d) => sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(receipt)
            .visibility_timeout(i32::try_from(d.as_secs()).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::backend::aws::describe(&e)),
    };
    if let Err(e) = result {
        // Deleting failed: the redelivery is recognised as a duplicate. Hiding failed: the
        // message comes back after the queue's own visibility timeout.
        warn!(message_id = msg.message_id().unwrap_or("-"), error = %e, ?disposition, "could not settle a message");
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

/// Moves messages from a dead-letter queue back through the worker-daemon path: each one
/// answered 200 is deleted from the dead-letter queue; the others stay there. With
/// `dry_run`, every message is only previewed (the case logic's plan, as `process` shows
/// it) and stays. Each message is looked at once: what was received is kept hidden until
/// the run ends, then what stays is made visible again.
pub async fn redrive(
    state: &AppState,
    sqs: &Client,
    dlq_url: &str,
    dry_run: bool,
    limit: usize,
    out: &mut dyn std::io::Write,
) -> Result<Redriven, String> {
    let queue = queue_name(dlq_url).to_owned();
    let mut report = Redriven::default();
    let mut kept: Vec<String> = Vec::new();
    let mut seen = 0usize;
    let terminal = std::io::stderr().is_terminal();
    let sdk = |e: &dyn std::fmt::Display| e.to_string();
    'receive: while limit == 0 || seen < limit {
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(600)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {}", crate::backend::aws::describe(&e)))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for msg in messages {
            let receipt = msg.receipt_handle().unwrap_or_default().to_owned();
            if limit > 0 && seen >= limit {
                kept.push(receipt);
                break 'receive;
            }
            seen += 1;
            let headers = sqsd_headers(&msg, &queue);
            let body = msg.body().unwrap_or_default().as_bytes().to_vec();
            let id = msg.message_id().unwrap_or("-").to_owned();
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
                    sqs.delete_message()
                        .queue_url(dlq_url)
                        .receipt_handle(&receipt)
                        .send()
                        .await
                        .map_err(|e| sdk(&crate::backend::aws::describe(&e)))?;
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
            writeln!(out, "{}", line.trim_end()).map_err(|e| e.to_string())?;
        }
    }
    if terminal {
        eprintln!();
    }
    for receipt in kept {
        let _ = sqs
            .change_message_visibility()
            .queue_url(dlq_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await;
    }
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
        let msg = Message::builder()
            .message_id("m-1")
            .receipt_handle("r")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .message_attributes(
                "team",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("db")
                    .build()
                    .expect("attr"),
            )
            .build();
        let h = sqsd_headers(&msg, "worker-queue");
        assert_eq!(h["x-aws-sqsd-msgid"], "m-1");
        assert_eq!(h["x-aws-sqsd-queue"], "worker-queue");
        assert_eq!(h["x-aws-sqsd-receive-count"], "3");
        assert_eq!(h["x-aws-sqsd-attr-team"], "db");
        assert_eq!(receive_count(&msg), 3);
        assert_eq!(
            queue_name("https://sqs.us-east-1.amazonaws.com/123456789012/alarms"),
            "alarms"
        );
    }
}
