//! `POST /voice/twilio/PAGE/PERSON`: the keypress of a page's call, as the Twilio-compatible
//! provider posts it (form-encoded: `Digits`, `AccountSid`, `CallSid`, ...). Believed only
//! with the account's signature over the exact URL and parameters (`X-Twilio-Signature`),
//! and only for this account: 1 acknowledges as the person called, 2 wakes the next person
//! now. The answer is TwiML for the caller to hear.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::domain::page::{PageId, Via};
use crate::escape::html;
use crate::oncall::model::PersonId;
use crate::paging::twilio::{self, TwilioAccount};
use crate::ports::pages::{Acted, Action};

/// A keypress's body is a few hundred bytes; more is not the provider.
const MAX_BODY: usize = 16 * 1024;

fn say(status: StatusCode, text: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say voice=\"Polly.Joanna\">{}</Say></Response>",
        html(text)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The parameters, if the signature is the account's over this URL.
fn verified(
    account: &TwilioAccount,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    if body.len() > MAX_BODY {
        return None;
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let url = format!("{}{path}", account.public_url.trim_end_matches('/'));
    let given = headers.get("x-twilio-signature")?.to_str().ok()?;
    if !twilio::verifies(&account.token, &url, &params, given) {
        return None;
    }
    let sid = params
        .iter()
        .find(|(k, _)| k == "AccountSid")
        .map(|(_, v)| v.as_str());
    (sid == Some(account.sid.as_str())).then_some(params)
}

pub(super) async fn keypress(
    State(state): State<AppState>,
    Path((page, person)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(account), Some(pager)) = (state.voice.as_deref(), state.cases.pager()) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let (Ok(id), Ok(who)) = (page.parse::<PageId>(), PersonId::parse(&person)) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let path = twilio::callback_path(id, who.as_str());
    let Some(params) = verified(account, &path, &headers, &body) else {
        tracing::warn!(page = %id, "a voice keypress without the account's signature was refused");
        return (StatusCode::FORBIDDEN, "forbidden").into_response();
    };
    let digits = params
        .iter()
        .find(|(k, _)| k == "Digits")
        .map(|(_, v)| v.trim());
    let by = who.as_str().to_owned();
    let (action, done) = match digits {
        Some("1") => (
            Action::Acknowledge {
                by,
                via: Via::Voice,
            },
            "Page is yours. Nobody else will be called. Goodbye.",
        ),
        Some("2") => (
            Action::Escalate {
                by: Some(by),
                via: Via::Voice,
            },
            "The next person is being called now. Goodbye.",
        ),
        _ => {
            return say(
                StatusCode::OK,
                "That key does nothing. You may be called again.",
            );
        }
    };
    match pager.act(id, action).await {
        Ok(Acted::Done(_)) => say(StatusCode::OK, done),
        Ok(Acted::Refused(s)) => say(
            StatusCode::OK,
            &format!("This page is already {}. Goodbye.", s.as_str()),
        ),
        Ok(Acted::NoSuchPage) => say(StatusCode::OK, "There is no such page. Goodbye."),
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "a voice keypress could not be recorded");
            say(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sorry, it could not be recorded. Please press again or use the link.",
            )
        }
    }
}
