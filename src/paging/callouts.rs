//! The month's callouts, for remuneration: for each person, how many times they were
//! called out, how many of those fell outside their working hours, and how long they were
//! on duty. The month is each person's own (in their time zone), as their pay is; time on
//! duty counts every schedule that names them, an hour on two schedules at once once.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::Serialize;

use crate::domain::maintenance::local_instant;
use crate::oncall::file::OnCall;
use crate::oncall::shifts;
use crate::ports::pages::Callout;

/// A month, `2026-12`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    first: NaiveDate,
}

impl Month {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a month (YYYY-MM, as 2026-12)");
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let (y, m) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        NaiveDate::from_ymd_opt(y, m, 1)
            .map(|first| Self { first })
            .ok_or_else(bad)
    }

    /// The (UTC) month an instant falls in.
    pub fn of(t: DateTime<Utc>) -> Self {
        Self {
            first: t.date_naive().with_day(1).unwrap_or(t.date_naive()),
        }
    }

    /// The month before.
    pub fn previous(self) -> Self {
        Self {
            first: (self.first - chrono::Duration::days(1))
                .with_day(1)
                .unwrap_or(self.first),
        }
    }

    pub fn text(self) -> String {
        self.first.format("%Y-%m").to_string()
    }

    /// The month's first day and the next month's first.
    fn days(self) -> (NaiveDate, NaiveDate) {
        let next = match self.first.month() {
            12 => NaiveDate::from_ymd_opt(self.first.year() + 1, 1, 1),
            m => NaiveDate::from_ymd_opt(self.first.year(), m + 1, 1),
        };
        (self.first, next.unwrap_or(self.first))
    }

    /// The month in a zone, as instants: from its first midnight to the next month's.
    pub fn span(self, tz: &chrono_tz::Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let (a, b) = self.days();
        let midnight = |d: NaiveDate| {
            let local = d.and_hms_opt(0, 0, 0).unwrap_or_default();
            local_instant(tz, local).unwrap_or_else(|| Utc.from_utc_datetime(&local))
        };
        (midnight(a), midnight(b))
    }

    /// A span that holds the month in every zone (UTC-12 to UTC+14, with a margin).
    pub fn widest(self) -> (DateTime<Utc>, DateTime<Utc>) {
        let (a, b) = self.days();
        let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default());
        (
            at(a) - chrono::Duration::hours(15),
            at(b) + chrono::Duration::hours(15),
        )
    }
}

/// One person's month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonMonth {
    pub person: String,
    pub name: String,
    pub time_zone: String,
    pub callouts: usize,
    pub off_hours_callouts: usize,
    /// Hours on duty in the month, to the minute (two decimals).
    pub on_duty_hours: f64,
}

/// The month's report: everyone in the file, and anyone called out who no longer is.
pub fn report(on_call: &OnCall, callouts: &[Callout], month: Month) -> Vec<PersonMonth> {
    let mut out: Vec<PersonMonth> = on_call
        .people
        .iter()
        .map(|p| {
            let (from, until) = month.span(&p.time_zone);
            let mine: Vec<&Callout> = callouts
                .iter()
                .filter(|c| c.person == p.id.as_str() && c.at >= from && c.at < until)
                .collect();
            PersonMonth {
                person: p.id.to_string(),
                name: p.name.clone(),
                time_zone: p.time_zone.name().to_owned(),
                callouts: mine.len(),
                off_hours_callouts: mine.iter().filter(|c| c.off_hours).count(),
                on_duty_hours: on_duty_minutes(on_call, p.id.as_str(), from, until) as f64 / 60.0,
            }
        })
        .map(|mut m| {
            m.on_duty_hours = (m.on_duty_hours * 100.0).round() / 100.0;
            m
        })
        .collect();
    // Someone called out and since taken out of the file: still paid. Their month is UTC's.
    let (from, until) = month.span(&chrono_tz::UTC);
    for c in callouts.iter().filter(|c| c.at >= from && c.at < until) {
        if on_call.people.iter().any(|p| p.id.as_str() == c.person) {
            continue;
        }
        match out.iter_mut().find(|m| m.person == c.person) {
            Some(m) => {
                m.callouts += 1;
                m.off_hours_callouts += usize::from(c.off_hours);
            }
            None => out.push(PersonMonth {
                person: c.person.clone(),
                name: String::new(),
                time_zone: "UTC".into(),
                callouts: 1,
                off_hours_callouts: usize::from(c.off_hours),
                on_duty_hours: 0.0,
            }),
        }
    }
    out
}

/// Minutes a person is on duty in `[from, until)` in any schedule, overlaps counted once.
fn on_duty_minutes(
    on_call: &OnCall,
    person: &str,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> i64 {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = on_call
        .schedules
        .iter()
        .flat_map(|s| shifts(s, from, until))
        .filter(|s| s.person.as_str() == person)
        .map(|s| (s.from.max(from), s.until.min(until)))
        .filter(|(a, b)| a < b)
        .collect();
    spans.sort();
    let mut total = chrono::Duration::zero();
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (a, b) in spans {
        current = match current {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((a, b)) = current {
        total += b - a;
    }
    total.num_minutes()
}

/// The report as CSV, one row per person. Fields are quoted where they must be, and a
/// field a spreadsheet would run as a formula (`=`, `+`, `-`, `@`) is written as text.
pub fn csv(rows: &[PersonMonth]) -> String {
    use crate::escape::csv_field as field;
    let mut out = String::from("person,name,time_zone,callouts,off_hours_callouts,on_duty_hours\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{:.2}\n",
            field(&r.person),
            field(&r.name),
            field(&r.time_zone),
            r.callouts,
            r.off_hours_callouts,
            r.on_duty_hours
        ));
    }
    out
}

#[cfg(test)]
mod tests;
