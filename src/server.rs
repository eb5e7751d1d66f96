//! The HTTP edge: `POST /serviceme` and `GET /healthz`. It reads the request (1 MiB at
//! most), hands it to the delivery and case modules, and turns the result into the one
//! status code that makes each caller do the right thing: 200 only once the work is durably
//! done or deliberately dropped (the worker daemon deletes the message only on 200), 4xx for
//! input that will never succeed, 5xx when a retry can. Internal errors are logged with their
//! cause and never sent to the caller.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::alarm::PayloadError;
use crate::case::{CaseError, CaseService, Handled};
use crate::delivery::{self, Body, Delivery};
use crate::desk::DeskError;

/// The largest body accepted. An SQS message is at most 256 KiB; 1 MiB leaves room for SNS
/// envelopes and generous third-party posts while bounding memory per request.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    pub cases: Arc<CaseService>,
    /// Case work runs in tracked tasks: a caller that hangs up or times out does not cancel
    /// a case half-opened, and shutdown waits for the work to finish.
    pub tasks: TaskTracker,
    pub request_timeout: Duration,
}

impl AppState {
    pub fn new(cases: CaseService, request_timeout: Duration) -> Self {
        Self {
            cases: Arc::new(cases),
            tasks: TaskTracker::new(),
            request_timeout,
        }
    }
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/serviceme", post(serviceme))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
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
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("request took longer than {0:?}")]
    Timeout(Duration),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Payload(_) | Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => StatusCode::BAD_GATEWAY,
            Self::Case(_) | Self::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Payload(p) => p.code(),
            Self::TooLarge => "body_too_large",
            Self::Unreadable(_) => "body_unreadable",
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => "support_rejected",
            Self::Case(CaseError::Desk(_)) => "support_unavailable",
            Self::Case(_) => "storage_unavailable",
            Self::Timeout(_) => "timeout",
            Self::Internal(_) => "internal",
        }
    }

    /// What the caller may read: the problem with its input in full, but for our own
    /// failures only what to expect (details stay in the log).
    fn public_message(&self) -> String {
        match self {
            Self::Payload(_) | Self::TooLarge | Self::Unreadable(_) => self.to_string(),
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => {
                "the support desk refused the case; see the service log".into()
            }
            Self::Case(_) | Self::Timeout(_) => {
                "temporarily unable to handle the alarm; retry later".into()
            }
            Self::Internal(_) => "internal error".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code(), "message": self.public_message()}));
        (self.status(), body).into_response()
    }
}

async fn serviceme(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let mut seen: Option<Delivery> = None;
    let result = handle(&state, &headers, body, &mut seen).await;
    let latency_ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    let kind = seen.as_ref().map_or("unknown", |d| d.kind.as_str());
    let delivery_id = seen.as_ref().and_then(|d| d.id()).unwrap_or("-");
    match result {
        Ok(h) => {
            info!(
                kind,
                delivery_id,
                alarm = %h.alarm,
                outcome = h.outcome.as_str(),
                case_id = h.case_id.as_deref().unwrap_or("-"),
                latency_ms,
                "delivery handled"
            );
            (
                StatusCode::OK,
                Json(json!({"outcome": h.outcome, "caseId": h.case_id, "alarm": h.alarm})),
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
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    seen: &mut Option<Delivery>,
) -> Result<Handled, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
        _ => ApiError::Unreadable(e.body_text()),
    })?;
    let received = delivery::receive(headers, &body)?;
    *seen = Some(received.delivery.clone());
    match &received.body {
        Body::Task(name) => {
            return Err(
                PayloadError::UnsupportedEvent(format!("no periodic task named {name:?}")).into(),
            );
        }
        Body::Sns(_) | Body::Bare(_) => {}
    }
    let (delivery, alarm) = received.into_alarm()?;

    let cases = state.cases.clone();
    let job = state
        .tasks
        .spawn(async move { cases.handle(&delivery, &alarm).await });
    match tokio::time::timeout(state.request_timeout, job).await {
        Err(_) => Err(ApiError::Timeout(state.request_timeout)),
        Ok(Err(join)) => Err(ApiError::Internal(join.to_string())),
        Ok(Ok(handled)) => Ok(handled?),
    }
}

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests finish
/// and waits for the case work they started.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tasks = state.tasks.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (what Elastic Beanstalk and container runtimes send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    info!("shutdown signal received: finishing in-flight requests");
}
