//! The console's read-only views: one page with everything that happened on it, and the
//! audit log.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::dashboard::{page_buttons, when};
use super::{Stop, not_found, page, unavailable, visitor};
use crate::domain::page::PageId;
use crate::escape::html;
use crate::inbound::http::AppState;

/// A span as people say it: `42 s`, `7 min`, `2 h 5 min`.
fn minutes(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min", secs / 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// Audit lines shown.
const AUDIT_LINES: usize = 200;

pub(super) async fn page_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (_, visitor) = visitor(&state, &headers).await?;
    let (Ok(id), Some(pager)) = (id.parse::<PageId>(), state.cases.pager()) else {
        return Err(not_found());
    };
    let record = match pager.ledger().page(id).await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(not_found()),
        Err(e) => return Err(unavailable(&e)),
    };
    let p = &record.page;
    let mut body = format!(
        "<h1>Page {}</h1><p>{}</p><p>State: <strong class=\"state-{st}\">{st}</strong>{}</p>\
         <p class=\"muted\">Alarm {} · policy {} · opened {}</p>{}",
        p.id,
        html(&p.summary),
        p.owner
            .as_deref()
            .map(|o| format!(" by {}", html(o)))
            .unwrap_or_default(),
        html(&p.alarm),
        html(&p.policy),
        when(p.opened_at),
        page_buttons(&visitor, p),
        st = p.state.as_str(),
    );
    let times: Vec<String> = [
        ("acknowledged", p.acknowledged_at),
        ("resolved", p.resolved_at),
    ]
    .into_iter()
    .filter_map(|(what, at)| {
        at.map(|t| format!("{what} {} after it opened", minutes(t - p.opened_at)))
    })
    .collect();
    if !times.is_empty() {
        body.push_str(&format!("<p class=\"muted\">{}</p>", times.join(" · ")));
    }
    body.push_str("<h2>Timeline</h2><table id=\"timeline\"><tr><th>When</th><th>What</th></tr>");
    for t in &record.timeline {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td></tr>",
            t.at.format("%Y-%m-%d %H:%M:%S UTC"),
            html(&t.text)
        ));
    }
    body.push_str("</table><h2>Messages</h2><table id=\"messages\"><tr><th>When</th><th>To</th><th>How</th><th>State</th><th>Text</th></tr>");
    for m in &record.messages {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            m.at.format("%Y-%m-%d %H:%M:%S UTC"),
            html(&m.person),
            m.channel.as_str(),
            html(&m.state),
            html(&m.text)
        ));
    }
    body.push_str("</table>");
    Ok(page(StatusCode::OK, &format!("Page {id}"), &visitor, &body))
}

pub(super) async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (console, visitor) = visitor(&state, &headers).await?;
    let entries = console
        .store
        .audit_log(AUDIT_LINES)
        .await
        .map_err(|e| unavailable(&e))?;
    let mut body = String::from("<h1>Audit log</h1>");
    if entries.is_empty() {
        body.push_str("<p>Nothing changed through the console yet.</p>");
    } else {
        body.push_str("<table id=\"audit\"><tr><th>When</th><th>Who</th><th>What</th></tr>");
        for e in &entries {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                e.at.format("%Y-%m-%d %H:%M:%S UTC"),
                html(&e.who),
                html(&e.what)
            ));
        }
        body.push_str("</table>");
    }
    Ok(page(StatusCode::OK, "Audit log", &visitor, &body))
}

#[cfg(test)]
mod tests {
    use super::minutes;
    use chrono::Duration;

    #[test]
    fn spans_are_said_as_people_say_them() {
        assert_eq!(minutes(Duration::seconds(42)), "42 s");
        assert_eq!(minutes(Duration::seconds(7 * 60 + 59)), "7 min");
        assert_eq!(
            minutes(Duration::seconds(2 * 3600 + 5 * 60 + 1)),
            "2 h 5 min"
        );
        assert_eq!(minutes(Duration::seconds(-3)), "0 s");
    }
}
