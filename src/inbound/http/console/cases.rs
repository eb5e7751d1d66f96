//! `/console/cases/ID`: a case's whole story from the ledger: each alarm event and what was
//! done with it (opened, updated, folded, recovered, ...), and the pages of its alarms with
//! who acknowledged them.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

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
    body.push_str("</table><h2>Pages of its alarms</h2>");
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
