//! `report`: how well support worked over a month or the last days (`case::report`), as a
//! table, JSON (stable field names) or CSV (one metric per row).

use std::io::Write;

use chrono::{DateTime, Utc};

use super::{Usage, pretty, write_out};
use crate::case::report::{History, Report, Spread};
use crate::cli::Config;
use crate::paging::callouts::Month;

/// The span asked for: a UTC month, or the last `since` up to now (30 days unless told).
fn span(
    month: Option<&str>,
    since: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Usage> {
    if let Some(m) = month {
        return Ok(Month::parse(m).map_err(Usage)?.span(&chrono_tz::UTC));
    }
    let back = crate::cli::parse_duration(since.unwrap_or("30d"))
        .map_err(|e| Usage(format!("--since: {e}")))?;
    // parse_duration already refuses more than ten years.
    let back = chrono::Duration::from_std(back)
        .ok()
        .filter(|d| *d > chrono::Duration::zero())
        .ok_or_else(|| Usage("--since: a span longer than zero".into()))?;
    Ok((now - back, now))
}

pub(super) async fn run(
    config: &Config,
    month: Option<String>,
    since: Option<String>,
    format: (bool, bool),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (from, until) = span(month.as_deref(), since.as_deref(), Utc::now())?;
    let app = crate::cli::startup::build(config).await?;
    let r = History::since(&app.cases, from).await?.report(from, until);
    match format {
        (true, _) => write_out(out, &pretty(&r)?),
        (_, true) => write!(out, "{}", csv(&r)).map_err(Into::into),
        _ => write_out(out, &table(&r)),
    }
}

fn seconds(s: Option<i64>) -> String {
    s.map(|s| s.to_string()).unwrap_or_default()
}

fn said(s: &Spread) -> String {
    s.said().unwrap_or_else(|| "none".into())
}

fn table(r: &Report) -> String {
    let mut t = format!(
        "from {} until {}\ncases opened       {:>6}  (recovered by themselves within 10 min: {})\n\
         pages opened       {:>6}  acknowledged {}, unanswered {}, resolved {}, still live {}\n\
         to acknowledge     {}\nto resolve         {}\n",
        r.from.format("%Y-%m-%dT%H:%M:%SZ"),
        r.until.format("%Y-%m-%dT%H:%M:%SZ"),
        r.cases.opened,
        r.cases.recovered_by_themselves,
        r.pages.opened,
        r.pages.acknowledged,
        r.pages.unanswered,
        r.pages.resolved,
        r.pages.live,
        said(&r.pages.time_to_acknowledge),
        said(&r.pages.time_to_resolve),
    );
    let b = &r.cases.by_severity;
    t.push_str(&format!(
        "cases by severity  low {}, normal {}, high {}, urgent {}, critical {}, unknown {}\n\
         AWS's first reply (target: met / missed / waiting)\n",
        b.low, b.normal, b.high, b.urgent, b.critical, b.unknown
    ));
    for x in &r.aws_replies {
        t.push_str(&format!(
            "  {:<9} {:>9}: {} / {} / {}{}  {}\n",
            x.severity.as_str(),
            x.target_said().unwrap_or_else(|| "none".into()),
            x.met,
            x.missed,
            x.waiting,
            x.share_said()
                .map(|s| format!(" ({s} met)"))
                .unwrap_or_default(),
            said(&x.time_to_first_reply),
        ));
    }
    if !r.callouts.is_empty() {
        t.push_str("callouts\n");
        for c in &r.callouts {
            t.push_str(&format!(
                "  {:<30} {:>4} ({} outside working hours)\n",
                c.person, c.callouts, c.off_hours
            ));
        }
    }
    if !r.noisiest.is_empty() {
        t.push_str(&format!(
            "noisiest alarms\n{:<40} {:>6} {:>6} {:>20}\n",
            "alarm", "pages", "cases", "recovered by itself"
        ));
        for n in &r.noisiest {
            t.push_str(&format!(
                "{:<40} {:>6} {:>6} {:>20}\n",
                n.alarm, n.pages, n.cases, n.recovered_by_themselves
            ));
        }
    }
    crate::escape::printable(&t).into_owned()
}

fn csv(r: &Report) -> String {
    let mut rows: Vec<(String, String)> = vec![
        ("from".into(), r.from.to_rfc3339()),
        ("until".into(), r.until.to_rfc3339()),
        ("cases.opened".into(), r.cases.opened.to_string()),
        (
            "cases.recovered_by_themselves".into(),
            r.cases.recovered_by_themselves.to_string(),
        ),
        ("pages.opened".into(), r.pages.opened.to_string()),
        (
            "pages.acknowledged".into(),
            r.pages.acknowledged.to_string(),
        ),
        ("pages.unanswered".into(), r.pages.unanswered.to_string()),
        ("pages.resolved".into(), r.pages.resolved.to_string()),
        ("pages.live".into(), r.pages.live.to_string()),
    ];
    for (name, s) in [
        ("time_to_acknowledge", &r.pages.time_to_acknowledge),
        ("time_to_resolve", &r.pages.time_to_resolve),
    ] {
        rows.push((format!("pages.{name}.count"), s.count.to_string()));
        rows.push((
            format!("pages.{name}.median_seconds"),
            seconds(s.median_seconds),
        ));
        rows.push((format!("pages.{name}.p90_seconds"), seconds(s.p90_seconds)));
    }
    rows.extend(severity_rows(r));
    for (i, n) in r.noisiest.iter().enumerate() {
        rows.push((format!("noisiest.{i}.alarm"), n.alarm.clone()));
        rows.push((format!("noisiest.{i}.pages"), n.pages.to_string()));
        rows.push((format!("noisiest.{i}.cases"), n.cases.to_string()));
        rows.push((
            format!("noisiest.{i}.recovered_by_themselves"),
            n.recovered_by_themselves.to_string(),
        ));
    }
    let mut out = String::from("metric,value\n");
    for (k, v) in rows {
        out.push_str(&format!("{k},{}\n", crate::escape::csv_field(&v)));
    }
    out
}

/// The CSV rows of cases by severity, AWS's replies per severity and callouts per person.
fn severity_rows(r: &Report) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let b = &r.cases.by_severity;
    for (name, n) in [
        ("low", b.low),
        ("normal", b.normal),
        ("high", b.high),
        ("urgent", b.urgent),
        ("critical", b.critical),
        ("unknown", b.unknown),
    ] {
        rows.push((format!("cases.by_severity.{name}"), n.to_string()));
    }
    for x in &r.aws_replies {
        let at = |k: &str| format!("aws_replies.{}.{k}", x.severity.as_str());
        rows.push((at("target_seconds"), seconds(x.target_seconds)));
        for (k, n) in [
            ("cases", x.cases),
            ("replied", x.replied),
            ("met", x.met),
            ("missed", x.missed),
            ("waiting", x.waiting),
        ] {
            rows.push((at(k), n.to_string()));
        }
        rows.push((
            at("share_met"),
            x.share_met.map(|s| format!("{s:.4}")).unwrap_or_default(),
        ));
        let s = &x.time_to_first_reply;
        rows.push((at("time_to_first_reply.count"), s.count.to_string()));
        rows.push((
            at("time_to_first_reply.median_seconds"),
            seconds(s.median_seconds),
        ));
        rows.push((
            at("time_to_first_reply.p90_seconds"),
            seconds(s.p90_seconds),
        ));
    }
    for (i, c) in r.callouts.iter().enumerate() {
        rows.push((format!("callouts.{i}.person"), c.person.clone()));
        rows.push((format!("callouts.{i}.callouts"), c.callouts.to_string()));
        rows.push((format!("callouts.{i}.off_hours"), c.off_hours.to_string()));
    }
    rows
}
