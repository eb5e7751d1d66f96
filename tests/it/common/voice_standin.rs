//! The voice providers' stand-ins, speaking their wire protocols:
//!
//! - a Twilio-compatible REST API: `POST /2010-04-01/Accounts/SID/Calls.json`
//!   (form-encoded `To`, `From`, `Twiml`; HTTP basic auth with the account's SID and auth
//!   token), answered `201` with the call's JSON; [`VoiceStandin::press`] then plays the
//!   callee: it reads the `<Gather action>` of the call's TwiML and posts the key there,
//!   signed as the provider signs (`X-Twilio-Signature`).
//! - AWS End User Messaging SMS and voice v2 (awsJson 1.0, `X-Amz-Target:
//!   PinpointSMSVoiceV2.SendVoiceMessage`), answered with a `MessageId`; an origination
//!   identity it does not know is refused as AWS refuses it (`ResourceNotFoundException`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

pub(crate) const SID: &str = "AC0123456789abcdef0123456789abcdef";
pub(crate) const TOKEN: &str = "stand-in-auth-token-0123456789";
/// The one origination number the End User Messaging stand-in knows.
pub(crate) const AWS_FROM: &str = "+15555550150";

/// A call the provider was asked to place.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) sid: String,
    pub(crate) to: String,
    pub(crate) from: String,
    pub(crate) twiml: String,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    /// SendVoiceMessage requests, as JSON.
    voice_messages: Vec<Value>,
}

type Shared = Arc<Mutex<Inner>>;

pub(crate) struct VoiceStandin {
    addr: SocketAddr,
    shared: Shared,
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

async fn create_call(
    State(shared): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    if sid != SID || !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"code": 20003, "message": "Authenticate", "status": 401})),
        )
            .into_response();
    }
    let f = form(&body);
    let get = |k: &str| {
        f.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    if get("To").is_empty() || get("Twiml").is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(
                json!({"code": 21201, "message": "No 'To' number is specified", "status": 400}),
            ),
        )
            .into_response();
    }
    let mut inner = shared.lock().expect("lock");
    let call = Call {
        sid: format!("CA{:032}", inner.calls.len() + 1),
        to: get("To"),
        from: get("From"),
        twiml: get("Twiml"),
    };
    inner.calls.push(call.clone());
    (
        StatusCode::CREATED,
        axum::Json(json!({"sid": call.sid, "status": "queued", "to": call.to, "from": call.from})),
    )
        .into_response()
}

async fn aws_voice(
    State(shared): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let aws_json = |status: StatusCode, v: Value| {
        (
            status,
            [("content-type", "application/x-amz-json-1.0")],
            v.to_string(),
        )
            .into_response()
    };
    if target != "PinpointSMSVoiceV2.SendVoiceMessage" {
        return aws_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "UnknownOperationException"}),
        );
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if request["OriginationIdentity"] != AWS_FROM {
        return aws_json(
            StatusCode::BAD_REQUEST,
            json!({"__type": "ResourceNotFoundException", "message": "The origination identity was not found", "ResourceType": "phone-number"}),
        );
    }
    let mut inner = shared.lock().expect("lock");
    inner.voice_messages.push(request);
    let id = format!("msg-{}", inner.voice_messages.len());
    aws_json(StatusCode::OK, json!({"MessageId": id}))
}

impl VoiceStandin {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared: Shared = Arc::default();
        let app = axum::Router::new()
            .route("/2010-04-01/Accounts/{sid}/Calls.json", post(create_call))
            .route("/", post(aws_voice))
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, shared }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.shared.lock().expect("lock").calls.clone()
    }

    pub(crate) fn voice_messages(&self) -> Vec<Value> {
        self.shared.lock().expect("lock").voice_messages.clone()
    }

    /// The callee presses `digits` on `call`: posted to the call's `<Gather action>` (whose
    /// host is replaced by `server`, where the service really listens), signed as the
    /// provider signs with `token`. The answer's status and TwiML.
    pub(crate) async fn press(
        &self,
        call: &Call,
        digits: &str,
        server: &str,
        token: &str,
    ) -> (u16, String) {
        let action = call
            .twiml
            .split("action=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a Gather action")
            .replace("&amp;", "&");
        let params: Vec<(String, String)> = [
            ("AccountSid", SID),
            ("CallSid", call.sid.as_str()),
            ("Digits", digits),
            ("From", call.from.as_str()),
            ("To", call.to.as_str()),
            ("CallStatus", "in-progress"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = cw_support_api::paging::twilio::signature(token, &action, &params);
        let path = action
            .splitn(4, '/')
            .nth(3)
            .map(|p| format!("/{p}"))
            .expect("a path");
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let resp = reqwest::Client::new()
            .post(format!("{server}{path}"))
            .header("x-twilio-signature", signature)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("the service answers the keypress");
        (resp.status().as_u16(), resp.text().await.expect("body"))
    }
}
