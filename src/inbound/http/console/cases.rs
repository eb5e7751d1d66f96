//! `/console/cases/ID`: a case's whole story from the ledger: each alarm event and what was
//! done with it (opened, updated, folded, recovered, ...), and the pages of its alarms with
//! who acknowledged them.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::dashboard::when;
use super::{Stop, not_found, page, unavailable, visitor};
use crate::escape::html;
use crate::inbound::http::AppState;
use crate::ports::ledger::DecisionFilter;

/// Lines of a case's story shown at most.
const LINES: usize = 500;

/// Whether `id` can be a case id (AWS's, or the dry-run desk's): anything else is refused
/// before the ledger is asked.
fn plausible(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
}

/// What the case says at the desk: the graph attached when it was opened, and every
/// communication, oldest first (what this service wrote and what AWS Support replied).
/// A desk that cannot answer costs this part only.
async fn said(state: &AppState, id: &str) -> String {
    let mut out = format!(
        "<h2>Graph</h2><p><img src=\"/console/cases/{}/graph\" alt=\"the alarm's metric when the case was opened (none was attached)\" width=\"600\"></p>\
         <h2>Communications</h2>",
        html(id)
    );
    match state.cases.desk().communications(id).await {
        Ok(list) if list.is_empty() => out.push_str("<p>None that the desk can show.</p>"),
        Ok(list) => {
            out.push_str(
                "<table id=\"communications\"><tr><th>When</th><th>From</th><th>What</th></tr>",
            );
            for m in list {
                out.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td><pre>{}</pre></td></tr>",
                    m.at.format("%Y-%m-%d %H:%M:%S UTC"),
                    html(&m.by),
                    html(&m.body)
                ));
            }
            out.push_str("</table>");
        }
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "the console could not read a case's communications");
            out.push_str("<p>The support desk cannot be asked just now.</p>");
        }
    }
    out
}

/// `GET /console/cases/ID/graph`: the PNG attached when the case was opened.
pub(super) async fn graph(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    visitor(&state, &headers).await?;
    if !plausible(&id) {
        return Err(not_found());
    }
    match state.cases.desk().graph(&id).await {
        Ok(Some(png)) => Ok((
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=300"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            png.data,
        )
            .into_response()),
        Ok(None) => Err(not_found()),
        Err(e) => Err(unavailable(&e)),
    }
}

pub(super) async fn case(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (_, visitor) = visitor(&state, &headers).await?;
    if !plausible(&id) {
        return Err(not_found());
    }
    let filter = DecisionFilter {
        case_id: Some(id.clone()),
        limit: LINES,
        ..Default::default()
    };
    let mut story = state
        .cases
        .ledger()
        .decisions(&filter)
        .await
        .map_err(|e| unavailable(&e))?;
    if story.is_empty() {
        return Err(not_found());
    }
    story.sort_by_key(|d| (d.at, d.seq));
    let mut body = format!(
        "<h1>Case {}</h1><table id=\"story\"><tr><th>When</th><th>Alarm</th><th>State</th><th>Done</th><th>Why</th></tr>",
        html(&id)
    );
    let mut alarms: Vec<&str> = Vec::new();
    for d in &story {
        if !alarms.contains(&d.alarm_name.as_str()) {
            alarms.push(&d.alarm_name);
        }
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            d.at.format("%Y-%m-%d %H:%M:%S UTC"),
            html(&d.alarm_name),
            d.state.as_str(),
            d.outcome.as_str(),
            html(d.note.as_deref().unwrap_or("")),
        ));
    }
    body.push_str("</table>");
    body.push_str(&said(&state, &id).await);
    body.push_str("<h2>Pages of its alarms</h2>");
    let pages = match state.cases.pager() {
        Some(pager) => pager
            .ledger()
            .pages(false, 200)
            .await
            .map_err(|e| unavailable(&e))?,
        None => Vec::new(),
    };
    let pages: Vec<_> = pages
        .iter()
        .filter(|p| alarms.contains(&p.alarm.as_str()))
        .collect();
    if pages.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str("<table id=\"case-pages\"><tr><th>Page</th><th>State</th><th>Owner</th><th>Opened</th></tr>");
        for p in pages {
            body.push_str(&format!(
                "<tr><td><a href=\"/console/pages/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                p.state.as_str(),
                html(p.owner.as_deref().unwrap_or("-")),
                when(p.opened_at),
                id = p.id,
            ));
        }
        body.push_str("</table>");
    }
    Ok(page(StatusCode::OK, &format!("Case {id}"), &visitor, &body))
}
