use super::*;

#[test]
fn globs() {
    assert!(glob_match("*", "anything"));
    assert!(glob_match("prod-*", "prod-db-cpu"));
    assert!(glob_match("*-cpu", "prod-db-cpu"));
    assert!(glob_match("prod-?b-*", "prod-db-cpu"));
    assert!(glob_match("prod-db-cpu", "prod-db-cpu"));
    assert!(!glob_match("prod-*", "staging-db"));
    assert!(!glob_match("prod-db", "prod-db-cpu"));
    assert!(glob_match("*a*b*c*", "xxaxxbxxcxx"));
    assert!(!glob_match("*a*b*c*d", "xxaxxbxxcxx"));
    // No blow-up on adversarial input.
    let text = "a".repeat(5000);
    assert!(!glob_match(&format!("{}b", "*a".repeat(50)), &text));
}

#[test]
fn windows_cover_by_time_and_pattern() {
    let now = Utc::now();
    let w = |id: &str, pattern: Option<&str>, from: i64, to: i64| MaintenanceWindow {
        id: id.into(),
        reason: "db upgrade".into(),
        alarm_pattern: pattern.map(str::to_owned),
        starts_at: now + chrono::Duration::minutes(from),
        ends_at: now + chrono::Duration::minutes(to),
        every: None,
        by: None,
    };
    let windows = vec![
        w("all-later", None, 10, 20),
        w("db", Some("prod-db-*"), -5, 30),
        w("db-long", Some("prod-db-*"), -5, 90),
        w("past", None, -60, -1),
    ];
    assert_eq!(
        covering(&windows, "prod-db-cpu", now).map(|(w, _)| w.id.as_str()),
        Some("db-long")
    );
    assert_eq!(covering(&windows, "prod-api", now), None);
    assert!(w("x", None, 0, 1).describe().contains("db upgrade"));
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

#[test]
fn a_weekly_window_covers_each_occurrence_in_its_time_zone() {
    let rule = Recurrence::parse("sat,sun 02:00", "Europe/Berlin", 120).expect("rule");
    let w = MaintenanceWindow {
        id: "weekly".into(),
        reason: "backups".into(),
        alarm_pattern: None,
        starts_at: at("2026-11-01T00:00:00Z"),
        ends_at: forever(),
        every: Some(rule),
        by: None,
    };
    // Saturday 2026-12-05, 02:00 in Berlin (CET, UTC+1) is 01:00 UTC, for two hours.
    assert_eq!(
        w.active_until(at("2026-12-05T01:30:00Z")),
        Some(at("2026-12-05T03:00:00Z"))
    );
    assert_eq!(w.active_until(at("2026-12-05T03:00:00Z")), None);
    assert_eq!(w.active_until(at("2026-12-04T01:30:00Z")), None, "a Friday");
    // In summer (CEST, UTC+2) the same local time is 00:00 UTC.
    assert!(w.active_at(at("2027-06-05T00:30:00Z")));
    assert!(!w.active_at(at("2027-06-05T02:30:00Z")));
    assert_eq!(
        w.next_start(at("2026-12-01T12:00:00Z")),
        Some(at("2026-12-05T01:00:00Z"))
    );
}

#[test]
fn a_weekly_window_entered_during_an_occurrence_holds_it_now() {
    // Sunday 2026-12-06: "every Sunday 17:39 for an hour", entered at 17:44.
    let entered = at("2026-12-06T17:44:00Z");
    let w = MaintenanceWindow {
        id: "deploy".into(),
        reason: "deploy hour".into(),
        alarm_pattern: None,
        starts_at: entered,
        ends_at: forever(),
        every: Some(Recurrence::parse("Sun 17:39", "UTC", 60).expect("rule")),
        by: None,
    };
    assert_eq!(w.active_until(entered), Some(at("2026-12-06T18:39:00Z")));
    assert_eq!(w.active_until(at("2026-12-06T18:39:00Z")), None);
    assert_eq!(
        w.next_start(at("2026-12-06T18:39:00Z")),
        Some(at("2026-12-13T17:39:00Z"))
    );
    // Nothing before it was entered is covered, even within that occurrence.
    assert_eq!(w.active_until(at("2026-12-06T17:40:00Z")), None);
}

#[test]
fn an_occurrence_in_a_spring_forward_gap_moves_to_the_first_valid_instant() {
    // Berlin, 2027-03-28: clocks go from 02:00 CET to 03:00 CEST; 02:30 does not exist.
    let w = MaintenanceWindow {
        id: "night".into(),
        reason: "backups".into(),
        alarm_pattern: None,
        starts_at: at("2027-03-01T00:00:00Z"),
        ends_at: forever(),
        every: Some(Recurrence::parse("sun 02:30", "Europe/Berlin", 60).expect("rule")),
        by: None,
    };
    // 03:00 CEST is 01:00 UTC: that day's occurrence starts then, for its hour.
    assert_eq!(
        w.next_start(at("2027-03-27T12:00:00Z")),
        Some(at("2027-03-28T01:00:00Z"))
    );
    assert_eq!(
        w.active_until(at("2027-03-28T01:30:00Z")),
        Some(at("2027-03-28T02:00:00Z"))
    );
    // When clocks go back (2026-10-25, 02:30 happens twice) the first one counts.
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
    let twice = NaiveDate::from_ymd_opt(2026, 10, 25)
        .and_then(|d| d.and_hms_opt(2, 30, 0))
        .expect("date");
    assert_eq!(
        local_instant(&berlin, twice),
        Some(at("2026-10-25T00:30:00Z"))
    );
}

#[test]
fn at_takes_what_people_paste() {
    let utc: chrono_tz::Tz = "UTC".parse().expect("zone");
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().expect("zone");
    for (text, tz, want) in [
        ("2026-12-06T18:44:32Z", &berlin, "2026-12-06T18:44:32Z"),
        ("2026-12-06T18:44:32+00:00", &berlin, "2026-12-06T18:44:32Z"),
        (
            "2026-12-06T19:44:32.250+01:00",
            &utc,
            "2026-12-06T18:44:32.250Z",
        ),
        ("2026-12-06 18:44:32Z", &utc, "2026-12-06T18:44:32Z"),
        ("2026-12-06T18:44Z", &berlin, "2026-12-06T18:44:00Z"),
        ("2026-12-06 18:44", &utc, "2026-12-06T18:44:00Z"),
        ("2026-12-06 18:44", &berlin, "2026-12-06T17:44:00Z"),
        ("2026-12-06T18:44", &berlin, "2026-12-06T17:44:00Z"),
        ("2026-12-06T18:44:10", &utc, "2026-12-06T18:44:10Z"),
        (" 2026-12-06T18:44 ", &utc, "2026-12-06T18:44:00Z"),
        // In the spring-forward gap: the first instant after it.
        ("2027-03-28T02:30", &berlin, "2027-03-28T01:00:00Z"),
    ] {
        assert_eq!(parse_at(text, tz), Ok(at(want)), "{text} in {tz}");
    }
    for bad in [
        "tomorrow",
        "2026-13-01T00:00",
        "2026-12-06",
        "18:44",
        "2026-12-06T25:00Z",
    ] {
        let e = parse_at(bad, &utc).expect_err(bad);
        assert!(
            e.to_string().contains("is not a date and time"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn bad_rules_name_what_is_wrong() {
    for (every, tz, want) in [
        ("someday 02:00", "UTC", "is not a day"),
        ("sat 25:00", "UTC", "time of day"),
        ("sat", "UTC", "expected"),
        ("weekdays 22:30 extra", "UTC", "expected `<days> HH:MM`"),
        ("", "UTC", "expected"),
        ("sat 02:00", "Mars/Olympus", "time zone"),
    ] {
        let e = Recurrence::parse(every, tz, 60).expect_err(every);
        assert!(e.to_string().contains(want), "{every} {tz}: {e}");
    }
    assert!(Recurrence::parse("Weekdays 22:30", "America/New_York", 30).is_ok());
    let spaced = Recurrence::parse("sat, sun 03:00", "UTC", 30).expect("spaces after commas");
    assert_eq!(spaced.describe(), "sat,sun 03:00 UTC");
}

#[test]
fn a_rule_is_stored_as_it_always_was() {
    let stored = serde_json::json!({
        "id": "weekly", "reason": "backups",
        "startsAt": "2026-11-01T00:00:00Z", "endsAt": "9999-12-31T23:59:59Z",
        "every": {"days": ["sat", "sun"], "at": "02:00", "tz": "Europe/Berlin", "minutes": 120}
    });
    let w: MaintenanceWindow = serde_json::from_value(stored.clone()).expect("reads");
    let rule = w.every.as_ref().expect("a rule");
    assert_eq!(rule.describe(), "sat,sun 02:00 Europe/Berlin");
    assert_eq!(rule.length(), chrono::Duration::hours(2));
    assert_eq!(serde_json::to_value(&w).expect("writes"), stored);
}

#[test]
fn one_bad_stored_window_does_not_hide_the_others() {
    let window = |id: &str, every: serde_json::Value, ends: &str| {
        serde_json::json!({
            "id": id, "reason": "r", "startsAt": "2026-11-01T00:00:00Z",
            "endsAt": ends, "every": every,
        })
    };
    let rule = |days: &str, tz: &str, minutes: i64| serde_json::json!({"days": [days], "at": "02:00", "tz": tz, "minutes": minutes});
    let far = "2027-01-01T00:00:00Z";
    let kept = usable(vec![
        window("good", rule("sat", "UTC", 60), far),
        window("mars", rule("sat", "Mars/Olympus", 60), far),
        window("someday", rule("someday", "UTC", 60), far),
        window(
            "too-long",
            rule("sat", "UTC", MAX_OCCURRENCE_MINUTES + 1),
            far,
        ),
        window("backwards", serde_json::Value::Null, "2026-10-01T00:00:00Z"),
        serde_json::json!({"id": 7}),
    ]);
    let ids: Vec<&str> = kept.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["good"]);
}

#[test]
fn an_occurrence_in_a_fall_back_overlap_runs_once() {
    // Berlin, 2026-10-25: 02:30 happens twice; the window opens once, at the first.
    let w = MaintenanceWindow {
        id: "night".into(),
        reason: "backups".into(),
        alarm_pattern: None,
        starts_at: at("2026-10-01T00:00:00Z"),
        ends_at: forever(),
        every: Some(Recurrence::parse("sun 02:30", "Europe/Berlin", 30).expect("rule")),
        by: None,
    };
    assert_eq!(
        w.next_start(at("2026-10-24T12:00:00Z")),
        Some(at("2026-10-25T00:30:00Z"))
    );
    assert!(w.active_at(at("2026-10-25T00:45:00Z")));
    // The second 02:30 (01:30 UTC) is not a second occurrence.
    assert!(!w.active_at(at("2026-10-25T01:45:00Z")));
    assert_eq!(
        w.next_start(at("2026-10-25T01:00:00Z")),
        Some(at("2026-11-01T01:30:00Z"))
    );
}

#[test]
fn an_occurrence_lasts_from_a_minute_to_a_week() {
    for minutes in [0, -5, MAX_OCCURRENCE_MINUTES + 1] {
        let e = Recurrence::parse("sat 02:00", "UTC", minutes).expect_err("refused");
        assert_eq!(e, RuleError::Length(minutes));
        assert!(e.to_string().contains("1 to 10080"), "{e}");
    }
    for minutes in [1, MAX_OCCURRENCE_MINUTES] {
        let rule = Recurrence::parse("sat 02:00", "UTC", minutes).expect("a minute to a week");
        assert_eq!(rule.length(), chrono::Duration::minutes(minutes));
    }
}
