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

/// Cases by severity, and AWS's first reply on them against the plan's target.
fn replies(r: &Report) -> String {
    let b = &r.cases.by_severity;
    let mut out = String::from(
        "<h3>Cases by severity, and AWS's first reply</h3><table class=\"replies\"><tr><th>Severity</th>\
         <th>Cases</th><th>Target</th><th>Met</th><th>Missed</th><th>Waiting</th><th>Share met</th><th>Time to first reply</th></tr>",
    );
    for x in &r.aws_replies {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            x.severity.as_str(),
            x.cases,
            x.target_said().unwrap_or_else(|| "-".into()),
            x.met,
            x.missed,
            x.waiting,
            x.share_said().unwrap_or_else(|| "-".into()),
            spread(&x.time_to_first_reply),
        ));
    }
    if b.unknown > 0 {
        out.push_str(&format!(
            "<tr><td>unknown</td><td>{}</td><td colspan=\"6\">opened before cases kept their severity</td></tr>",
            b.unknown
        ));
    }
    out.push_str("</table>");
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
    out.push_str(&replies(r));
    if !r.callouts.is_empty() {
        out.push_str("<h3>Callouts</h3><table class=\"callouts\"><tr><th>Person</th><th>Called out</th><th>Outside working hours</th></tr>");
        for c in &r.callouts {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(&c.person),
                c.callouts,
                c.off_hours
            ));
        }
        out.push_str("</table>");
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::report::{BySeverity, Callouts, Cases, Pages, Replies};
    use crate::domain::settings::Severity;

    #[test]
    fn a_month_shows_replies_per_severity_and_callouts_escaped() {
        let none = Spread::of(Vec::new());
        let r = Report {
            from: Utc::now(),
            until: Utc::now(),
            cases: Cases {
                opened: 2,
                recovered_by_themselves: 0,
                by_severity: BySeverity {
                    high: 1,
                    unknown: 1,
                    ..Default::default()
                },
            },
            pages: Pages {
                opened: 0,
                acknowledged: 0,
                unanswered: 0,
                resolved: 0,
                live: 0,
                time_to_acknowledge: none.clone(),
                time_to_resolve: none.clone(),
            },
            aws_replies: Severity::ALL
                .into_iter()
                .map(|severity| Replies {
                    severity,
                    target_seconds: (severity == Severity::High).then_some(14_400),
                    cases: usize::from(severity == Severity::High),
                    replied: usize::from(severity == Severity::High),
                    met: 0,
                    missed: usize::from(severity == Severity::High),
                    waiting: 0,
                    share_met: (severity == Severity::High).then_some(0.0),
                    time_to_first_reply: none.clone(),
                })
                .collect(),
            noisiest: Vec::new(),
            callouts: vec![Callouts {
                person: "<script>x</script>".into(),
                callouts: 3,
                off_hours: 2,
            }],
        };
        let html = month_section("2026-12", &r);
        assert!(
            html.contains("<tr><td>high</td><td>1</td><td>240 min</td><td>0</td><td>1</td><td>0</td><td>0%</td><td>-</td></tr>"),
            "{html}"
        );
        assert!(html.contains("<tr><td>unknown</td><td>1</td>"), "{html}");
        assert!(
            html.contains("<tr><td>&lt;script&gt;x&lt;/script&gt;</td><td>3</td><td>2</td></tr>"),
            "{html}"
        );
    }
}
