//! A known history, every figure asserted.

use super::*;
use crate::domain::delivery::{Delivery, DeliveryKind};
use crate::domain::page::{PageId, Position};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn page(
    id: u64,
    alarm: &str,
    state: PageState,
    opened: &str,
    acked: Option<&str>,
    resolved: Option<&str>,
) -> PageSummary {
    PageSummary {
        id: PageId(id),
        alarm: alarm.into(),
        key: alarm.into(),
        state,
        policy: "default".into(),
        summary: format!("{alarm} is in ALARM"),
        opened_at: t(opened),
        owner: acked.map(|_| "alice".into()),
        position: Position::START,
        next_at: None,
        acknowledged_at: acked.map(t),
        resolved_at: resolved.map(t),
    }
}

fn decision(alarm: &str, outcome: Outcome, case: &str, at: &str) -> Decision {
    Decision::new(
        &Delivery::new(DeliveryKind::Direct),
        alarm,
        alarm,
        outcome,
        t(at),
    )
    .on_case(Some(case.into()))
}

const FROM: &str = "2026-12-01T00:00:00Z";
const UNTIL: &str = "2027-01-01T00:00:00Z";

/// Pages of a known month (and two just outside it).
fn known_pages() -> Vec<PageSummary> {
    use PageState::*;
    vec![
        // Acknowledged after 60 s, resolved after 30 min.
        page(
            1,
            "db",
            Resolved,
            "2026-12-02T03:00:00Z",
            Some("2026-12-02T03:01:00Z"),
            Some("2026-12-02T03:30:00Z"),
        ),
        // Acknowledged after 5 min, still acknowledged.
        page(
            2,
            "db",
            Acknowledged,
            "2026-12-10T03:00:00Z",
            Some("2026-12-10T03:05:00Z"),
            None,
        ),
        // Nobody answered.
        page(3, "api", Unanswered, "2026-12-11T03:00:00Z", None, None),
        // Acknowledged after 20 s, resolved after 2 min.
        page(
            4,
            "api",
            Resolved,
            "2026-12-12T03:00:00Z",
            Some("2026-12-12T03:00:20Z"),
            Some("2026-12-12T03:02:00Z"),
        ),
        // Open now.
        page(5, "disk", Open, "2026-12-31T23:59:59Z", None, None),
        // Outside the month: left out.
        page(
            6,
            "db",
            Resolved,
            "2026-11-30T23:59:59Z",
            Some("2026-12-01T00:10:00Z"),
            Some("2026-12-01T01:00:00Z"),
        ),
        page(7, "db", Open, "2027-01-01T00:00:00Z", None, None),
    ]
}

/// Cases of a known month (and one opened just before it).
fn known_decisions() -> Vec<Decision> {
    vec![
        decision("db", Outcome::Created, "c1", "2026-12-02T03:00:01Z"),
        // Recovered after 9 minutes: by itself.
        decision("db", Outcome::Recovered, "c1", "2026-12-02T03:09:01Z"),
        decision("api", Outcome::Created, "c2", "2026-12-05T10:00:00Z"),
        // Recovered after an hour: someone worked on it.
        decision("api", Outcome::Recovered, "c2", "2026-12-05T11:00:00Z"),
        decision("api", Outcome::Updated, "c2", "2026-12-05T10:30:00Z"),
        decision("queue", Outcome::Created, "c3", "2026-12-20T08:00:00Z"),
        // Opened before the month: not counted, nor its recovery.
        decision("db", Outcome::Created, "c0", "2026-11-30T23:58:00Z"),
        decision("db", Outcome::Recovered, "c0", "2026-12-01T00:01:00Z"),
    ]
}

#[test]
fn a_known_month_gives_every_figure() {
    let (pages, decisions) = (known_pages(), known_decisions());
    let r = report(&decisions, &pages, t(FROM), t(UNTIL));
    assert_eq!(
        r.pages,
        Pages {
            opened: 5,
            acknowledged: 3,
            unanswered: 1,
            resolved: 2,
            live: 2,
            // 20 s, 60 s, 300 s: the median 60, the 90th percentile 300.
            time_to_acknowledge: Spread {
                count: 3,
                median_seconds: Some(60),
                p90_seconds: Some(300)
            },
            // 120 s, 1800 s.
            time_to_resolve: Spread {
                count: 2,
                median_seconds: Some(120),
                p90_seconds: Some(1800)
            },
        }
    );
    assert_eq!(
        r.cases,
        Cases {
            opened: 3,
            recovered_by_themselves: 1
        }
    );
    let noisy: Vec<(&str, usize, usize, usize)> = r
        .noisiest
        .iter()
        .map(|n| {
            (
                n.alarm.as_str(),
                n.pages,
                n.cases,
                n.recovered_by_themselves,
            )
        })
        .collect();
    assert_eq!(
        noisy,
        [
            ("api", 2, 1, 0),
            ("db", 2, 1, 1),
            ("disk", 1, 0, 0),
            ("queue", 0, 1, 0)
        ]
    );
}

#[test]
fn an_empty_month_has_no_times() {
    let r = report(&[], &[], t(FROM), t(UNTIL));
    assert_eq!(r.pages.opened, 0);
    assert_eq!(
        r.pages.time_to_acknowledge,
        Spread {
            count: 0,
            median_seconds: None,
            p90_seconds: None
        }
    );
    assert_eq!(
        r.cases,
        Cases {
            opened: 0,
            recovered_by_themselves: 0
        }
    );
    assert!(r.noisiest.is_empty());
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(
        json["pages"]["time_to_resolve"]["median_seconds"],
        serde_json::Value::Null
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    let s = Spread::of((1..=10).collect());
    assert_eq!((s.median_seconds, s.p90_seconds), (Some(5), Some(9)));
    let one = Spread::of(vec![42]);
    assert_eq!((one.median_seconds, one.p90_seconds), (Some(42), Some(42)));
}
