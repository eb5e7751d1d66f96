//! The HTTP edge: `POST /serviceme` and `GET /healthz`. A request is admitted first
//! ([`admit`]: its body read within bounds, its signature or token checked, a slot taken)
//! and only then dispatched ([`dispatch`]) to the case logic; [`finish`] turns the result
//! into the one status code that makes each caller do the right thing: 200 only once the
//! work is durably done or deliberately dropped (the worker daemon deletes the message only
//! on 200), 4xx for input that will never succeed, 5xx when a retry can. Every outcome is
//! logged and counted there, once; internal errors are logged with their cause and never
//! sent to the caller. [`listener`] is the accept loop and the shutdown signal.

mod admit;
mod console;
mod dispatch;
mod error;
pub mod feed;
mod listener;
mod page_link;
mod voice;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::case::{CaseService, Outcome, Reconciled};
use crate::domain::delivery::Delivery;
use crate::inbound::gate::Gate;
use crate::ports::metrics::{Event, MetricsSink, NoMetrics};

pub use admit::{Refused, VerifiedDelivery, admit};
pub use error::ApiError;
pub use listener::{serve, shutdown_signal};

/// The largest body accepted. An SQS message is at most 256 KiB; 1 MiB leaves room for SNS
/// envelopes and generous third-party posts while bounding memory per request.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The worker daemon's periodic task (cron.yaml) that refreshes the cases held open.
pub const RECONCILE_TASK: &str = "reconcile";

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub cases: Arc<CaseService>,
    pub gate: Arc<Gate>,
    pub metrics: Arc<dyn MetricsSink>,
    /// Case work runs in tracked tasks: a caller that hangs up or times out does not cancel
    /// a case half-opened, and shutdown waits for the work to finish.
    pub tasks: TaskTracker,
    pub request_timeout: Duration,
    /// Requests handled at once. A slot is taken once the body is read and the request
    /// admitted, so slow or unauthenticated senders never hold one.
    pub slots: Arc<Semaphore>,
    /// Bytes of request bodies held in memory at once, taken chunk by chunk as bodies
    /// arrive: a trickling sender holds only what it sent, and a flood of large bodies
    /// waits (and then times out) instead of growing the process.
    pub body_budget: Arc<Semaphore>,
    /// How long a client may take to send a request's headers (counted from when the
    /// connection is ready for one, so it also closes idle keep-alive connections), and,
    /// separately, its body.
    pub read_timeout: Duration,
    /// After a shutdown signal, how long in-flight work may still take.
    pub shutdown_grace: Duration,
    /// Only `GET /healthz` (for `consume`, whose deliveries come from the queue).
    pub health_only: bool,
    /// The on-duty calendar feeds, when their key is known (`ONCALL_FEED_KEY`).
    pub feed: Option<Arc<feed::Feed>>,
    /// The voice calls' account, whose keypresses come back signed (`PAGE_VOICE=twilio`).
    pub voice: Option<Arc<crate::paging::twilio::TwilioAccount>>,
    /// The console's gate (`CONSOLE=alb`); none: no console.
    pub console: Option<Arc<crate::console::Console>>,
}

/// Default time allowed to send headers, and to send a body.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of bodies buffered at once for `max_concurrency` slots: enough for every slot's
/// request and as many again arriving, at least 16 MiB.
fn body_budget(max_concurrency: usize) -> Arc<Semaphore> {
    let bytes = (2 * max_concurrency.max(1) * MAX_BODY_BYTES).max(16 * MAX_BODY_BYTES);
    Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS)))
}

/// Default number of requests handled at once.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

impl AppState {
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsSink>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_limits(mut self, max_concurrency: usize, shutdown_grace: Duration) -> Self {
        self.slots = Arc::new(Semaphore::new(max_concurrency.max(1)));
        self.body_budget = body_budget(max_concurrency);
        self.shutdown_grace = shutdown_grace;
        self
    }

    pub fn with_feed(mut self, feed: Option<feed::Feed>) -> Self {
        self.feed = feed.map(Arc::new);
        self
    }

    pub fn with_voice(mut self, voice: Option<crate::paging::twilio::TwilioAccount>) -> Self {
        self.voice = voice.map(Arc::new);
        self
    }

    pub fn with_console(mut self, console: Option<crate::console::Console>) -> Self {
        self.console = console.map(Arc::new);
        self
    }

    pub fn with_health_only(mut self, health_only: bool) -> Self {
        self.health_only = health_only;
        self
    }

    pub fn with_read_timeout(mut self, read_timeout: Duration) -> Self {
        self.read_timeout = read_timeout;
        self
    }

    pub fn new(cases: CaseService, gate: Gate, request_timeout: Duration) -> Self {
        Self {
            cases: Arc::new(cases),
            gate: Arc::new(gate),
            metrics: Arc::new(NoMetrics),
            tasks: TaskTracker::new(),
            request_timeout,
            slots: Arc::new(Semaphore::new(DEFAULT_MAX_CONCURRENCY)),
            body_budget: body_budget(DEFAULT_MAX_CONCURRENCY),
            read_timeout: DEFAULT_READ_TIMEOUT,
            shutdown_grace: Duration::from_secs(30),
            health_only: false,
            feed: None,
            voice: None,
            console: None,
        }
    }
}

pub fn app(state: AppState) -> Router {
    let router = Router::new().route("/healthz", get(healthz));
    let router = match state.health_only {
        true => router,
        false => router
            .route("/serviceme", post(serviceme))
            .route("/oncall/feed/{person}/{file}", get(feed::feed))
            .route(
                "/pages/{id}/{person}/{until}/{token}",
                get(page_link::show).post(page_link::acknowledge),
            )
            .route("/voice/twilio/{page}/{person}", post(voice::keypress)),
    };
    let router = match state.console.is_some() && !state.health_only {
        true => console::routes(router),
        false => router,
    };
    router.with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// What a handled request answers.
enum Reply {
    Case(crate::case::Handled),
    /// A group of alerts in one body: each one's answer.
    Batch(Vec<crate::case::Handled>),
    Confirmed {
        topic: String,
        subscription_arn: String,
    },
    Unsubscribed {
        topic: String,
    },
    Task {
        name: String,
        report: Reconciled,
    },
}

/// Where a delivery came from: over HTTP from a peer, or read from the SQS queue by this
/// process itself (`consume`), which is the worker daemon's own job and trusted as such.
#[derive(Debug, Clone, Copy)]
pub enum Origin {
    Peer(SocketAddr),
    Queue,
}

/// `POST /serviceme`: the extractor admitted the request (or says why not); the handler
/// only dispatches it.
async fn serviceme(
    State(state): State<AppState>,
    admitted: Result<VerifiedDelivery, Refused>,
) -> Response {
    answer(&state, admitted).await
}

/// Handles one delivery, HTTP or queued, and answers it: the one path every message takes
/// (the same parsing, gate, case logic, logging and metrics).
pub async fn deliver(
    state: &AppState,
    origin: Origin,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    answer(state, admit(state, origin, headers, body).await).await
}

async fn answer(state: &AppState, admitted: Result<VerifiedDelivery, Refused>) -> Response {
    match admitted {
        Ok(delivery) => {
            let (started, seen) = (delivery.started, Some(delivery.received.delivery.clone()));
            let result = dispatch::dispatch(state, delivery).await;
            finish(state, started, seen, result)
        }
        Err(refused) => finish(state, refused.started, refused.seen, Err(refused.error)),
    }
}

/// Logs and counts the result, once, and turns it into the answer.
fn finish(
    state: &AppState,
    started: Instant,
    seen: Option<Delivery>,
    result: Result<Reply, ApiError>,
) -> Response {
    let latency_ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    let kind = seen.as_ref().map_or("unknown", |d| d.kind.as_str());
    let delivery_id = seen.as_ref().and_then(|d| d.id()).unwrap_or("-");
    count(state, &result);
    match result {
        Ok(reply) => answered(reply, kind, delivery_id, latency_ms),
        Err(e) => failed(e, kind, delivery_id, latency_ms),
    }
}

/// Counts the result in the metrics: each alarm of a batch as its own.
fn count(state: &AppState, result: &Result<Reply, ApiError>) {
    match result {
        Ok(Reply::Batch(all)) => {
            for h in all {
                if let Some(event) = event_of(&Ok(Reply::Case(h.clone()))) {
                    state.metrics.record(event);
                }
            }
        }
        _ => {
            if let Some(event) = event_of(result) {
                state.metrics.record(event);
            }
        }
    }
}

/// Logs a delivery that was handled and answers 200 with what was done.
fn answered(reply: Reply, kind: &str, delivery_id: &str, latency_ms: f64) -> Response {
    match reply {
        Reply::Case(handled) => {
            info!(
                kind,
                delivery_id,
                alarm = %handled.alarm,
                outcome = handled.outcome.as_str(),
                case_id = handled.case_id.as_deref().unwrap_or("-"),
                reason = handled.reason.as_deref().unwrap_or("-"),
                latency_ms,
                "delivery handled"
            );
            (StatusCode::OK, Json(handled)).into_response()
        }
        Reply::Batch(all) => {
            info!(
                kind,
                delivery_id,
                alarms = all.len(),
                created = all.iter().filter(|h| h.outcome == Outcome::Created).count(),
                latency_ms,
                "alerts handled"
            );
            let body = json!({"outcome": "batch", "alarms": all});
            (StatusCode::OK, Json(body)).into_response()
        }
        Reply::Confirmed {
            topic,
            subscription_arn,
        } => {
            info!(kind, delivery_id, topic = %topic, subscription_arn = %subscription_arn, latency_ms, "SNS subscription confirmed");
            let body = json!({"outcome": Outcome::Confirmed, "subscriptionArn": subscription_arn});
            (StatusCode::OK, Json(body)).into_response()
        }
        Reply::Task { name, report } => {
            info!(kind, delivery_id, task = %name, checked = report.checked, closed = report.closed.len(), latency_ms, "periodic task done");
            let body = json!({"outcome": "reconciled", "task": name, "checked": report.checked, "closed": report.closed});
            (StatusCode::OK, Json(body)).into_response()
        }
        Reply::Unsubscribed { topic } => {
            warn!(kind, delivery_id, topic = %topic, latency_ms, "SNS unsubscribed this endpoint");
            (
                StatusCode::OK,
                Json(json!({"outcome": Outcome::Unsubscribed})),
            )
                .into_response()
        }
    }
}

/// Logs a delivery that failed (an error, with its cause chain) or was refused (a
/// warning, with the error's code), and answers with the error's status.
fn failed(e: ApiError, kind: &str, delivery_id: &str, latency_ms: f64) -> Response {
    let status = e.status();
    if status.is_server_error() {
        error!(kind, delivery_id, status = status.as_u16(), error = %crate::errors::Chain(&e), latency_ms, "delivery failed");
    } else {
        warn!(
            kind,
            delivery_id,
            status = status.as_u16(),
            error = e.code(),
            latency_ms,
            "delivery refused"
        );
    }
    e.into_response()
}

fn event_of(result: &Result<Reply, ApiError>) -> Option<Event> {
    Some(match result {
        Ok(Reply::Case(handled)) => match handled.outcome {
            Outcome::Created => Event::CaseLogged,
            Outcome::Updated => Event::CaseUpdated,
            Outcome::Coalesced => Event::CaseCoalesced,
            Outcome::Recovered => Event::CaseRecovered,
            Outcome::Ignored => Event::Ignored,
            Outcome::Suppressed => Event::Suppressed,
            Outcome::Duplicate => Event::Duplicate,
            Outcome::Folded => Event::CaseFolded,
            Outcome::Confirmed
            | Outcome::Unsubscribed
            | Outcome::Closed
            | Outcome::Failed
            | Outcome::Replied
            | Outcome::Reopened
            | Outcome::Noted
            | Outcome::Paged => {
                return None;
            }
        },
        Ok(Reply::Task { .. }) => Event::Reconciled,
        Ok(_) => return None,
        Err(e) if e.status().is_server_error() => Event::Failed,
        Err(_) => Event::Rejected,
    })
}
