//! `/console/report`: how well support worked this month so far and last month
//! (`case::report`), for everyone signed in: the figures and the noisiest alarms, with each
//! month's pages drawn as bars (acknowledged, unanswered, still live).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;

use super::{Stop, page, unavailable, visitor};
use crate::case::report::{History, Report, Spread};
use crate::escape::html;
use crate::inbound::http::AppState;
use crate::paging::callouts::Month;

fn spread(s: &Spread) -> String {
    s.said().unwrap_or_else(|| "-".into())
}

/// Three bars for a month's pages: acknowledged, unanswered, still live.
fn bars(r: &Report) -> String {
    let most = r.pages.opened.max(1);
    let rows = [
        ("acknowledged", r.pages.acknowledged, "#2e7d32"),
        ("unanswered", r.pages.unanswered, "#b00020"),
        ("still live", r.pages.live, "#8a6d00"),
    ];
    let mut out = String::from(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 420 78\" width=\"420\" height=\"78\" \
         role=\"img\" aria-label=\"pages by outcome\">",
    );
    for (i, (label, n, colour)) in rows.iter().enumerate() {
        let y = i * 26;
        let w = n * 300 / most;
        out.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\" fill=\"#333\">{label}</text>\
             <rect x=\"100\" y=\"{y}\" width=\"{w}\" height=\"18\" fill=\"{colour}\"><title>{label}: {n}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#333\">{n}</text>",
            y + 14,
            105 + w,
            y + 14
        ));
    }
    out.push_str("</svg>");
    out
}

fn month_section(title: &str, r: &Report) -> String {
    let mut out = format!(
        "<h2>{}</h2><table class=\"kpi\"><tr><th>Cases opened</th><td>{}</td></tr>\
         <tr><th>Recovered by themselves (10 min)</th><td>{}</td></tr>\
         <tr><th>Pages opened</th><td>{}</td></tr>\
         <tr><th>Time to acknowledge</th><td>{}</td></tr>\
         <tr><th>Time to resolve</th><td>{}</td></tr></table>{}",
        html(title),
        r.cases.opened,
        r.cases.recovered_by_themselves,
        r.pages.opened,
        spread(&r.pages.time_to_acknowledge),
        spread(&r.pages.time_to_resolve),
        bars(r),
    );
    if !r.noisiest.is_empty() {
        out.push_str("<h3>Noisiest alarms</h3><table><tr><th>Alarm</th><th>Pages</th><th>Cases</th><th>Recovered by itself</th></tr>");
        for n in &r.noisiest {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(&n.alarm),
                n.pages,
                n.cases,
                n.recovered_by_themselves
            ));
        }
        out.push_str("</table>");
    }
    out
}

pub(super) async fn kpis(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Stop> {
    let (_, visitor) = visitor(&state, &headers).await?;
    let this = Month::of(Utc::now());
    let last = this.previous();
    let (this_from, this_until) = this.span(&chrono_tz::UTC);
    let (last_from, last_until) = last.span(&chrono_tz::UTC);
    // Read once for both months.
    let history = History::since(&state.cases, last_from)
        .await
        .map_err(|e| unavailable(&e))?;
    let (now_report, last_report) = (
        history.report(this_from, this_until),
        history.report(last_from, last_until),
    );
    let mut body = String::from("<h1>How well support works</h1>");
    body.push_str(&month_section(
        &format!("{} so far", this.text()),
        &now_report,
    ));
    body.push_str(&month_section(&last.text(), &last_report));
    body.push_str(
        "<p class=\"muted\">The same figures: <code>cw-support-api report --json</code>.</p>",
    );
    Ok(page(StatusCode::OK, "Report", &visitor, &body))
}
