//! `/console/settings`: every alarm's settings as a case and a page would use them, and for
//! admins the form that changes one (the fields given over what is stored, refused unless a
//! case could use the result, as `alarms put` refuses it).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::actions::poster;
use super::{Stop, audited, csrf_field, page, refusal, unavailable, visitor};
use crate::console::roles::Role;
use crate::domain::settings::AlarmConfigRecord;
use crate::escape::html;
use crate::inbound::http::AppState;

/// Alarms listed at most.
const ROWS: usize = 500;

pub(super) async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (console, visitor) = visitor(&state, &headers).await?;
    let all = console.settings.list().await.map_err(|e| unavailable(&e))?;
    let mut body = String::from("<h1>Alarm settings</h1>");
    if all.is_empty() {
        body.push_str("<p>No alarm has settings: every alarm opens a case at priority low.</p>");
    } else {
        body.push_str(
            "<table id=\"settings\"><tr><th>Alarm</th><th>Priority</th><th>Route</th>\
             <th>Policy</th><th>Enabled</th><th>Group</th><th>Runbook</th></tr>",
        );
        for (name, r) in all.iter().take(ROWS) {
            let cell = |v: &Option<String>| html(v.as_deref().unwrap_or("-"));
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(name),
                cell(&r.priority),
                cell(&r.route),
                cell(&r.policy),
                match r.enabled {
                    Some(false) => "no",
                    _ => "yes",
                },
                cell(&r.group),
                cell(&r.action),
            ));
        }
        body.push_str("</table>");
    }
    if visitor.role >= Role::Admin {
        body.push_str(&format!(
            "<h2>Change an alarm's settings</h2>\
             <form method=\"post\" action=\"/console/settings\" id=\"settings-form\">{}\
             <label>Alarm <input name=\"alarm\" required maxlength=\"255\"></label>\
             <label>Priority <select name=\"priority\"><option value=\"\">(unchanged)</option>\
             <option>low</option><option>normal</option><option>high</option>\
             <option>urgent</option><option>critical</option></select></label>\
             <label>Route <select name=\"route\"><option value=\"\">(unchanged)</option>\
             <option>case</option><option>page</option><option>both</option></select></label>\
             <label>Policy <input name=\"policy\" maxlength=\"64\"></label>\
             <label>Enabled <select name=\"enabled\"><option value=\"\">(unchanged)</option>\
             <option value=\"true\">yes</option><option value=\"false\">no</option></select></label>\
             <label>Runbook (the case's action text) <input name=\"action\" maxlength=\"4000\"></label>\
             <button type=\"submit\">Save</button></form>",
            csrf_field(&visitor)
        ));
    }
    Ok(page(StatusCode::OK, "Alarm settings", &visitor, &body))
}

/// The record the form asks for over the stored one, with what changed (for the audit).
fn merged(
    mut r: AlarmConfigRecord,
    fields: &super::actions::Fields,
) -> Result<(AlarmConfigRecord, Vec<String>), String> {
    let mut changed = Vec::new();
    for key in ["priority", "route", "policy", "action"] {
        let Some(v) = fields.get(key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            continue;
        };
        if v.chars().any(char::is_control) {
            return Err(format!("{key}: one line of text, please"));
        }
        let slot = match key {
            "priority" => &mut r.priority,
            "route" => &mut r.route,
            "policy" => &mut r.policy,
            _ => &mut r.action,
        };
        *slot = Some(match key {
            "priority" | "route" => v.to_lowercase(),
            _ => v.to_owned(),
        });
        changed.push(format!("{key}={v}"));
    }
    let enabled = match fields.get("enabled").map(String::as_str) {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err("enabled: yes or no".into()),
    };
    if let Some(on) = enabled {
        r.enabled = Some(on);
        changed.push(format!("enabled={on}"));
    }
    if changed.is_empty() {
        return Err("Nothing to change: give at least one field.".into());
    }
    r.validate().map_err(|e| e.to_string())?;
    Ok((r, changed))
}

pub(super) async fn change(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Stop> {
    let (console, visitor, fields) = poster(&state, &headers, &body, Role::Admin).await?;
    let alarm = fields.get("alarm").map(|a| a.trim()).unwrap_or_default();
    if alarm.is_empty() || alarm.chars().count() > 255 || alarm.chars().any(char::is_control) {
        return Err(refusal(
            StatusCode::BAD_REQUEST,
            "Name the alarm, in at most 255 characters.",
        ));
    }
    let stored = console
        .settings
        .get(alarm)
        .await
        .map_err(|e| unavailable(&e))?;
    let (record, changed) = merged(stored.unwrap_or_default(), &fields)
        .map_err(|said| refusal(StatusCode::BAD_REQUEST, &said))?;
    console
        .settings
        .put(alarm, &record)
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(audited(
        &console,
        &visitor,
        &format!("changed the settings of {alarm}: {}", changed.join(", ")),
        "/console/settings",
    )
    .await)
}
