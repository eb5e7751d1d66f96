//! Admission: what a request must prove before anything it says is acted on, as an axum
//! extractor ([`VerifiedDelivery`], in the style of rust-lang/bors's webhook extractor), so
//! the handler only ever sees an admitted delivery. In order: the body is read within the
//! read timeout, 1 MiB and the shared byte budget; a signed SNS message must verify (topic,
//! age, signature), and anything else must be an admitted unsigned post, checked BEFORE
//! its parse errors are reported (and before its body is parsed into values), so an
//! unauthenticated caller learns nothing about what the service accepts and costs only a
//! probe of the body; then a request slot is taken.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::{Body as HttpBody, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tokio::sync::OwnedSemaphorePermit;
use tracing::warn;

use crate::domain::delivery::{Delivery, DeliveryKind};
use crate::inbound::delivery::{self, Body, Received};

use super::{ApiError, AppState, MAX_BODY_BYTES, Origin};

/// A delivery the edge admitted, holding its share of the service's capacity (its request
/// slot and its body's bytes) until it is answered.
pub struct VerifiedDelivery {
    pub received: Received,
    /// Its SNS signature was verified (only then is a SubscribeURL ever visited).
    pub verified: bool,
    /// It came the way only AWS can send: a verified SNS message from an allowed topic, or
    /// the worker queue (read by this process, or posted by the worker daemon from inside
    /// the instance, never merely with a token). Only then is an AWS Support event believed.
    pub from_aws: bool,
    /// When admission started (the body read is not counted).
    pub started: Instant,
    _slot: OwnedSemaphorePermit,
    _body: Option<OwnedSemaphorePermit>,
}

/// A request refused at the edge, with the delivery it claimed to be when that is known.
pub struct Refused {
    pub error: ApiError,
    pub seen: Option<Delivery>,
    pub started: Instant,
}

impl Refused {
    fn new(error: impl Into<ApiError>, seen: Option<Delivery>, started: Instant) -> Self {
        Self {
            error: error.into(),
            seen,
            started,
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.error.into_response()
    }
}

impl FromRequest<AppState> for VerifiedDelivery {
    type Rejection = Refused;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Refused> {
        let started = Instant::now();
        let (mut parts, body) = req.into_parts();
        // The peer address decides, with the forwarding headers, whether a worker-daemon
        // delivery needs a token (the accept loop records it on every request).
        let ConnectInfo(peer) = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, state)
            .await
            .map_err(|_| Refused::new(ApiError::NoPeer, None, started))?;
        let (bytes, held) = read_body(state, &parts.headers, body)
            .await
            .map_err(|e| Refused::new(e, None, started))?;
        let mut admitted = admit(state, Origin::Peer(peer), &parts.headers, bytes).await?;
        admitted._body = held;
        Ok(admitted)
    }
}

/// Admits one delivery, read over HTTP or from the queue.
pub async fn admit(
    state: &AppState,
    origin: Origin,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<VerifiedDelivery, Refused> {
    let started = Instant::now();
    let gate = &state.gate;
    // Worker-daemon headers are believed from a trusted origin (or with a token) only; a
    // message this process read from the queue itself is the daemon's job done here.
    let believe_sqsd = match origin {
        Origin::Peer(peer) => gate.believes_sqsd(headers, peer.ip()),
        Origin::Queue => true,
    };
    let from_inside = match origin {
        Origin::Peer(peer) => gate.from_trusted_origin(headers, peer.ip()),
        Origin::Queue => true,
    };
    let refuse = |e, seen: Option<&Delivery>| Refused::new(e, seen.cloned(), started);
    let received = delivery::receive_from(headers, &body, believe_sqsd);
    let verified = matches!(&received, Ok(r) if gate.wants_signature(r));
    match &received {
        Ok(r) if verified => {
            if let Body::Sns(msg) = &r.body {
                gate.verify_sns(msg, r.delivery.kind)
                    .await
                    .map_err(|e| refuse(e.into(), Some(&r.delivery)))?;
            }
        }
        Ok(r) => {
            gate.admit_unsigned(headers, believe_sqsd, from_inside)
                .map_err(|e| refuse(e.into(), None))?;
            // An envelope taken unverified (VERIFY_SQS_ENVELOPES=false) must still come
            // from an allowed topic.
            if let Body::Sns(msg) = &r.body {
                gate.check_topic(msg)
                    .map_err(|e| refuse(e.into(), Some(&r.delivery)))?;
            }
        }
        Err(_) => gate
            .admit_unsigned(headers, believe_sqsd, from_inside)
            .map_err(|e| refuse(e.into(), None))?,
    }
    let received = received.map_err(|e| refuse(e.into(), None))?;
    let from_aws = verified
        || match origin {
            Origin::Queue => true,
            Origin::Peer(_) => received.delivery.kind == DeliveryKind::Sqsd && from_inside,
        };
    let slot = take_slot(state)
        .await
        .map_err(|e| refuse(e, Some(&received.delivery)))?;
    Ok(VerifiedDelivery {
        received,
        verified,
        from_aws,
        started,
        _slot: slot,
        _body: None,
    })
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
            let frame = frame.map_err(ApiError::Unreadable)?;
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
