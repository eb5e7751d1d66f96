//! `/console/schedules`: each schedule's shifts for the coming week, in its own time zone,
//! and (for responders) the override form: "this person is on duty in this schedule from
//! then until then", saved into the on-duty file as `oncall override` saves it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;

use super::actions::poster;
use super::{Stop, audited, csrf_field, page, refusal, unavailable, visitor};
use crate::console::roles::Role;
use crate::escape::html;
use crate::inbound::http::AppState;
use crate::oncall::file::{self, OnCall};

/// How far ahead the shifts are shown.
const DAYS: i64 = 7;

/// The on-duty file as the pager reads it (from the same settings store the forms save to).
async fn on_call(state: &AppState) -> Result<OnCall, Stop> {
    let pager = state.cases.pager().ok_or(Stop::NotFound)?;
    pager.on_call_file().await.map_err(|e| unavailable(&e))
}

pub(super) async fn schedules(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (_, visitor) = visitor(&state, &headers).await?;
    let on_call = on_call(&state).await?;
    let now = Utc::now();
    let mut body = String::from("<h1>Schedules</h1>");
    if on_call.schedules.is_empty() {
        body.push_str("<p>No schedules (see <code>oncall import</code>).</p>");
    }
    for s in &on_call.schedules {
        let zone = s.time_zone;
        body.push_str(&format!(
            "<h2>{}</h2><p class=\"muted\">The next {DAYS} days, in {}.</p>\
             <table class=\"shifts\"><tr><th>Who</th><th>From</th><th>Until</th></tr>",
            html(&s.id),
            zone.name()
        ));
        for shift in crate::oncall::shifts(s, now, now + chrono::Duration::days(DAYS)) {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(shift.person.as_str()),
                shift.from.with_timezone(&zone).format("%a %Y-%m-%d %H:%M"),
                shift.until.with_timezone(&zone).format("%a %Y-%m-%d %H:%M"),
            ));
        }
        body.push_str("</table>");
    }
    if visitor.role >= Role::Responder && !on_call.schedules.is_empty() {
        let options = |items: Vec<&str>| {
            items
                .into_iter()
                .map(|i| format!("<option value=\"{0}\">{0}</option>", html(i)))
                .collect::<String>()
        };
        body.push_str(&format!(
            "<h2>Override</h2><form method=\"post\" action=\"/console/schedules/override\" id=\"override-form\">{}\
             <label>Schedule <select name=\"schedule\">{}</select></label>\
             <label>Who <select name=\"person\">{}</select></label>\
             <label>From (the schedule's local time) <input name=\"from\" type=\"datetime-local\" required></label>\
             <label>Until <input name=\"until\" type=\"datetime-local\" required></label>\
             <button type=\"submit\">Put them on duty</button></form>",
            csrf_field(&visitor),
            options(on_call.schedules.iter().map(|s| s.id.as_str()).collect()),
            options(on_call.people.iter().map(|p| p.id.as_str()).collect()),
        ));
    }
    if visitor.role >= Role::Admin {
        let current = file::export(&on_call).map_err(|e| unavailable(&e))?;
        body.push_str(&format!(
            "<h2>The on-duty file</h2><p class=\"muted\">People, schedules and policies, as \
             <code>oncall import</code> reads them.</p>\
             <form method=\"post\" action=\"/console/schedules/file\" id=\"file-form\">{}\
             <textarea name=\"file\" rows=\"20\" cols=\"80\" spellcheck=\"false\">{}</textarea>\
             <button type=\"submit\">Replace the file</button></form>",
            csrf_field(&visitor),
            html(&current)
        ));
    }
    Ok(page(StatusCode::OK, "Schedules", &visitor, &body))
}

pub(super) async fn add_override(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, fields) = poster(&state, &headers, &body, Role::Responder).await?;
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    let (schedule, person, from, until) = (
        field("schedule"),
        field("person"),
        field("from"),
        field("until"),
    );
    let mut on_call = on_call(&state).await?;
    on_call
        .add_override(schedule, person, from, until)
        .map_err(|e| refusal(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let text = file::export(&on_call).map_err(|e| unavailable(&e))?;
    console
        .settings
        .save_on_call(&text)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(audited(
        &console,
        &visitor,
        &format!("put {person} on duty in {schedule} from {from} until {until}"),
        "/console/schedules",
    )
    .await)
}

/// The largest form taken for the on-duty file: the file's own bound, URL-encoded.
const MAX_FILE_FORM_BYTES: usize = 3 * file::MAX_FILE_BYTES + 1024;

/// Replaces the on-duty file (admins): read as `oncall import` reads it, every problem said
/// with its line, nothing saved unless all of it is valid.
pub(super) async fn replace_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, fields) =
        super::actions::poster_within(&state, &headers, &body, Role::Admin, MAX_FILE_FORM_BYTES)
            .await?;
    let text = fields.get("file").map(String::as_str).unwrap_or_default();
    if text.len() > file::MAX_FILE_BYTES {
        return Err(refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The on-duty file is larger than 256 KiB.",
        ));
    }
    let on_call =
        file::import(text).map_err(|e| refusal(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let canonical = file::export(&on_call).map_err(|e| unavailable(&e))?;
    console
        .settings
        .save_on_call(&canonical)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(audited(
        &console,
        &visitor,
        &format!(
            "replaced the on-duty file ({} people, {} schedules, {} policies)",
            on_call.people.len(),
            on_call.schedules.len(),
            on_call.policies.len()
        ),
        "/console/schedules",
    )
    .await)
}
