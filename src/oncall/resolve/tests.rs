use chrono::{DateTime, Utc};

use super::*;
use crate::oncall::model::{
    ActiveWindow, Override, PersonId, Rotation, Schedule, ShiftLength, local_time, zone,
};

fn id(s: &str) -> PersonId {
    PersonId::parse(s).expect("id")
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("instant")
        .with_timezone(&Utc)
}

fn rotation(people: &[&str], start: &str, shift: &str, active: Option<&str>) -> Rotation {
    Rotation::new(
        people.iter().map(|p| id(p)).collect(),
        local_time(start).expect("start"),
        ShiftLength::parse(shift).expect("shift"),
        active.map(|w| ActiveWindow::parse(w).expect("window")),
    )
    .expect("rotation")
}

fn schedule(tz: &str, rotations: Vec<Rotation>, overrides: Vec<Override>) -> Schedule {
    Schedule {
        id: "primary".into(),
        time_zone: zone(tz).expect("zone"),
        rotations,
        overrides,
    }
}

fn duty(s: &Schedule, when: &str) -> Option<(String, Option<DateTime<Utc>>)> {
    on_duty(s, at(when)).map(|d| (d.person.to_string(), d.until))
}

#[test]
fn a_weekly_rotation_hands_over_at_its_local_time() {
    let s = schedule(
        "Europe/Berlin",
        vec![rotation(&["alice", "bob"], "2027-03-01T09:00", "1w", None)],
        vec![],
    );
    assert_eq!(duty(&s, "2027-03-01T07:59:59Z"), None, "before the start");
    assert_eq!(
        duty(&s, "2027-03-01T08:00:00Z"),
        Some(("alice".into(), Some(at("2027-03-08T08:00:00Z"))))
    );
    // The third week is alice's again; summer time began on 2027-03-28, so the hand-over at
    // 09:00 Berlin is 07:00 UTC from then on.
    assert_eq!(
        duty(&s, "2027-03-15T12:00:00Z"),
        Some(("alice".into(), Some(at("2027-03-22T08:00:00Z"))))
    );
    assert_eq!(
        duty(&s, "2027-03-22T08:00:00Z"),
        Some(("bob".into(), Some(at("2027-03-29T07:00:00Z"))))
    );
}

/// Daily hand-overs at 09:00 local keep 09:00 through both changes of a year, in Berlin
/// and in New York.
#[test]
fn hand_overs_keep_their_local_time_through_both_daylight_saving_changes() {
    for (tz, days) in [
        (
            "Europe/Berlin",
            // Before and after 2027-03-28 (spring) and 2027-10-31 (autumn).
            [
                ("2027-03-27", "08:00"),
                ("2027-03-28", "07:00"),
                ("2027-10-30", "07:00"),
                ("2027-10-31", "08:00"),
            ],
        ),
        (
            "America/New_York",
            // 2027-03-14 (spring) and 2027-11-07 (autumn).
            [
                ("2027-03-13", "14:00"),
                ("2027-03-14", "13:00"),
                ("2027-11-06", "13:00"),
                ("2027-11-07", "14:00"),
            ],
        ),
    ] {
        let s = schedule(
            tz,
            vec![rotation(
                &["alice", "bob", "carol"],
                "2027-01-01T09:00",
                "1d",
                None,
            )],
            vec![],
        );
        for (day, utc) in days {
            let hand_over = at(&format!("{day}T{utc}:00Z"));
            let before = on_duty(&s, hand_over - chrono::Duration::seconds(1)).expect("someone");
            let after = on_duty(&s, hand_over).expect("someone");
            assert_eq!(
                before.until,
                Some(hand_over),
                "{tz} {day}: the turn ends at 09:00 local"
            );
            assert_ne!(before.person, after.person, "{tz} {day}: a hand-over");
            assert_eq!(
                after.until,
                Some(hand_over + chrono::Duration::hours(24) + dst_shift(tz, day)),
                "{tz} {day}"
            );
        }
    }
}

/// How much longer than 24 h the local day after `day` is (a change that night).
fn dst_shift(tz: &str, day: &str) -> chrono::Duration {
    match (tz, day) {
        ("Europe/Berlin", "2027-03-27") | ("America/New_York", "2027-03-13") => {
            chrono::Duration::hours(-1)
        }
        ("Europe/Berlin", "2027-10-30") | ("America/New_York", "2027-11-06") => {
            chrono::Duration::hours(1)
        }
        _ => chrono::Duration::zero(),
    }
}

#[test]
fn a_hand_over_in_a_gap_moves_to_the_first_valid_instant_and_one_in_an_overlap_happens_once() {
    let s = schedule(
        "Europe/Berlin",
        vec![rotation(&["alice", "bob"], "2027-03-01T02:30", "1d", None)],
        vec![],
    );
    // 2027-03-28 02:30 does not exist in Berlin: the turn begins at 03:00 CEST (01:00 UTC).
    let before = on_duty(&s, at("2027-03-28T00:59:00Z")).expect("someone");
    assert_eq!(before.until, Some(at("2027-03-28T01:00:00Z")));
    // 2027-10-31 02:30 happens twice: the turn begins at the first (00:30 UTC) and does
    // not flip back when 02:30 comes again an hour later.
    let first = on_duty(&s, at("2027-10-31T00:30:00Z")).expect("someone");
    let again = on_duty(&s, at("2027-10-31T01:45:00Z")).expect("someone");
    assert_eq!(first.person, again.person);
    // 01:10 UTC is 02:10 CET, before 02:30 on the wall clock the second time: still the
    // turn that began at the first 02:30.
    let between = on_duty(&s, at("2027-10-31T01:10:00Z")).expect("someone");
    assert_eq!(first.person, between.person);
    assert_eq!(
        first.until,
        Some(at("2027-11-01T01:30:00Z")),
        "the next 02:30, CET"
    );
    let shifts = shifts(&s, at("2027-10-30T12:00:00Z"), at("2027-11-01T12:00:00Z"));
    let starts: Vec<DateTime<Utc>> = shifts.iter().map(|s| s.from).collect();
    assert_eq!(
        starts,
        [
            at("2027-10-30T12:00:00Z"),
            at("2027-10-31T00:30:00Z"),
            at("2027-11-01T01:30:00Z")
        ]
    );
}

#[test]
fn an_override_wins_and_a_later_layer_wins_while_it_applies() {
    let s = schedule(
        "Europe/Berlin",
        vec![
            rotation(&["alice", "bob"], "2027-03-01T09:00", "1w", None),
            rotation(
                &["dave"],
                "2027-03-01T00:00",
                "1w",
                Some("mon-fri 09:00-18:00"),
            ),
        ],
        vec![
            Override::new(
                id("carol"),
                local_time("2027-03-27T18:00").expect("t"),
                local_time("2027-03-29T09:00").expect("t"),
            )
            .expect("override"),
        ],
    );
    // Monday 10:00 Berlin: the business-hours layer, until 18:00.
    assert_eq!(
        duty(&s, "2027-03-01T09:00:00Z"),
        Some(("dave".into(), Some(at("2027-03-01T17:00:00Z"))))
    );
    // Monday 19:00: the weekly rotation again, until Tuesday 09:00 (dave's window).
    assert_eq!(
        duty(&s, "2027-03-01T18:00:00Z"),
        Some(("alice".into(), Some(at("2027-03-02T08:00:00Z"))))
    );
    // Saturday: no window; the override from 18:00 (17:00 UTC) to Monday 09:00 (CEST).
    assert_eq!(
        duty(&s, "2027-03-27T16:00:00Z"),
        Some(("bob".into(), Some(at("2027-03-27T17:00:00Z"))))
    );
    assert_eq!(
        duty(&s, "2027-03-28T12:00:00Z"),
        Some(("carol".into(), Some(at("2027-03-29T07:00:00Z"))))
    );
    assert_eq!(
        duty(&s, "2027-03-29T07:00:00Z").map(|d| d.0),
        Some("dave".into())
    );
}

#[test]
fn a_schedule_of_windows_only_names_nobody_outside_them() {
    let s = schedule(
        "America/New_York",
        vec![rotation(
            &["erin"],
            "2027-01-04T00:00",
            "1d",
            Some("weekdays 09:00-17:00"),
        )],
        vec![],
    );
    assert_eq!(duty(&s, "2027-01-09T15:00:00Z"), None, "a Saturday");
    assert_eq!(
        duty(&s, "2027-01-08T15:00:00Z"),
        Some(("erin".into(), Some(at("2027-01-08T22:00:00Z"))))
    );
}

/// The properties, checked at every 37th minute of a year: with a rotation that always
/// applies exactly one person is on duty; the answer holds until the instant it names, and
/// someone else is on duty then; the shifts cover the year without gap or overlap.
#[test]
fn exactly_one_person_is_on_duty_and_the_answer_holds_until_it_says() {
    for tz in ["Europe/Berlin", "America/New_York"] {
        let s = schedule(
            tz,
            vec![
                rotation(&["alice", "bob", "carol"], "2027-01-01T02:30", "12h", None),
                rotation(
                    &["dave"],
                    "2027-01-01T00:00",
                    "1w",
                    Some("sat,sun 10:00-14:00"),
                ),
            ],
            vec![
                Override::new(
                    id("frank"),
                    local_time("2027-03-28T01:00").expect("t"),
                    local_time("2027-03-28T04:00").expect("t"),
                )
                .expect("override"),
            ],
        );
        let (start, end) = (at("2027-01-01T12:00:00Z"), at("2028-01-01T00:00:00Z"));
        let mut t = start;
        while t < end {
            let d = on_duty(&s, t).unwrap_or_else(|| panic!("{tz} {t}: nobody"));
            let until = d.until.expect("a change within a year");
            assert!(until > t, "{tz} {t}");
            let last = until - chrono::Duration::seconds(1);
            assert_eq!(
                on_duty(&s, last).map(|x| x.person),
                Some(d.person.clone()),
                "{tz} {t}"
            );
            assert_ne!(
                on_duty(&s, until).map(|x| x.person),
                Some(d.person.clone()),
                "{tz} {until}"
            );
            t += chrono::Duration::minutes(37 * 7);
        }
        let all = shifts(&s, start, end);
        assert_eq!(all.first().map(|s| s.from), Some(start));
        assert_eq!(all.last().map(|s| s.until), Some(end));
        for pair in all.windows(2) {
            assert_eq!(pair[0].until, pair[1].from, "{tz}: no gap, no overlap");
            assert_ne!(
                pair[0].person, pair[1].person,
                "{tz}: back-to-back turns merged"
            );
        }
    }
}

#[test]
fn where_overrides_overlap_the_later_listed_wins() {
    let o = |who: &str, from: &str, until: &str| {
        Override::new(
            id(who),
            local_time(from).expect("t"),
            local_time(until).expect("t"),
        )
        .expect("override")
    };
    let s = schedule(
        "UTC",
        vec![rotation(&["alice"], "2027-01-01T00:00", "1w", None)],
        vec![
            o("bob", "2027-02-01T00:00", "2027-02-03T00:00"),
            o("carol", "2027-02-02T00:00", "2027-02-02T12:00"),
        ],
    );
    assert_eq!(
        duty(&s, "2027-02-01T12:00:00Z"),
        Some(("bob".into(), Some(at("2027-02-02T00:00:00Z"))))
    );
    assert_eq!(
        duty(&s, "2027-02-02T06:00:00Z"),
        Some(("carol".into(), Some(at("2027-02-02T12:00:00Z"))))
    );
    assert_eq!(
        duty(&s, "2027-02-02T12:00:00Z"),
        Some(("bob".into(), Some(at("2027-02-03T00:00:00Z"))))
    );
}

/// The properties of the issue, over generated schedules and instants (proptest): zones with
/// DST changes of an hour and of half an hour, shifts from an hour to two weeks, any start.
mod properties {
    use chrono::{NaiveDate, TimeZone};
    use proptest::prelude::*;

    use super::*;

    const ZONES: [&str; 4] = [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "UTC",
    ];

    fn a_rotation() -> impl Strategy<Value = (usize, String, String, i64)> {
        let people = 1..=4usize;
        let start = (0..365 * 24 * 60i64).prop_map(|m| {
            let t = NaiveDate::from_ymd_opt(2027, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("date")
                + chrono::Duration::minutes(m);
            crate::oncall::model::local_time_text(t)
        });
        let shift = prop_oneof![
            (1..=48u32).prop_map(|h| format!("{h}h")),
            (1..=14u32).prop_map(|d| format!("{d}d")),
        ];
        let zone = (0..ZONES.len()).prop_map(|i| ZONES[i].to_owned());
        let offset = 0..(500 * 24 * 60i64);
        (people, start, shift, zone).prop_flat_map(move |(n, start, shift, zone)| {
            (
                Just(n),
                Just(format!("{start}|{shift}")),
                Just(zone),
                offset.clone(),
            )
        })
    }

    fn build(n: usize, start_shift: &str, zone: &str) -> Schedule {
        let names = ["alice", "bob", "carol", "dave"];
        let (start, shift) = start_shift.split_once('|').expect("pair");
        schedule(
            zone,
            vec![rotation(&names[..n], start, shift, None)],
            vec![],
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Exactly one person is on duty once the rotation has started, the answer holds
        /// until the instant it names, and someone else (or, with one person, the same
        /// person's next turn) takes over then.
        #[test]
        fn one_person_on_duty_until_the_named_instant((n, start_shift, zone, minutes) in a_rotation()) {
            let s = build(n, &start_shift, &zone);
            let at = at("2027-01-01T00:00:00Z") + chrono::Duration::minutes(minutes);
            let first = s.rotations[0].start;
            let started = crate::domain::maintenance::local_instant(&s.time_zone, first)
                .is_some_and(|t| t <= at);
            match on_duty(&s, at) {
                None => prop_assert!(!started, "nobody at {at} after the start"),
                Some(d) => {
                    prop_assert!(started);
                    if n > 1 {
                        let until = d.until.expect("a change within a year");
                        prop_assert!(until > at);
                        let before = on_duty(&s, until - chrono::Duration::seconds(1));
                        prop_assert_eq!(before.map(|x| x.person), Some(d.person.clone()));
                        let after = on_duty(&s, until).map(|x| x.person);
                        prop_assert_ne!(after, Some(d.person));
                    }
                }
            }
        }

        /// Every hand-over is at the rotation's local start plus whole shifts, counted in
        /// local time (so a daily hand-over keeps its time of day through DST), or, where that
        /// local time does not exist, at the first valid instant after it.
        #[test]
        fn hand_overs_keep_their_local_time((n, start_shift, zone, minutes) in a_rotation()) {
            prop_assume!(n > 1);
            let s = build(n, &start_shift, &zone);
            let from = at("2027-01-01T00:00:00Z") + chrono::Duration::minutes(minutes);
            let until = from + chrono::Duration::days(60);
            let local_start = s.rotations[0].start;
            let shift = s.rotations[0].shift.local().num_minutes();
            let all = shifts(&s, from, until);
            for pair in all.windows(2) {
                let t = pair[1].from;
                let local = t.with_timezone(&s.time_zone).naive_local();
                let k = (local - local_start).num_minutes().div_euclid(shift);
                let meant = local_start + chrono::Duration::minutes(k * shift);
                let moved = s.time_zone.from_local_datetime(&meant).earliest().is_none();
                prop_assert!(local == meant || moved, "hand-over at {local} ({zone}), meant {meant}");
            }
        }

        /// An override wins, whatever the rotation says.
        #[test]
        fn an_override_wins((n, start_shift, zone, minutes) in a_rotation(), length in 1..(72 * 60i64)) {
            let mut s = build(n, &start_shift, &zone);
            let from = NaiveDate::from_ymd_opt(2027, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("date")
                + chrono::Duration::minutes(minutes);
            let until = from + chrono::Duration::minutes(length);
            s.overrides.push(Override::new(id("erin"), from, until).expect("override"));
            let (Some(a), Some(b)) = (
                crate::domain::maintenance::local_instant(&s.time_zone, from),
                crate::domain::maintenance::local_instant(&s.time_zone, until),
            ) else {
                return Ok(());
            };
            prop_assume!(a < b);
            let mid = a + (b - a) / 2;
            prop_assert_eq!(on_duty(&s, mid).map(|d| d.person), Some(id("erin")));
        }

        /// Where only an active window applies, nobody is on duty outside it.
        #[test]
        fn nobody_outside_the_only_window((n, start_shift, zone, minutes) in a_rotation()) {
            let (start, shift) = start_shift.split_once('|').expect("pair");
            let names = ["alice", "bob", "carol", "dave"];
            let s = schedule(
                &zone,
                vec![rotation(&names[..n], start, shift, Some("mon-fri 09:00-17:00"))],
                vec![],
            );
            let at = at("2027-01-01T00:00:00Z") + chrono::Duration::minutes(minutes);
            let local = at.with_timezone(&s.time_zone).naive_local();
            let window = s.rotations[0].active.as_ref().expect("window");
            if !window.contains(local) {
                prop_assert_eq!(on_duty(&s, at), None);
            }
        }
    }
}
