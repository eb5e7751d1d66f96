//! `GET /console/`: the dashboard, behind the load balancer's OIDC sign-in (`console`):
//! the pages still open and who has them, and who is on duty now. Server-rendered, no
//! script, every text from an alarm escaped; anyone the gate does not let in gets the same
//! `401`, and why is said only in the log.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;

use super::AppState;
use super::page_link::document;
use crate::escape::html;

pub(super) async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(console) = &state.console else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let token = headers
        .get("x-amzn-oidc-data")
        .and_then(|v| v.to_str().ok());
    let (id, role) = match console.who(token, Utc::now()).await {
        Ok(who) => who,
        Err(e) => {
            tracing::warn!(error = %e, "the console refused a visitor");
            return document(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "<p>Sign in through the load balancer to see the console.</p>",
            );
        }
    };
    let who = id.email.as_deref().unwrap_or(&id.subject);
    let mut body = format!(
        "<h1>On duty</h1><p>Signed in as {} ({})</p>",
        html(who),
        role.as_str()
    );
    match state.cases.pager() {
        Some(pager) => match sections(pager).await {
            Ok(s) => body.push_str(&s),
            Err(e) => {
                tracing::warn!(error = %crate::errors::Chain(&e), "the console could not read the pages");
                body.push_str("<p>The pages cannot be read just now.</p>");
            }
        },
        None => body.push_str("<p>This backend keeps no pages.</p>"),
    }
    document(StatusCode::OK, "On duty", &body)
}

/// The open pages and who is on duty now, as HTML.
async fn sections(
    pager: &crate::paging::engine::Pager,
) -> Result<String, crate::paging::engine::PagingError> {
    let now = Utc::now();
    let mut out = String::from("<h2>Open pages</h2>");
    let live = pager.ledger().pages(true, 100).await?;
    if live.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<table><tr><th>Page</th><th>Alarm</th><th>State</th><th>Owner</th><th>Opened</th></tr>");
        for p in &live {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.id,
                html(&p.summary),
                p.state.as_str(),
                html(p.owner.as_deref().unwrap_or("-")),
                p.opened_at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        out.push_str("</table>");
    }
    out.push_str("<h2>On duty now</h2><ul>");
    for s in &pager.on_call_file().await?.schedules {
        let who = match crate::oncall::on_duty(s, now) {
            Some(d) => format!(
                "{}{}",
                html(d.person.as_str()),
                d.until
                    .map(|u| format!(" until {}", u.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            ),
            None => "nobody".into(),
        };
        out.push_str(&format!("<li>{}: {who}</li>", html(&s.id)));
    }
    out.push_str("</ul>");
    Ok(out)
}
