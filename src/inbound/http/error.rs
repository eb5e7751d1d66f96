//! Why a request was not handled, and so which status it gets: each caller's retry rules
//! decide it (SNS and the worker daemon retry a 5xx, never a 4xx), and what the caller may
//! read is its input's problem in full but, for the service's own failures, only what to
//! expect.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::case::CaseError;
use crate::domain::alarm::PayloadError;
use crate::inbound::gate::GateError;
use crate::inbound::sns::SnsError;
use crate::ports::desk::DeskError;

use super::MAX_BODY_BYTES;

/// Why a request was not handled, and so which status it gets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("request body larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("request body could not be read")]
    Unreadable(#[source] axum::Error),
    #[error("request body not received within {0:?}")]
    BodyTimeout(Duration),
    #[error(transparent)]
    Gate(#[from] GateError),
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error("request took longer than {0:?}")]
    Timeout(Duration),
    #[error("internal error")]
    Internal(#[from] tokio::task::JoinError),
    #[error("too many requests in progress")]
    Busy,
    /// The accept loop records every connection's peer; a request without one is a bug.
    #[error("the connection's peer address is unknown")]
    NoPeer,
}

impl ApiError {
    pub(super) fn status(&self) -> StatusCode {
        match self {
            Self::Payload(_) | Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::Gate(GateError::Unauthorized | GateError::TokensRequired) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Gate(GateError::Sns(e)) => sns_status(e),
            Self::Gate(GateError::UnprovenSupportEvent | GateError::UnprovenSmsReply) => {
                StatusCode::FORBIDDEN
            }
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => StatusCode::BAD_GATEWAY,
            Self::Case(CaseError::AccountNotServed(_)) => StatusCode::FORBIDDEN,
            // A body that did not arrive in time may be a slow link: SNS and the worker
            // daemon retry a 503, and never a 408.
            Self::Case(_) | Self::Timeout(_) | Self::Busy | Self::BodyTimeout(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(_) | Self::NoPeer => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::Payload(p) => p.code(),
            Self::TooLarge => "body_too_large",
            Self::Unreadable(_) => "body_unreadable",
            Self::BodyTimeout(_) => "body_timeout",
            Self::Gate(GateError::Unauthorized | GateError::TokensRequired) => "unauthorized",
            Self::Gate(GateError::Sns(e)) => e.reason_code(),
            Self::Gate(GateError::UnprovenSupportEvent) => "unproven_support_event",
            Self::Gate(GateError::UnprovenSmsReply) => "unproven_sms_reply",
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => "support_rejected",
            Self::Case(CaseError::Desk(DeskError::SubscriptionRequired(_))) => {
                "support_plan_required"
            }
            Self::Case(CaseError::Desk(_)) => "support_unavailable",
            // Decided on what changed under it (handle decides again; only a periodic
            // task's run is retried as a whole).
            Self::Case(CaseError::Busy | CaseError::Changed(_) | CaseError::Handled(_)) => "busy",
            Self::Case(CaseError::Stopping) => "shutting_down",
            Self::Case(CaseError::AccountNotServed(_)) => "account_not_served",
            Self::Case(_) => "storage_unavailable",
            Self::Timeout(_) => "timeout",
            Self::Busy => "busy",
            Self::Internal(_) | Self::NoPeer => "internal",
        }
    }

    /// What the caller may read: the problem with its input in full, but for our own
    /// failures only what to expect (details stay in the log).
    fn public_message(&self) -> String {
        match self {
            Self::Payload(_) | Self::TooLarge | Self::BodyTimeout(_) => self.to_string(),
            Self::Unreadable(_) => "the request body could not be read".into(),
            Self::Gate(
                GateError::Unauthorized
                | GateError::TokensRequired
                | GateError::UnprovenSupportEvent
                | GateError::UnprovenSmsReply,
            ) => self.to_string(),
            Self::Gate(GateError::Sns(e @ SnsError::MalformedMessage { .. })) => e.to_string(),
            Self::Gate(GateError::Sns(e)) => e.public_message().into(),
            Self::Case(CaseError::Desk(DeskError::Rejected(_))) => {
                "the support desk refused the case; see the service log".into()
            }
            // The caller's own alarm's account: nothing internal.
            Self::Case(e @ CaseError::AccountNotServed(_)) => e.to_string(),
            Self::Case(CaseError::Desk(DeskError::SubscriptionRequired(_))) => {
                "the AWS account's support plan does not include the AWS Support API; \
                 the alarm is kept for retry"
                    .into()
            }
            Self::Case(_) | Self::Timeout(_) | Self::Busy => {
                "temporarily unable to handle the alarm; retry later".into()
            }
            Self::Internal(_) | Self::NoPeer => "internal error".into(),
        }
    }
}

/// SNS retries 5xx and 429 only: refusals that no retry can fix are 4xx, the rest 5xx.
fn sns_status(e: &SnsError) -> StatusCode {
    match e {
        SnsError::MalformedMessage { .. } => StatusCode::BAD_REQUEST,
        e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        SnsError::ConfirmationFailed { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::FORBIDDEN,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code(), "message": self.public_message()}));
        let mut resp = (self.status(), body).into_response();
        if matches!(
            self,
            Self::Gate(GateError::Unauthorized | GateError::TokensRequired)
        ) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
