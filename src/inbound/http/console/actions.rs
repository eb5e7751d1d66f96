//! What responders do in the console: acknowledge, escalate or resolve a page, and start or
//! stop "I'm fixing" (a maintenance window for an alarm or a pattern, for a while, recorded
//! with the person). Each post shows its CSRF token and origin first, then the role it
//! needs; each change is written to the audit log, and the page's own timeline says who
//! acted and that it was through the console.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;

use super::{Stop, allowed, audited, checked_post, not_found, refusal, unavailable, visitor};
use crate::console::roles::Role;
use crate::console::{Console, Visitor};
use crate::domain::maintenance::MaintenanceWindow;
use crate::domain::page::{PageId, Via};
use crate::inbound::http::AppState;
use crate::ports::pages::{Acted, Action};

/// How long "I'm fixing" may hold an alarm's pages from the console: a day; longer is a
/// planned window (`maintenance start`).
const MAX_FIXING_MINUTES: i64 = 24 * 60;

pub(super) type Fields = std::collections::HashMap<String, String>;

/// The visitor of a form post that passed its checks and carries the role `needed`, with
/// the form's fields.
pub(super) async fn poster(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    needed: Role,
) -> Result<(std::sync::Arc<Console>, Visitor, Fields), Stop> {
    poster_within(state, headers, body, needed, super::MAX_FORM_BYTES).await
}

/// [`poster`], for a form of at most `limit` bytes.
pub(super) async fn poster_within(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    needed: Role,
    limit: usize,
) -> Result<(std::sync::Arc<Console>, Visitor, Fields), Stop> {
    let (console, visitor) = visitor(state, headers).await?;
    let fields = super::form_within(body, limit)?;
    checked_post(headers, &fields, &visitor.csrf)?;
    allowed(&visitor, needed)?;
    Ok((console, visitor, fields))
}

pub(super) async fn page_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, _) = poster(&state, &headers, &body, Role::Responder).await?;
    let (Ok(id), Some(pager)) = (id.parse::<PageId>(), state.cases.pager()) else {
        return Err(not_found());
    };
    let by = visitor.name.clone();
    let (action, said) = match action.as_str() {
        "ack" => (
            Action::Acknowledge {
                by,
                via: Via::Console,
            },
            "acknowledged",
        ),
        "escalate" => (
            Action::Escalate {
                by: Some(by),
                via: Via::Console,
            },
            "escalated",
        ),
        "resolve" => (
            Action::Resolve {
                by: Some(by),
                via: Via::Console,
            },
            "resolved",
        ),
        _ => return Err(not_found()),
    };
    match pager.act(id, action).await.map_err(|e| unavailable(&e))? {
        Acted::Done(p) => {
            let what = format!("{said} page {id} ({})", p.alarm);
            Ok(audited(&console, &visitor, &what, &format!("/console/pages/{id}")).await)
        }
        Acted::Refused(st) => Err(refusal(
            StatusCode::CONFLICT,
            &format!("Page {id} is {}: it cannot be {said} now.", st.as_str()),
        )),
        Acted::NoSuchPage => Err(not_found()),
    }
}

/// The window a "I'm fixing" form asks for, or what is wrong with the form.
fn fixing_window(
    fields: &Fields,
    by: &str,
    now: chrono::DateTime<Utc>,
) -> Result<MaintenanceWindow, String> {
    let alarm = fields.get("alarm").map(|a| a.trim()).unwrap_or_default();
    if alarm.is_empty() || alarm.len() > 255 || alarm.chars().any(char::is_control) {
        return Err("Name the alarm (or a pattern with *), in at most 255 characters.".into());
    }
    let minutes: i64 = fields
        .get("minutes")
        .and_then(|m| m.trim().parse().ok())
        .filter(|m| (1..=MAX_FIXING_MINUTES).contains(m))
        .ok_or_else(|| format!("How long: a number of minutes from 1 to {MAX_FIXING_MINUTES}."))?;
    let why = fields.get("reason").map(|r| r.trim()).unwrap_or_default();
    if why.chars().count() > 200 || why.chars().any(char::is_control) {
        return Err("Say why in at most 200 characters, on one line.".into());
    }
    Ok(MaintenanceWindow {
        id: crate::case::windows::new_id(now),
        reason: match why.is_empty() {
            true => format!("{by} is fixing it"),
            false => format!("{by} is fixing it: {why}"),
        },
        alarm_pattern: Some(alarm.to_owned()),
        starts_at: now,
        ends_at: now + chrono::Duration::minutes(minutes),
        every: None,
        by: Some(by.to_owned()),
    })
}

pub(super) async fn start_fixing(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, fields) = poster(&state, &headers, &body, Role::Responder).await?;
    let now = Utc::now();
    let window = fixing_window(&fields, &visitor.name, now)
        .map_err(|said| refusal(StatusCode::BAD_REQUEST, &said))?;
    let what = format!(
        "started I'm fixing {} for {} until {}",
        window.id,
        window.alarm_pattern.as_deref().unwrap_or("*"),
        window.ends_at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    crate::case::windows::start(&*console.settings, window, now)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(audited(&console, &visitor, &what, "/console/").await)
}

pub(super) async fn stop_fixing(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, _) = poster(&state, &headers, &body, Role::Responder).await?;
    let now = Utc::now();
    let stopped = crate::case::windows::stop(&*console.settings, Some(&id), now)
        .await
        .map_err(|e| unavailable(&e))?;
    if stopped.is_empty() {
        return Err(refusal(
            StatusCode::CONFLICT,
            "That window has ended already (or never was).",
        ));
    }
    let what = format!("stopped I'm fixing {id}");
    Ok(audited(&console, &visitor, &what, "/console/").await)
}
