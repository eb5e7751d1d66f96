//! The HTTP edge: `POST /serviceme` and `GET /healthz`. It reads the request (1 MiB at
//! most), hands it to the delivery and case modules, and turns the result into the one
//! status code that makes each caller do the right thing: 200 only once the work is durably
//! done or deliberately dropped (the worker daemon deletes the message only on 200), 4xx for
//! input that will never succeed, 5xx when a retry can. Internal errors are logged with their
//! cause and never sent to the caller.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::alarm::PayloadError;
use crate::case::{CaseError, CaseService, Outcome, Reconciled};
use crate::delivery::{self, Body, Delivery};
use crate::desk::DeskError;
use crate::gate::{Gate, GateError};
use crate::metrics::{Event, MetricsSink, NoMetrics};
use crate::sns::{MessageKind, SnsError};

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
        }
    }
}

pub fn app(state: AppState) -> Router {
    let router = Router::new().route("/healthz", get(healthz));
    let router = match state.health_only {
        true => router,
        false => router.route("/serviceme", post(serviceme)),
    };
    router.with_state(state)
}

/// Waits for a free slot; a request that cannot get one within the request timeout is
/// answered 503 (the sender retries).
async fn take_slot(state: &AppState) -> Result<OwnedSemaphorePermit, ApiError> {
    match tokio::time::timeout(state.request_timeout, state.slots.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            warn!("no free request slot within the request timeout");
            Err(ApiError::Busy)
        }
    }
}

/// Reads the body within the read timeout and the body budget, 1 MiB at most. The
/// permits returned keep the body's bytes counted until the request is done.
async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: HttpBody,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::TooLarge);
    }
    let read = async {
        let mut body = body;
        let mut buf = Vec::new();
        let mut held: Option<OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| ApiError::Unreadable(e.to_string()))?;
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            if buf.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::TooLarge);
            }
            // The chunk is bounded by the check above, so it fits a u32.
            let n = u32::try_from(chunk.len()).map_err(|_| ApiError::TooLarge)?;
            let permit = state
                .body_budget
                .clone()
                .acquire_many_owned(n)
                .await
                .map_err(|_| ApiError::Busy)?;
            match &mut held {
                Some(h) => h.merge(permit),
                None => held = Some(permit),
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((Bytes::from(buf), held))
    };
    tokio::time::timeout(state.read_timeout, read)
        .await
        .map_err(|_| ApiError::BodyTimeout(state.read_timeout))?
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Why a request was not handled, and so which status it gets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("request body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("request body could not be read: {0}")]
    Unreadable(String),
    #[error("request body not received within {0:?}")]
    BodyTimeout(Duration),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("request took longer than {0:?}")]
    Timeout(Duration),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("too many requests in progress")]
    Busy,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Payload(_) | Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::Gate(GateError::Unauthorized) => StatusCode::UNAUTHORIZED,
            Self::Gate(GateError::Sns(e)) => sns_status(e),
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => StatusCode::BAD_GATEWAY,
            // A body that did not arrive in time may be a slow link: SNS and the worker
            // daemon retry a 503, and never a 408.
            Self::Case(_) | Self::Timeout(_) | Self::Busy | Self::BodyTimeout(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Payload(p) => p.code(),
            Self::TooLarge => "body_too_large",
            Self::Unreadable(_) => "body_unreadable",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Gate(GateError::Unauthorized) => "unauthorized",
            Self::Gate(GateError::Sns(e)) => e.reason_code(),
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => "support_rejected",
            Self::Case(CaseError::Desk(DeskError::SubscriptionRequired(_))) => {
                "support_plan_required"
            }
            Self::Case(CaseError::Desk(_)) => "support_unavailable",
            Self::Case(CaseError::Busy) => "busy",
            Self::Case(_) => "storage_unavailable",
            Self::Timeout(_) => "timeout",
            Self::Busy => "busy",
            Self::Internal(_) => "internal",
        }
    }

    /// What the caller may read: the problem with its input in full, but for our own
    /// failures only what to expect (details stay in the log).
    fn public_message(&self) -> String {
        match self {
            Self::Payload(_) | Self::TooLarge | Self::BodyTimeout(_) => self.to_string(),
            Self::Unreadable(_) => "the request body could not be read".into(),
            Self::Gate(GateError::Unauthorized) => self.to_string(),
            Self::Gate(GateError::Sns(e @ SnsError::MalformedMessage { .. })) => e.to_string(),
            Self::Gate(GateError::Sns(e)) => e.public_message().into(),
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => {
                "the support desk refused the case; see the service log".into()
            }
            Self::Case(CaseError::Desk(DeskError::SubscriptionRequired(_))) => {
                "the AWS account's support plan does not include the AWS Support API; \
                 the alarm is kept for retry"
                    .into()
            }
            Self::Case(_) | Self::Timeout(_) | Self::Busy => {
                "temporarily unable to handle the alarm; retry later".into()
            }
            Self::Internal(_) => "internal error".into(),
        }
    }
}

/// SNS retries 5xx and 429 only: refusals that no retry can fix are 4xx, the rest 5xx.
fn sns_status(e: &SnsError) -> StatusCode {
    match e {
        SnsError::MalformedMessage { .. } => StatusCode::BAD_REQUEST,
        SnsError::CertificateUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        SnsError::ConfirmationFailed {
            retryable: true, ..
        } => StatusCode::SERVICE_UNAVAILABLE,
        SnsError::ConfirmationFailed { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::FORBIDDEN,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code(), "message": self.public_message()}));
        let mut resp = (self.status(), body).into_response();
        if matches!(self, Self::Gate(GateError::Unauthorized)) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// What a handled request answers.
enum Reply {
    Case {
        outcome: Outcome,
        case_id: Option<String>,
        alarm: String,
    },
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

async fn serviceme(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: HttpBody,
) -> Response {
    let started = Instant::now();
    let result = read_body(&state, &headers, body).await;
    match result {
        Ok((bytes, _held)) => deliver(&state, Origin::Peer(peer), &headers, bytes).await,
        Err(e) => finish(&state, started, None, Err(e)),
    }
}

/// Handles one delivery, HTTP or queued, and answers it: the one path every message takes
/// (the same parsing, gate, case logic, logging and metrics).
pub async fn deliver(
    state: &AppState,
    origin: Origin,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let mut seen: Option<Delivery> = None;
    let result = handle(state, origin, headers, body, &mut seen).await;
    finish(state, started, seen, result)
}

fn finish(
    state: &AppState,
    started: Instant,
    seen: Option<Delivery>,
    result: Result<Reply, ApiError>,
) -> Response {
    let latency_ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    let kind = seen.as_ref().map_or("unknown", |d| d.kind.as_str());
    let delivery_id = seen.as_ref().and_then(|d| d.id()).unwrap_or("-");
    if let Some(event) = event_of(&result) {
        state.metrics.record(event);
    }
    match result {
        Ok(Reply::Case {
            outcome,
            case_id,
            alarm,
        }) => {
            info!(
                kind,
                delivery_id,
                alarm = %alarm,
                outcome = outcome.as_str(),
                case_id = case_id.as_deref().unwrap_or("-"),
                latency_ms,
                "delivery handled"
            );
            let body = json!({"outcome": outcome, "caseId": case_id, "alarm": alarm});
            (StatusCode::OK, Json(body)).into_response()
        }
        Ok(Reply::Confirmed {
            topic,
            subscription_arn,
        }) => {
            info!(kind, delivery_id, topic = %topic, subscription_arn = %subscription_arn, latency_ms, "SNS subscription confirmed");
            let body = json!({"outcome": Outcome::Confirmed, "subscriptionArn": subscription_arn});
            (StatusCode::OK, Json(body)).into_response()
        }
        Ok(Reply::Task { name, report }) => {
            info!(kind, delivery_id, task = %name, checked = report.checked, closed = report.closed.len(), latency_ms, "periodic task done");
            let body = json!({"outcome": "reconciled", "task": name, "checked": report.checked, "closed": report.closed});
            (StatusCode::OK, Json(body)).into_response()
        }
        Ok(Reply::Unsubscribed { topic }) => {
            warn!(kind, delivery_id, topic = %topic, latency_ms, "SNS unsubscribed this endpoint");
            (
                StatusCode::OK,
                Json(json!({"outcome": Outcome::Unsubscribed})),
            )
                .into_response()
        }
        Err(e) => {
            let status = e.status();
            if status.is_server_error() {
                error!(kind, delivery_id, status = status.as_u16(), error = %e, latency_ms, "delivery failed");
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
    }
}

async fn handle(
    state: &AppState,
    origin: Origin,
    headers: &HeaderMap,
    body: Bytes,
    seen: &mut Option<Delivery>,
) -> Result<Reply, ApiError> {
    let gate = &state.gate;
    let admit = |headers: &HeaderMap| match origin {
        Origin::Peer(peer) => gate.admit_unsigned(headers, peer.ip()),
        Origin::Queue => Ok(()),
    };
    // Verify at the edge: a signed SNS message must verify; anything else must be an
    // admitted unsigned post, checked BEFORE its parse errors are reported (and before its
    // body is parsed into values), so an unauthenticated caller learns nothing about what
    // the service accepts and costs only a probe of the body.
    let believe_sqsd = match origin {
        Origin::Peer(peer) => gate.believes_sqsd(headers, peer.ip()),
        Origin::Queue => true,
    };
    let received = delivery::receive_from(headers, &body, believe_sqsd);
    let verified = matches!(&received, Ok(r) if gate.wants_signature(r));
    match &received {
        Ok(r) if verified => {
            *seen = Some(r.delivery.clone());
            if let Body::Sns(msg) = &r.body {
                gate.verify_sns(msg, r.delivery.kind).await?;
            }
        }
        Ok(r) => {
            admit(headers)?;
            // An envelope taken unverified (VERIFY_SQS_ENVELOPES=false) must still come
            // from an allowed topic.
            if let Body::Sns(msg) = &r.body {
                *seen = Some(r.delivery.clone());
                gate.check_topic(msg)?;
            }
        }
        Err(_) => admit(headers)?,
    }
    let received = received?;
    *seen = Some(received.delivery.clone());
    let _slot = take_slot(state).await?;

    match &received.body {
        Body::Task(name) if name == RECONCILE_TASK => {
            let cases = state.cases.clone();
            let delivery = received.delivery.clone();
            let job = state
                .tasks
                .spawn(async move { cases.reconcile(&delivery).await });
            let report = match tokio::time::timeout(state.request_timeout, job).await {
                Err(_) => return Err(ApiError::Timeout(state.request_timeout)),
                Ok(Err(join)) => return Err(ApiError::Internal(join.to_string())),
                Ok(Ok(r)) => r?,
            };
            return Ok(Reply::Task {
                name: name.clone(),
                report,
            });
        }
        Body::Task(name) => {
            return Err(PayloadError::UnsupportedEvent(format!(
                "no periodic task named {name:?} (the one task is {RECONCILE_TASK:?})"
            ))
            .into());
        }
        Body::Sns(msg) if msg.kind == MessageKind::SubscriptionConfirmation => {
            // Only a verified confirmation is ever visited: an unverified one could name
            // any topic's subscription.
            if !verified {
                return Err(GateError::Sns(SnsError::UnverifiedConfirmation).into());
            }
            let subscription_arn = gate.confirm(msg).await?;
            let topic = msg.topic_arn.as_str().to_owned();
            state
                .cases
                .record_subscription(
                    &received.delivery,
                    &topic,
                    msg.kind.as_str(),
                    &msg.timestamp,
                    Outcome::Confirmed,
                    Some(subscription_arn.clone()),
                )
                .await?;
            return Ok(Reply::Confirmed {
                topic,
                subscription_arn,
            });
        }
        // Its SubscribeURL would subscribe the endpoint again: never visited.
        Body::Sns(msg) if msg.kind == MessageKind::UnsubscribeConfirmation => {
            let topic = msg.topic_arn.as_str().to_owned();
            state
                .cases
                .record_subscription(
                    &received.delivery,
                    &topic,
                    msg.kind.as_str(),
                    &msg.timestamp,
                    Outcome::Unsubscribed,
                    None,
                )
                .await?;
            return Ok(Reply::Unsubscribed { topic });
        }
        Body::Sns(_) | Body::Bare(_) => {}
    }
    let (delivery, message) = received.into_message()?;

    let cases = state.cases.clone();
    let job = state.tasks.spawn(async move {
        match message {
            delivery::Message::Alarm(alarm) => cases.handle(&delivery, &alarm).await,
            delivery::Message::CaseUpdate(update) => cases.case_update(&delivery, &update).await,
        }
    });
    match tokio::time::timeout(state.request_timeout, job).await {
        Err(_) => Err(ApiError::Timeout(state.request_timeout)),
        Ok(Err(join)) => Err(ApiError::Internal(join.to_string())),
        Ok(Ok(handled)) => {
            let h = handled?;
            Ok(Reply::Case {
                outcome: h.outcome,
                case_id: h.case_id,
                alarm: h.alarm,
            })
        }
    }
}

fn event_of(result: &Result<Reply, ApiError>) -> Option<Event> {
    Some(match result {
        Ok(Reply::Case { outcome, .. }) => match outcome {
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
            | Outcome::Noted => {
                return None;
            }
        },
        Ok(Reply::Task { .. }) => Event::Reconciled,
        Ok(_) => return None,
        Err(e) if e.status().is_server_error() => Event::Failed,
        Err(_) => Event::Rejected,
    })
}

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// and waits for the case work they started.
///
/// The accept loop is our own rather than `axum::serve` because that one sets no timer,
/// so nothing would bound how long a client may take to send its headers or keep an idle
/// connection: a few trickling sockets would be held forever.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let tasks = state.tasks.clone();
    let grace = state.shutdown_grace;
    let read_timeout = state.read_timeout;
    let router = app(state);
    let connections = TaskTracker::new();
    let (closing, closed) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut closed = closed.clone();
        connections.spawn(async move {
            // The peer address decides, with the forwarding headers, whether a
            // worker-daemon delivery needs a token.
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req.map(HttpBody::new))
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(read_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closed.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    connections.close();
    // Drain within a bound: once the signal came, in-flight requests and the case work
    // they started get `grace` in all; what is still running then is dropped unanswered,
    // and its sender delivers it again.
    let drained = tokio::time::timeout(grace, async {
        connections.wait().await;
        tasks.close();
        tasks.wait().await;
    })
    .await;
    if drained.is_err() {
        warn!(
            ?grace,
            "shutdown grace elapsed with work still in flight; it will be redelivered"
        );
    }
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what Elastic Beanstalk and container runtimes send).
/// The handlers are installed when this is called, not when it is first awaited, so a
/// SIGTERM that arrives while the server is still starting is a clean shutdown too.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {},
                _ = int => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        info!("shutdown signal received: finishing in-flight requests");
    }
}

#[cfg(test)]
mod tests {
    //! SNS authenticity and unsigned-post authentication at the HTTP edge, with keys and
    //! certificates generated at test time (and the real AWS vectors when present).
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::case::CasePolicy;
    use crate::gate::{ApiTokens, CidrList};
    use crate::ledger::CaseLedger;
    use crate::sns::test_support::{
        FakeFetcher, PanicFetcher, TOPIC, confirmation, keys, notification,
    };
    use crate::sns::{
        CertFetcher, SnsMessage, SubscriptionConfirmer, TopicAllowList, Verifier, VerifierConfig,
    };
    use async_trait::async_trait;
    use axum::body::Body as HttpBody;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::Request;
    use serde_json::Value;
    use std::sync::Mutex;
    use tower::ServiceExt;

    const SUBSCRIPTION_ARN: &str =
        "arn:aws:sns:us-east-1:123456789012:alarms:1f3c5d6e-aaaa-bbbb-cccc-000000000001";

    /// Records every URL it is asked to visit.
    #[derive(Default)]
    struct RecordingConfirmer {
        urls: Mutex<Vec<String>>,
        fail: bool,
    }

    #[async_trait]
    impl SubscriptionConfirmer for RecordingConfirmer {
        async fn confirm(&self, url: &url::Url) -> Result<String, SnsError> {
            self.urls.lock().expect("lock").push(url.to_string());
            match self.fail {
                true => Err(SnsError::ConfirmationFailed {
                    reason: "HTTP 503".into(),
                    retryable: true,
                }),
                false => Ok(SUBSCRIPTION_ARN.into()),
            }
        }
    }

    struct Harness {
        _dir: tempfile::TempDir,
        backend: LocalBackend,
        router: Router,
        fetcher: Arc<FakeFetcher>,
        confirmer: Arc<RecordingConfirmer>,
    }

    struct Setup {
        topics: &'static str,
        tokens: &'static str,
        verify_sqs_envelopes: bool,
        confirm_fails: bool,
        peer: &'static str,
        own_account: Option<&'static str>,
    }

    impl Default for Setup {
        fn default() -> Self {
            Self {
                own_account: None,
                topics: TOPIC,
                tokens: "",
                verify_sqs_envelopes: true,
                confirm_fails: false,
                peer: "127.0.0.1:40000",
            }
        }
    }

    fn harness(setup: Setup) -> Harness {
        let fetcher = FakeFetcher::serving(&keys().good_pem);
        harness_with(setup, fetcher.clone(), VerifierConfig::default(), fetcher)
    }

    fn harness_with(
        setup: Setup,
        fetcher: Arc<dyn CertFetcher>,
        verifier_config: VerifierConfig,
        counting: Arc<FakeFetcher>,
    ) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let backend = LocalBackend::open(dir.path()).expect("backend");
        let cases = CaseService::new(
            backend.config.clone(),
            backend.ledger.clone(),
            backend.desk.clone(),
            CasePolicy::default(),
        );
        let confirmer = Arc::new(RecordingConfirmer {
            fail: setup.confirm_fails,
            ..Default::default()
        });
        let gate = Gate {
            verifier: Verifier::new(verifier_config, fetcher),
            topics: TopicAllowList::parse(setup.topics).expect("topics"),
            own_account: setup.own_account.map(str::to_owned),
            confirmer: confirmer.clone(),
            tokens: setup.tokens.parse::<ApiTokens>().expect("tokens"),
            trust_sqsd_from: "127.0.0.0/8".parse::<CidrList>().expect("cidrs"),
            verify_sqs_envelopes: setup.verify_sqs_envelopes,
            max_message_age: Duration::from_secs(2 * 3600),
        };
        let peer: SocketAddr = setup.peer.parse().expect("peer");
        let router =
            app(AppState::new(cases, gate, Duration::from_secs(10))).layer(MockConnectInfo(peer));
        Harness {
            _dir: dir,
            backend,
            router,
            fetcher: counting,
            confirmer,
        }
    }

    fn to_body(m: &SnsMessage) -> String {
        let mut v = json!({
            "Type": m.kind.as_str(),
            "MessageId": m.message_id,
            "TopicArn": m.topic_arn.as_str(),
            "Message": m.message,
            "Timestamp": m.timestamp,
            "SignatureVersion": m.signature_version,
            "Signature": m.signature,
            "SigningCertURL": m.signing_cert_url,
        });
        for (k, f) in [
            ("Subject", &m.subject),
            ("SubscribeURL", &m.subscribe_url),
            ("Token", &m.token),
            ("UnsubscribeURL", &m.unsubscribe_url),
        ] {
            if let Some(x) = f {
                v[k] = json!(x);
            }
        }
        v.to_string()
    }

    fn alarm_notification(version: &str) -> SnsMessage {
        let mut m = notification(
            version,
            Some("ALARM: \"prod-api-5xx-rate\" in US East (N. Virginia)"),
        );
        m.message = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/payloads/metric-alarm.json"
        ))
        .expect("fixture");
        keys().sign(&mut m);
        m
    }

    async fn post(
        h: &Harness,
        body: String,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, HeaderMap) {
        let mut req =
            Request::post("/serviceme").header("content-type", "text/plain; charset=UTF-8");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = h
            .router
            .clone()
            .oneshot(req.body(HttpBody::from(body)).expect("request"))
            .await
            .expect("response");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        )
    }

    fn sns_headers(kind: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("x-amz-sns-message-type", kind),
            ("x-amz-sns-topic-arn", TOPIC),
            ("user-agent", "Amazon Simple Notification Service Agent"),
        ]
    }

    async fn decisions(h: &Harness) -> usize {
        h.backend
            .ledger
            .decisions(&Default::default())
            .await
            .expect("ledger")
            .len()
    }

    #[tokio::test]
    async fn signed_v1_and_v2_notifications_open_one_case_and_replays_are_duplicates() {
        let h = harness(Setup::default());
        let (status, body, _) = post(
            &h,
            to_body(&alarm_notification("1")),
            &sns_headers("Notification"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "created");
        // Same MessageId, SHA-256 signature this time: a replay.
        let (status, body, _) = post(
            &h,
            to_body(&alarm_notification("2")),
            &sns_headers("Notification"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "duplicate");
        assert_eq!(h.fetcher.calls(), 1, "the key is cached");
    }

    #[tokio::test]
    async fn a_verified_notification_that_holds_no_alarm_is_a_precise_400() {
        let h = harness(Setup::default());
        let mut m = alarm_notification("1");
        m.message = "Disk full on db-1".into();
        keys().sign(&mut m);
        let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("sns_message_not_json"))
        );
        m.message = r#"{"hello": "world"}"#.into();
        keys().sign(&mut m);
        let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("unknown_shape"))
        );
    }

    #[tokio::test]
    async fn tampered_fields_are_refused_with_403_and_nothing_recorded() {
        let h = harness(Setup::default());
        type Tamper = fn(&mut SnsMessage);
        let tamper: [(&str, Tamper); 5] = [
            ("Message", |m| m.message = m.message.replace("ALARM", "OK")),
            ("MessageId", |m| m.message_id.push('0')),
            ("Subject", |m| m.subject = Some("OK: all good".into())),
            ("Timestamp", |m| {
                m.timestamp = crate::sns::test_support::recent_timestamp().replace(".", ".9")
            }),
            ("Signature", |m| {
                // Change the first character, whatever it is (the key is random).
                let first = if m.signature.starts_with('A') {
                    "B"
                } else {
                    "A"
                };
                m.signature = format!("{first}{}", &m.signature[1..]);
            }),
        ];
        for (field, f) in tamper {
            let mut m = alarm_notification("1");
            f(&mut m);
            let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{field}: {body}");
            assert_eq!(body["error"], "bad_signature", "{field}");
        }
        assert_eq!(decisions(&h).await, 0);
    }

    #[tokio::test]
    async fn bad_versions_urls_and_topics_are_refused_without_any_fetch() {
        let h = harness(Setup::default());
        let mut m = alarm_notification("1");
        m.signature_version = "3".into();
        let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("unsupported_signature_version"))
        );

        for url in [
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
            "https://evil.example.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
            "https://sns.s3-us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
            "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/redirect?to=http://169.254.169.254/",
        ] {
            let mut m = alarm_notification("1");
            m.signing_cert_url = url.into();
            let (status, body, _) = post(&h, to_body(&m), &sns_headers("Notification")).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{url}: {body}");
            assert_eq!(body["error"], "untrusted_certificate_url", "{url}");
        }
        assert_eq!(h.fetcher.calls(), 0, "no request for a bad URL");

        let h = harness(Setup {
            topics: "arn:aws:sns:us-east-1:999999999999:other",
            ..Default::default()
        });
        let (status, body, _) = post(
            &h,
            to_body(&alarm_notification("1")),
            &sns_headers("Notification"),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
        );
        let c = confirmation(MessageKind::SubscriptionConfirmation, "1");
        let (status, _, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(h.fetcher.calls(), 0);
        assert!(
            h.confirmer.urls.lock().expect("lock").is_empty(),
            "a foreign topic is never confirmed"
        );
    }

    #[tokio::test]
    async fn subscription_confirmation_visits_the_subscribe_url_once() {
        let h = harness(Setup::default());
        let c = confirmation(MessageKind::SubscriptionConfirmation, "1");
        let (status, body, _) =
            post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "confirmed");
        assert_eq!(body["subscriptionArn"], SUBSCRIPTION_ARN);
        let urls = h.confirmer.urls.lock().expect("lock").clone();
        assert_eq!(urls, vec![c.subscribe_url.clone().expect("url")]);
        let recorded = h
            .backend
            .ledger
            .decisions(&Default::default())
            .await
            .expect("ledger");
        assert_eq!(recorded[0].outcome, Outcome::Confirmed);
        assert_eq!(recorded[0].alarm_key, TOPIC);
    }

    #[tokio::test]
    async fn a_subscribe_url_off_the_sns_host_is_refused() {
        let h = harness(Setup::default());
        let mut c = confirmation(MessageKind::SubscriptionConfirmation, "1");
        c.subscribe_url = Some("https://attacker.example.com/?Action=ConfirmSubscription".into());
        keys().sign(&mut c);
        let (status, body, _) =
            post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("untrusted_subscribe_url"))
        );
        assert!(h.confirmer.urls.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn a_failed_confirmation_answers_5xx_so_sns_retries() {
        let h = harness(Setup {
            confirm_fails: true,
            ..Default::default()
        });
        let c = confirmation(MessageKind::SubscriptionConfirmation, "2");
        let (status, body, _) =
            post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(decisions(&h).await, 0);
    }

    #[tokio::test]
    async fn unsubscribe_confirmation_is_recorded_and_visits_nothing() {
        let h = harness(Setup::default());
        let c = confirmation(MessageKind::UnsubscribeConfirmation, "2");
        let (status, body, _) =
            post(&h, to_body(&c), &sns_headers("UnsubscribeConfirmation")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "unsubscribed");
        assert!(h.confirmer.urls.lock().expect("lock").is_empty());
        let recorded = h
            .backend
            .ledger
            .decisions(&Default::default())
            .await
            .expect("ledger");
        assert_eq!(recorded[0].outcome, Outcome::Unsubscribed);
    }

    #[tokio::test]
    async fn signed_envelopes_inside_sqs_bodies_are_verified_unless_switched_off() {
        let sqsd = [
            ("x-aws-sqsd-msgid", "0b1d2c3e-sqs"),
            ("x-aws-sqsd-receive-count", "1"),
        ];
        let h = harness(Setup::default());
        let (status, body, _) = post(&h, to_body(&alarm_notification("1")), &sqsd).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (StatusCode::OK, Some("created"))
        );

        let mut forged = alarm_notification("1");
        forged.message_id = "forged-0001".into();
        let (status, body, _) = post(&h, to_body(&forged), &[("x-aws-sqsd-msgid", "other")]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("bad_signature"))
        );

        let h = harness(Setup {
            verify_sqs_envelopes: false,
            ..Default::default()
        });
        let (status, body, _) = post(&h, to_body(&forged), &[("x-aws-sqsd-msgid", "other")]).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (StatusCode::OK, Some("created")),
            "{body}"
        );
        assert_eq!(h.fetcher.calls(), 0);
    }

    const TOKEN: &str = "test-token-0123456789abcdef";

    #[tokio::test]
    async fn unsigned_posts_need_a_token_when_tokens_are_set() {
        let alarm = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/payloads/minimal.json"
        ))
        .expect("fixture");
        let h = harness(Setup {
            tokens: TOKEN,
            peer: "10.1.2.3:5555",
            ..Default::default()
        });
        let (status, body, headers) = post(&h, alarm.clone(), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "unauthorized");
        assert_eq!(
            headers.get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        let wrong = format!("Bearer {TOKEN}x");
        let (status, _, _) = post(&h, alarm.clone(), &[("authorization", &wrong)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Bad input from an unauthenticated caller is 401, not a description of the problem.
        let (status, _, _) = post(&h, "not json".into(), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A worker-daemon delivery from an untrusted peer is no different.
        let (status, _, _) = post(&h, alarm.clone(), &[("x-aws-sqsd-msgid", "m1")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Raw SNS delivery is unsigned too.
        let (status, _, _) = post(&h, alarm.clone(), &[("x-amz-sns-rawdelivery", "true")]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(decisions(&h).await, 0);

        let right = format!("Bearer {TOKEN}");
        let (status, body, _) = post(&h, alarm.clone(), &[("authorization", &right)]).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (StatusCode::OK, Some("created"))
        );
        // A verified SNS message needs no token, wherever it comes from.
        let (status, body, _) = post(
            &h,
            to_body(&alarm_notification("2")),
            &sns_headers("Notification"),
        )
        .await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (StatusCode::OK, Some("created")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_worker_daemon_on_a_trusted_peer_needs_no_token() {
        let alarm = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/payloads/minimal.json"
        ))
        .expect("fixture");
        let h = harness(Setup {
            tokens: TOKEN,
            peer: "127.0.0.1:5555",
            ..Default::default()
        });
        let (status, _, _) = post(&h, alarm.clone(), &[("x-aws-sqsd-msgid", "m1")]).await;
        assert_eq!(status, StatusCode::OK);
        // Loopback alone is not enough without the worker daemon's headers.
        let (status, _, _) = post(&h, alarm, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    fn minimal_alarm(name: &str) -> String {
        json!({"AlarmName": name, "AlarmDescription": "d", "StateChangeTime": "2026-11-20T03:12:45Z"})
            .to_string()
    }

    #[tokio::test]
    async fn worker_daemon_headers_forwarded_from_outside_are_not_believed() {
        // The peer is the local proxy; what it says it forwarded decides.
        let h = harness(Setup {
            tokens: TOKEN,
            peer: "127.0.0.1:5555",
            ..Default::default()
        });
        for (i, forwarded) in [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "127.0.0.1, 203.0.113.9"),
            ("x-forwarded-for", "unknown"),
            ("x-real-ip", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9;proto=http"),
            ("forwarded", "for=\"[2001:db8::1]:443\""),
        ]
        .into_iter()
        .enumerate()
        {
            let body = minimal_alarm(&format!("spoofed-{i}"));
            let (status, b, _) = post(&h, body, &[("x-aws-sqsd-msgid", "m1"), forwarded]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{forwarded:?}: {b}");
        }
        // A spoofed periodic task is refused the same way.
        let (status, _, _) = post(
            &h,
            String::new(),
            &[
                ("x-aws-sqsd-taskname", "reconcile"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(decisions(&h).await, 0);
        // The daemon itself, through the same proxy: every hop is local.
        for (i, forwarded) in [
            ("x-forwarded-for", "127.0.0.1"),
            ("x-real-ip", "127.0.0.1"),
            ("forwarded", "for=127.0.0.1"),
        ]
        .into_iter()
        .enumerate()
        {
            let body = minimal_alarm(&format!("local-{i}"));
            let (status, b, _) = post(&h, body, &[("x-aws-sqsd-msgid", "m2"), forwarded]).await;
            assert_eq!(status, StatusCode::OK, "{forwarded:?}: {b}");
        }
    }

    #[tokio::test]
    async fn without_tokens_outside_worker_daemon_headers_are_only_ignored() {
        let h = harness(Setup {
            peer: "127.0.0.1:5555",
            ..Default::default()
        });
        // Not a periodic task: an empty post.
        let (status, body, _) = post(
            &h,
            String::new(),
            &[
                ("x-aws-sqsd-taskname", "reconcile"),
                ("x-forwarded-for", "198.51.100.7"),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("empty_body"))
        );
        // And its message id is not taken as the SQS message's.
        let (status, _, _) = post(
            &h,
            minimal_alarm("outside"),
            &[
                ("x-aws-sqsd-msgid", "m9"),
                ("x-forwarded-for", "198.51.100.7"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let recorded = h
            .backend
            .ledger
            .decisions(&Default::default())
            .await
            .expect("ledger");
        assert_eq!(recorded[0].delivery_kind, "direct");
    }

    #[tokio::test]
    async fn an_unauthenticated_post_is_refused_before_it_is_parsed() {
        let h = harness(Setup {
            tokens: TOKEN,
            peer: "10.0.0.9:5555",
            ..Default::default()
        });
        let huge = format!(
            r#"{{"AlarmName": "x", "junk": [{}0]}}"#,
            "0,".repeat(100_000)
        );
        let (status, _, _) = post(&h, huge.clone(), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let right = format!("Bearer {TOKEN}");
        let (status, body, _) = post(&h, huge, &[("authorization", &right)]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("too_complex"))
        );
    }

    #[tokio::test]
    async fn replayed_direct_deliveries_are_stale_and_queued_envelopes_are_not() {
        let h = harness(Setup::default());
        let mut old = alarm_notification("1");
        old.timestamp = (chrono::Utc::now() - chrono::Duration::hours(3))
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        keys().sign(&mut old);
        let (status, body, _) = post(&h, to_body(&old), &sns_headers("Notification")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("stale_message"))
        );
        assert_eq!(h.fetcher.calls(), 0, "a replay costs no certificate fetch");
        assert_eq!(decisions(&h).await, 0);
        // The same envelope read from a queue waited there legitimately.
        let (status, body, _) = post(&h, to_body(&old), &[("x-aws-sqsd-msgid", "q-1")]).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (StatusCode::OK, Some("created")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_subscribe_url_with_another_token_is_never_visited() {
        let h = harness(Setup::default());
        let mut c = confirmation(MessageKind::SubscriptionConfirmation, "1");
        c.subscribe_url = Some(format!(
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=someone-elses"
        ));
        keys().sign(&mut c);
        let (status, body, _) =
            post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("untrusted_subscribe_url"))
        );
        assert!(h.confirmer.urls.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn unverified_envelopes_still_need_an_allowed_topic_and_never_confirm() {
        let h = harness(Setup {
            verify_sqs_envelopes: false,
            topics: "arn:aws:sns:us-east-1:999999999999:other",
            ..Default::default()
        });
        let sqsd = [("x-aws-sqsd-msgid", "q-2")];
        let (status, body, _) = post(&h, to_body(&alarm_notification("1")), &sqsd).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
        );
        let h = harness(Setup {
            verify_sqs_envelopes: false,
            ..Default::default()
        });
        let c = confirmation(MessageKind::SubscriptionConfirmation, "1");
        let (status, body, _) = post(&h, to_body(&c), &sqsd).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("unverified_confirmation"))
        );
        assert!(h.confirmer.urls.lock().expect("lock").is_empty());
        assert_eq!(h.fetcher.calls(), 0);
        assert_eq!(decisions(&h).await, 0);
    }

    #[tokio::test]
    async fn with_no_list_only_the_own_accounts_topics_are_served() {
        let foreign = "arn:aws:sns:us-east-1:999999999999:alarms";
        let from = |topic: &str| {
            let mut m = alarm_notification("1");
            m.topic_arn = topic.parse().expect("arn");
            m.message_id = format!("id-{topic}");
            keys().sign(&mut m);
            m
        };
        let h = harness(Setup {
            topics: "",
            own_account: Some("123456789012"),
            ..Default::default()
        });
        let (status, body, _) =
            post(&h, to_body(&from(foreign)), &sns_headers("Notification")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
        );
        let mut c = confirmation(MessageKind::SubscriptionConfirmation, "1");
        c.topic_arn = foreign.parse().expect("arn");
        c.subscribe_url = Some(format!(
            "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn={foreign}&Token={}",
            crate::sns::test_support::CONFIRMATION_TOKEN
        ));
        keys().sign(&mut c);
        let (status, _, _) = post(&h, to_body(&c), &sns_headers("SubscriptionConfirmation")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            h.confirmer.urls.lock().expect("lock").is_empty(),
            "never confirmed"
        );
        assert_eq!(h.fetcher.calls(), 0);
        let (status, body, _) = post(&h, to_body(&from(TOPIC)), &sns_headers("Notification")).await;
        assert_eq!(
            (status, body["outcome"].as_str()),
            (StatusCode::OK, Some("created"))
        );

        // Own account unknown: nothing is served.
        let h = harness(Setup {
            topics: "",
            ..Default::default()
        });
        let (status, body, _) = post(&h, to_body(&from(TOPIC)), &sns_headers("Notification")).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("topic_not_allowed"))
        );
    }

    /// Fails every fetch with a detailed reason, as a real outage would.
    struct DetailedOutage;

    #[async_trait]
    impl CertFetcher for DetailedOutage {
        async fn fetch(&self, _url: &url::Url) -> Result<Vec<u8>, SnsError> {
            Err(SnsError::CertificateUnavailable(
                "cannot read pinned certificate /etc/secret-dir/x.pem: error sending request: tcp connect error".into(),
            ))
        }
    }

    #[tokio::test]
    async fn five_hundreds_carry_no_internal_detail() {
        let counting = FakeFetcher::serving(&keys().good_pem);
        let h = harness_with(
            Setup::default(),
            Arc::new(DetailedOutage),
            VerifierConfig::default(),
            counting,
        );
        let (status, body, _) = post(
            &h,
            to_body(&alarm_notification("1")),
            &sns_headers("Notification"),
        )
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        let text = body.to_string();
        assert!(!text.contains("/etc") && !text.contains("tcp"), "{text}");
        assert_eq!(body["error"], "certificate_unavailable");
    }

    /// The real AWS-signed messages verify end to end through pinned certificates
    /// (SNS_CERT_DIR), with the clock at each message's own time since the certificates
    /// have expired. Skipped when ../shared is absent.
    #[tokio::test]
    async fn real_aws_vectors_pass_the_edge_through_pinned_certificates() {
        let dir = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/sns-aws-signed"
        ));
        let Ok(entries) = std::fs::read_dir(dir.join("messages")) else {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        };
        let mut checked = 0;
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).expect("read");
            let value: Value = serde_json::from_str(&text).expect("json");
            let msg = SnsMessage::parse(&value).expect("parses");
            let at = msg.timestamp_utc().expect("timestamp");
            let config = VerifierConfig {
                cert_dir: Some(dir.join("certs")),
                clock: Arc::new(move || at),
                ..VerifierConfig::default()
            };
            let never = Arc::new(FakeFetcher::default());
            let h = harness_with(
                Setup {
                    topics: "*",
                    ..Default::default()
                },
                Arc::new(PanicFetcher),
                config,
                never,
            );
            let (status, body, _) = post(&h, text, &[]).await;
            let name = entry.file_name();
            assert_ne!(status, StatusCode::FORBIDDEN, "{name:?}: {body}");
            match msg.kind {
                // Their messages are not alarms: verification passed, parsing says why not.
                MessageKind::Notification => {
                    assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?}: {body}")
                }
                MessageKind::SubscriptionConfirmation => {
                    assert_eq!(body["outcome"], "confirmed", "{name:?}");
                    assert_eq!(h.confirmer.urls.lock().expect("lock").len(), 1);
                }
                MessageKind::UnsubscribeConfirmation => {
                    assert_eq!(body["outcome"], "unsubscribed", "{name:?}")
                }
            }
            checked += 1;
        }
        assert!(checked >= 17, "checked {checked}");
    }
}
