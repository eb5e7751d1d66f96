//! `/pages/ID/PERSON/UNTIL/TOKEN`: the acknowledgement link in a page's messages
//! (`paging::links`). A GET shows the page and, while it is open, a button; only the
//! button's POST acknowledges, as PERSON, so the link scanners of mail and chat services
//! change nothing. Every refusal (no links, a malformed or tampered link, a lapsed one) is
//! the same 404, and the path (with its token) is never logged.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use crate::domain::page::{PageId, PageState, Via};
use crate::escape::html;
use crate::oncall::model::PersonId;
use crate::ports::pages::{Acted, Action, PageSummary};

type LinkPath = Path<(String, String, String, String)>;

/// The page and person of a link this service made and that has not lapsed.
fn verified(
    state: &AppState,
    (id, person, until, token): &(String, String, String, String),
) -> Option<(PageId, String)> {
    let pager = state.cases.pager()?;
    let links = pager.links()?;
    let id: PageId = id.parse().ok()?;
    let person = PersonId::parse(person).ok()?;
    let until: i64 = until.parse().ok()?;
    links
        .check(id, person.as_str(), until, token, Utc::now())
        .then(|| (id, person.as_str().to_owned()))
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

/// An HTML answer: no scripts, no styles from anywhere, no framing, no referrer (the URL is
/// a secret), never cached.
pub(super) fn document(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title></head><body>{body}</body></html>",
        html(title)
    );
    html_answer(
        status,
        "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "no-referrer",
        page,
    )
}

/// An HTML page with its Content-Security-Policy and referrer policy, and the headers every
/// HTML answer of the service carries.
pub(super) fn html_answer(
    status: StatusCode,
    csp: &'static str,
    referrer: &'static str,
    page: String,
) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, csp),
            (header::REFERRER_POLICY, referrer),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        page,
    )
        .into_response()
}

fn described(p: &PageSummary) -> String {
    let owner = p
        .owner
        .as_deref()
        .map(|o| format!(" by {}", html(o)))
        .unwrap_or_default();
    format!(
        "<h1>Page {}</h1><p>{}</p><p>State: <strong>{}</strong>{owner}</p>",
        p.id,
        html(&p.summary),
        p.state.as_str()
    )
}

pub(super) async fn show(State(state): State<AppState>, Path(parts): LinkPath) -> Response {
    let Some((id, person)) = verified(&state, &parts) else {
        return not_found();
    };
    let Some(pager) = state.cases.pager() else {
        return not_found();
    };
    match pager.ledger().page(id).await {
        Ok(Some(r)) => {
            let mut body = described(&r.page);
            if r.page.state == PageState::Open {
                body.push_str(&format!(
                    "<form method=\"post\"><button type=\"submit\">I have it ({})</button></form>",
                    html(&person)
                ));
            }
            document(StatusCode::OK, &format!("Page {id}"), &body)
        }
        Ok(None) => not_found(),
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "a page link could not read its page");
            document(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<p>Try again in a moment.</p>",
            )
        }
    }
}

pub(super) async fn acknowledge(State(state): State<AppState>, Path(parts): LinkPath) -> Response {
    let Some((id, person)) = verified(&state, &parts) else {
        return not_found();
    };
    let Some(pager) = state.cases.pager() else {
        return not_found();
    };
    let action = Action::Acknowledge {
        by: person.clone(),
        via: Via::Link,
    };
    match pager.act(id, action).await {
        Ok(Acted::Done(p)) => document(
            StatusCode::OK,
            &format!("Page {id}"),
            &format!(
                "{}<p>You have it, {}. Nobody else is called.</p>",
                described(&p),
                html(&person)
            ),
        ),
        Ok(Acted::Refused(state)) => document(
            StatusCode::CONFLICT,
            &format!("Page {id}"),
            &format!(
                "<p>Page {id} is {}: there is nothing to acknowledge.</p>",
                state.as_str()
            ),
        ),
        Ok(Acted::NoSuchPage) => not_found(),
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "a page link could not acknowledge");
            document(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<p>Try again in a moment.</p>",
            )
        }
    }
}
