//! `GET /console/`: what is burning and who has it. The pages still open (with their
//! buttons, for responders), the "I'm fixing" windows and the form to start one, the cases
//! held open, and who is on duty now and next. Each part that cannot be read says so in
//! its place; the rest is shown.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{Stop, button, csrf_field, page, visitor};
use crate::console::Visitor;
use crate::console::roles::Role;
use crate::domain::page::PageState;
use crate::escape::html;
use crate::inbound::http::AppState;
use crate::ports::pages::PageSummary;

pub(super) fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub(super) async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (console, visitor) = visitor(&state, &headers).await?;
    let now = Utc::now();
    let mut body = String::from("<h1>On duty</h1>");
    body.push_str(&pages(&state, &visitor).await);
    body.push_str(&last_day(&state, now).await);
    body.push_str(&fixing(&*console.settings, &visitor, now).await);
    body.push_str(&cases(&state).await);
    body.push_str(&on_duty(&state, now).await);
    Ok(page(StatusCode::OK, "On duty", &visitor, &body))
}

/// A page's buttons, as the visitor's role and the page's state allow.
pub(super) fn page_buttons(visitor: &Visitor, p: &PageSummary) -> String {
    if visitor.role < Role::Responder || !p.state.is_live() {
        return String::new();
    }
    let base = format!("/console/pages/{}", p.id);
    let mut out = String::new();
    if p.state == PageState::Open {
        out.push_str(&button(visitor, &format!("{base}/ack"), "I have it"));
        out.push_str(&button(visitor, &format!("{base}/escalate"), "Escalate"));
    }
    out.push_str(&button(visitor, &format!("{base}/resolve"), "Resolve"));
    out
}

async fn pages(state: &AppState, visitor: &Visitor) -> String {
    let mut out = String::from("<h2>Open pages</h2>");
    let Some(pager) = state.cases.pager() else {
        out.push_str("<p>This backend keeps no pages.</p>");
        return out;
    };
    let live = match pager.ledger().pages(true, 100).await {
        Ok(live) => live,
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "the console could not read the pages");
            out.push_str("<p>The pages cannot be read just now.</p>");
            return out;
        }
    };
    if live.is_empty() {
        out.push_str("<p>None.</p>");
        return out;
    }
    out.push_str("<table id=\"pages\"><tr><th>Page</th><th>Alarm</th><th>State</th><th>Owner</th><th>Opened</th><th></th></tr>");
    for p in &live {
        out.push_str(&format!(
            "<tr><td><a href=\"/console/pages/{id}\">{id}</a></td><td>{}</td>\
             <td class=\"state-{st}\">{st}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&p.summary),
            html(p.owner.as_deref().unwrap_or("-")),
            when(p.opened_at),
            page_buttons(visitor, p),
            id = p.id,
            st = p.state.as_str(),
        ));
    }
    out.push_str("</table>");
    out
}

/// The "I'm fixing" windows active now, with their stop buttons, and the form to start one.
async fn fixing(
    store: &dyn crate::domain::settings::AlarmConfigStore,
    visitor: &Visitor,
    now: DateTime<Utc>,
) -> String {
    let mut out = String::from("<h2>I'm fixing</h2>");
    match store.windows().await {
        Ok(windows) => {
            let active: Vec<_> = windows.iter().filter(|w| w.active_at(now)).collect();
            if active.is_empty() {
                out.push_str("<p>No maintenance window is active: every alarm pages.</p>");
            } else {
                out.push_str("<table id=\"fixing\"><tr><th>Alarms</th><th>Until</th><th>By</th><th>Why</th><th></th></tr>");
                for w in active {
                    let stop = match visitor.role >= Role::Responder {
                        true => button(visitor, &format!("/console/fixing/{}/stop", w.id), "Stop"),
                        false => String::new(),
                    };
                    out.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{stop}</td></tr>",
                        html(w.alarm_pattern.as_deref().unwrap_or("*")),
                        w.active_until(now).map(when).unwrap_or_default(),
                        html(w.by.as_deref().unwrap_or("-")),
                        html(&w.reason),
                    ));
                }
                out.push_str("</table>");
            }
        }
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "the console could not read the maintenance windows");
            out.push_str("<p>The maintenance windows cannot be read just now.</p>");
        }
    }
    if visitor.role >= Role::Responder {
        out.push_str(&format!(
            "<form method=\"post\" action=\"/console/fixing\" id=\"fixing-form\">{}\
             <label>Alarm (a name, or a pattern with *) <input name=\"alarm\" required maxlength=\"255\"></label>\
             <label>For <select name=\"minutes\"><option value=\"30\">30 minutes</option>\
             <option value=\"60\" selected>1 hour</option><option value=\"120\">2 hours</option>\
             <option value=\"240\">4 hours</option></select></label>\
             <label>Why <input name=\"reason\" maxlength=\"200\"></label>\
             <button type=\"submit\">I'm fixing: don't call anyone</button></form>",
            csrf_field(visitor)
        ));
    }
    out
}

/// The alarms of the last 24 hours, an SVG bar per hour.
async fn last_day(state: &AppState, now: DateTime<Utc>) -> String {
    let filter = crate::ports::ledger::DecisionFilter {
        since: Some(now - chrono::Duration::hours(25)),
        limit: 20_000,
        ..Default::default()
    };
    let mut out = String::from("<h2>Alarms, last 24 hours</h2>");
    match state.cases.ledger().decisions(&filter).await {
        Ok(decisions) => {
            let (start, counts) = crate::console::chart::alarms_per_hour(&decisions, now);
            out.push_str(&crate::console::chart::hourly_bars(
                "Alarms per hour, last 24 hours",
                start,
                &counts,
            ));
        }
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "the console could not read the decisions");
            out.push_str("<p>The alarms cannot be read just now.</p>");
        }
    }
    out
}

async fn cases(state: &AppState) -> String {
    let mut out = String::from("<h2>Open cases</h2>");
    match state.cases.ledger().open_cases().await {
        Ok(open) if open.is_empty() => out.push_str("<p>None.</p>"),
        Ok(open) => {
            out.push_str("<table id=\"cases\"><tr><th>Alarm</th><th>Case</th><th>Opened</th><th>Updates</th><th>Recovered</th></tr>");
            for c in open.iter().take(100) {
                out.push_str(&format!(
                    "<tr><td>{}</td><td><a href=\"/console/cases/{case}\">{case}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    html(&c.alarm_name),
                    when(c.opened_at),
                    c.updates,
                    if c.recovered { "yes" } else { "no" },
                    case = html(&c.case_id),
                ));
            }
            out.push_str("</table>");
        }
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "the console could not read the open cases");
            out.push_str("<p>The cases cannot be read just now.</p>");
        }
    }
    out
}

async fn on_duty(state: &AppState, now: DateTime<Utc>) -> String {
    let mut out = String::from("<h2>Who is on duty</h2>");
    let Some(pager) = state.cases.pager() else {
        return out + "<p>This backend keeps no schedules.</p>";
    };
    let file = match pager.on_call_file().await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %crate::errors::Chain(&e), "the console could not read the schedules");
            return out + "<p>The schedules cannot be read just now.</p>";
        }
    };
    if file.schedules.is_empty() {
        return out + "<p>No schedules (see <code>oncall import</code>).</p>";
    }
    out.push_str("<table id=\"duty\"><tr><th>Schedule</th><th>Now</th><th>Next</th></tr>");
    for s in &file.schedules {
        let now_duty = crate::oncall::on_duty(s, now);
        let now_text = match &now_duty {
            Some(d) => format!(
                "{}{}",
                html(d.person.as_str()),
                d.until
                    .map(|u| format!(" until {}", when(u)))
                    .unwrap_or_default()
            ),
            None => "nobody".into(),
        };
        let next = now_duty
            .and_then(|d| d.until)
            .and_then(|u| crate::oncall::on_duty(s, u).map(|n| (u, n)))
            .map(|(u, n)| format!("{} from {}", html(n.person.as_str()), when(u)))
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "<tr><td>{}</td><td>{now_text}</td><td>{next}</td></tr>",
            html(&s.id)
        ));
    }
    out.push_str("</table>");
    out
}
