//! A known history, every figure asserted.

use super::*;
use crate::domain::delivery::{Delivery, DeliveryKind};
use crate::domain::page::{PageId, Position};
use crate::domain::settings::Severity;

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

fn opened(alarm: &str, case: &str, at: &str, severity: Option<Severity>) -> Decision {
    decision(alarm, Outcome::Created, case, at).with_severity(severity)
}

/// AWS replied at `event` (the event's own time), received at `at`.
fn replied(alarm: &str, case: &str, at: &str, event: &str) -> Decision {
    let mut d = decision(alarm, Outcome::Replied, case, at);
    d.state_change_time = event.into();
    d
}

fn callout(person: &str, at: &str, off_hours: bool) -> Callout {
    Callout {
        page: PageId(1),
        person: person.into(),
        schedule: Some("primary".into()),
        at: t(at),
        local_time: at.into(),
        off_hours,
    }
}

/// The history as read on 2 January 2027, with the default (Business and Enterprise)
/// targets.
fn history(decisions: Vec<Decision>, pages: Vec<PageSummary>, callouts: Vec<Callout>) -> History {
    History {
        decisions,
        pages,
        callouts,
        read_at: t("2027-01-02T00:00:00Z"),
        targets: ReplyTargets::default(),
    }
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
    use Severity::*;
    vec![
        opened("db", "c1", "2026-12-02T03:00:01Z", Some(High)),
        // Recovered after 9 minutes: by itself.
        decision("db", Outcome::Recovered, "c1", "2026-12-02T03:09:01Z"),
        // AWS replied after 2 h (the event's time; received later): within 4 h, met.
        replied("db", "c1", "2026-12-02T06:00:00Z", "2026-12-02T05:00:01Z"),
        opened("api", "c2", "2026-12-05T10:00:00Z", Some(Urgent)),
        // Recovered after an hour: someone worked on it.
        decision("api", Outcome::Recovered, "c2", "2026-12-05T11:00:00Z"),
        decision("api", Outcome::Updated, "c2", "2026-12-05T10:30:00Z"),
        // AWS replied after 90 min (no event time: when it was received), then again: the
        // first reply missed urgent's hour.
        replied("api", "c2", "2026-12-05T11:30:00Z", ""),
        replied("api", "c2", "2026-12-05T12:40:00Z", "not a time"),
        // Still open, never replied: normal's 12 h passed long before the month ended.
        opened("queue", "c3", "2026-12-20T08:00:00Z", Some(Normal)),
        // Opened 10 minutes before the month ended: critical's 15 min not yet passed.
        opened("cpu", "c4", "2026-12-31T23:50:00Z", Some(Critical)),
        // Opened before cases kept their severity.
        opened("legacy", "c5", "2026-12-03T00:00:00Z", None),
        // Opened before the month: not counted, nor its recovery or reply.
        opened("db", "c0", "2026-11-30T23:58:00Z", Some(Low)),
        decision("db", Outcome::Recovered, "c0", "2026-12-01T00:01:00Z"),
        replied("db", "c0", "2026-12-01T00:30:00Z", ""),
    ]
}

fn known_callouts() -> Vec<Callout> {
    vec![
        callout("bob", "2026-12-10T03:00:00Z", true),
        callout("alice", "2026-12-02T03:00:00Z", true),
        callout("alice", "2026-12-12T14:00:00Z", false),
        callout("carol", "2026-12-11T03:00:00Z", false),
        // Outside the month.
        callout("bob", "2026-11-30T23:59:59Z", true),
        callout("dave", "2027-01-01T00:00:00Z", true),
    ]
}

/// The known month's report.
fn known_month() -> Report {
    history(known_decisions(), known_pages(), known_callouts()).report(t(FROM), t(UNTIL))
}

#[test]
fn a_known_month_gives_every_page_and_case_figure() {
    let r = known_month();
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
            opened: 5,
            recovered_by_themselves: 1,
            by_severity: BySeverity {
                low: 0,
                normal: 1,
                high: 1,
                urgent: 1,
                critical: 1,
                unknown: 1
            }
        }
    );
}

#[test]
fn a_known_month_holds_each_first_reply_to_its_target() {
    let r = known_month();
    let replies: Vec<_> = r
        .aws_replies
        .iter()
        .map(|x| {
            (
                x.severity.as_str(),
                x.target_seconds,
                (x.cases, x.replied, x.met, x.missed, x.waiting),
                x.share_met,
                (
                    x.time_to_first_reply.count,
                    x.time_to_first_reply.median_seconds,
                    x.time_to_first_reply.p90_seconds,
                ),
            )
        })
        .collect();
    assert_eq!(
        replies,
        [
            ("low", Some(86_400), (0, 0, 0, 0, 0), None, (0, None, None)),
            (
                "normal",
                Some(43_200),
                (1, 0, 0, 1, 0),
                Some(0.0),
                (0, None, None)
            ),
            (
                "high",
                Some(14_400),
                (1, 1, 1, 0, 0),
                Some(1.0),
                (1, Some(7200), Some(7200))
            ),
            (
                "urgent",
                Some(3600),
                (1, 1, 0, 1, 0),
                Some(0.0),
                (1, Some(5400), Some(5400))
            ),
            (
                "critical",
                Some(900),
                (1, 0, 0, 0, 1),
                None,
                (0, None, None)
            ),
        ]
    );
}

#[test]
fn a_known_month_gives_callouts_and_the_noisiest_alarms() {
    let r = known_month();
    assert_eq!(
        r.callouts,
        [
            Callouts {
                person: "alice".into(),
                callouts: 2,
                off_hours: 1
            },
            Callouts {
                person: "bob".into(),
                callouts: 1,
                off_hours: 1
            },
            Callouts {
                person: "carol".into(),
                callouts: 1,
                off_hours: 0
            },
        ]
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
            ("cpu", 0, 1, 0),
            ("disk", 1, 0, 0),
            ("legacy", 0, 1, 0),
            ("queue", 0, 1, 0)
        ]
    );
}

#[test]
fn an_empty_month_has_no_times() {
    let r = history(Vec::new(), Vec::new(), Vec::new()).report(t(FROM), t(UNTIL));
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
            recovered_by_themselves: 0,
            by_severity: BySeverity::default()
        }
    );
    assert!(r.noisiest.is_empty());
    assert!(r.callouts.is_empty());
    // Every severity has its row, with nothing in it.
    assert_eq!(r.aws_replies.len(), 5);
    assert!(
        r.aws_replies
            .iter()
            .all(|x| x.cases == 0 && x.share_met.is_none() && x.time_to_first_reply.count == 0)
    );
    let json = serde_json::to_value(&r).expect("json");
    assert_eq!(
        json["pages"]["time_to_resolve"]["median_seconds"],
        serde_json::Value::Null
    );
}

/// The month so far: a case whose target has not passed by the time the report is made is
/// waiting, not missed, even though the month's end is later.
#[test]
fn the_month_so_far_holds_only_passed_targets_as_missed() {
    let mut h = history(known_decisions(), known_pages(), known_callouts());
    h.read_at = t("2026-12-20T19:00:00Z");
    let r = h.report(t(FROM), t(UNTIL));
    let normal = &r.aws_replies[1];
    assert_eq!(normal.severity, Severity::Normal);
    // c3 opened 11 h before the report: 12 h not yet passed.
    assert_eq!((normal.cases, normal.missed, normal.waiting), (1, 0, 1));
    h.read_at = t("2026-12-20T20:00:01Z");
    let r = h.report(t(FROM), t(UNTIL));
    assert_eq!((r.aws_replies[1].missed, r.aws_replies[1].waiting), (1, 0));
}

/// Other targets (a plan's own), and a severity the plan makes no promise for: its replies
/// are timed but held to nothing.
#[test]
fn configured_targets_are_the_ones_held() {
    let mut h = history(known_decisions(), known_pages(), known_callouts());
    h.targets = ReplyTargets::parse("high=1h, urgent=2h").expect("targets");
    let r = h.report(t(FROM), t(UNTIL));
    let high = &r.aws_replies[2];
    assert_eq!(
        (high.target_seconds, high.met, high.missed),
        (Some(3600), 0, 1)
    );
    let urgent = &r.aws_replies[3];
    assert_eq!(
        (urgent.met, urgent.missed, urgent.share_met),
        (1, 0, Some(1.0))
    );
    let normal = &r.aws_replies[1];
    assert_eq!(
        (
            normal.target_seconds,
            normal.missed,
            normal.waiting,
            normal.share_met
        ),
        (None, 0, 1, None)
    );
}

#[test]
fn reply_targets_refuse_what_they_cannot_hold() {
    for (bad, says) in [
        ("", "no targets"),
        ("high", "expected severity=time"),
        ("severe=1h", "severe"),
        ("high=4", "minutes, hours or days"),
        ("high=4w", "minutes, hours or days"),
        ("high=0m", "minutes, hours or days"),
        ("high=31d", "minutes, hours or days"),
        ("high=4é", "minutes, hours or days"),
        ("high=é", "minutes, hours or days"),
        ("high=", "minutes, hours or days"),
        ("high=4h,high=1h", "given twice"),
    ] {
        let e = ReplyTargets::parse(bad).expect_err(bad);
        assert!(e.contains(says), "{bad:?}: {e}");
    }
    assert_eq!(
        ReplyTargets::parse("none")
            .expect("none")
            .of(Severity::High),
        None
    );
    let d = ReplyTargets::default();
    assert_eq!(d.of(Severity::Critical), Some(Duration::minutes(15)));
    assert_eq!(d.of(Severity::Low), Some(Duration::hours(24)));
}

#[test]
fn percentiles_are_nearest_rank() {
    let s = Spread::of((1..=10).collect());
    assert_eq!((s.median_seconds, s.p90_seconds), (Some(5), Some(9)));
    let one = Spread::of(vec![42]);
    assert_eq!((one.median_seconds, one.p90_seconds), (Some(42), Some(42)));
}

/// The known month as `report --json` prints it: every field name (stable, documented in
/// the README) and every figure.
#[test]
fn the_known_month_as_json() {
    let json = serde_json::to_value(known_month()).expect("json");
    let spread = |count: u64, median: Option<i64>, p90: Option<i64>| serde_json::json!({"count": count, "median_seconds": median, "p90_seconds": p90});
    let none = spread(0, None, None);
    let reply = |severity: &str,
                 target: i64,
                 counts: [u64; 5],
                 share: Option<f64>,
                 first: &serde_json::Value| {
        serde_json::json!({
            "severity": severity, "target_seconds": target, "cases": counts[0],
            "replied": counts[1], "met": counts[2], "missed": counts[3], "waiting": counts[4],
            "share_met": share, "time_to_first_reply": first,
        })
    };
    let noisy = |alarm: &str, pages: u64, cases: u64, by_itself: u64| serde_json::json!({"alarm": alarm, "pages": pages, "cases": cases, "recovered_by_themselves": by_itself});
    assert_eq!(
        json,
        serde_json::json!({
            "from": "2026-12-01T00:00:00Z",
            "until": "2027-01-01T00:00:00Z",
            "cases": {
                "opened": 5,
                "recovered_by_themselves": 1,
                "by_severity": {"low": 0, "normal": 1, "high": 1, "urgent": 1, "critical": 1, "unknown": 1},
            },
            "pages": {
                "opened": 5, "acknowledged": 3, "unanswered": 1, "resolved": 2, "live": 2,
                "time_to_acknowledge": spread(3, Some(60), Some(300)),
                "time_to_resolve": spread(2, Some(120), Some(1800)),
            },
            "aws_replies": [
                reply("low", 86_400, [0, 0, 0, 0, 0], None, &none),
                reply("normal", 43_200, [1, 0, 0, 1, 0], Some(0.0), &none),
                reply("high", 14_400, [1, 1, 1, 0, 0], Some(1.0), &spread(1, Some(7200), Some(7200))),
                reply("urgent", 3600, [1, 1, 0, 1, 0], Some(0.0), &spread(1, Some(5400), Some(5400))),
                reply("critical", 900, [1, 0, 0, 0, 1], None, &none),
            ],
            "noisiest": [
                noisy("api", 2, 1, 0),
                noisy("db", 2, 1, 1),
                noisy("cpu", 0, 1, 0),
                noisy("disk", 1, 0, 0),
                noisy("legacy", 0, 1, 0),
                noisy("queue", 0, 1, 0),
            ],
            "callouts": [
                {"person": "alice", "callouts": 2, "off_hours": 1},
                {"person": "bob", "callouts": 1, "off_hours": 1},
                {"person": "carol", "callouts": 1, "off_hours": 0},
            ],
        })
    );
}
