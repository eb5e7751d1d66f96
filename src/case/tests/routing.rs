//! Flapping, groups, weekly windows and inhibition.

use super::*;

#[tokio::test]
async fn a_flapping_alarm_is_told_once_then_counted_until_it_settles() {
    let f = fixture_with(CasePolicy {
        flap_limit: 2,
        flap_window: Duration::from_secs(3600),
        ..CasePolicy::default()
    });
    let a = |state: &str, t: &str| named("flappy", state, t);
    assert_eq!(
        handle(&f, &a("ALARM", "t0")).await.outcome,
        Outcome::Created
    );
    let (mut outcomes, mut reasons) = (Vec::new(), Vec::new());
    for i in 1..=5 {
        for (state, t) in [("OK", format!("ok{i}")), ("ALARM", format!("al{i}"))] {
            f.advance(Duration::from_secs(60));
            let h = handle(&f, &a(state, &t)).await;
            outcomes.push(h.outcome);
            reasons.push(h.reason);
        }
    }
    use Outcome::*;
    assert_eq!(
        outcomes,
        [
            Recovered, Updated, Recovered, Updated, Recovered, Updated, Coalesced, Coalesced,
            Coalesced, Coalesced
        ],
        "two cycles sent, the third says it is flapping, then counted, recoveries too"
    );
    for r in &reasons[6..] {
        let r = r.as_deref().unwrap_or_default();
        assert!(
            r.contains("counted, no note: the alarm is flapping") && r.contains("FLAP_WINDOW 1h"),
            "{r}"
        );
    }
    assert!(
        reasons[6]
            .as_deref()
            .is_some_and(|r| r.starts_with("recovery "))
    );
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    let bodies: Vec<&str> = case
        .communications
        .iter()
        .map(|c| c.communication_body.as_str())
        .collect();
    assert_eq!(
        bodies.iter().filter(|b| b.contains("is flapping")).count(),
        1,
        "{bodies:#?}"
    );
    // Recoveries while flapping are counted too: 3 recovery notes, none after it flaps.
    assert_eq!(
        bodies.iter().filter(|b| b.contains("Recovered:")).count(),
        3,
        "{bodies:#?}"
    );
    // An hour later it has settled: a new cycle is news again.
    f.advance(Duration::from_secs(3700));
    assert_eq!(handle(&f, &a("OK", "ok9")).await.outcome, Recovered);
    assert_eq!(handle(&f, &a("ALARM", "al9")).await.outcome, Updated);
}

#[tokio::test]
async fn a_group_shares_one_case_that_recovers_when_every_member_is_ok() {
    let f = fixture_with(CasePolicy {
        storm_cap: 1,
        ..CasePolicy::default()
    });
    for name in ["db-primary-cpu", "db-replica-lag"] {
        f.backend
            .config
            .put(
                name,
                &AlarmConfigRecord {
                    group: Some("database".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("put");
    }
    let first = handle(&f, &named("db-primary-cpu", "ALARM", "t1")).await;
    assert_eq!(
        (first.outcome, first.case_id.as_deref()),
        (Outcome::Created, Some("dry-run-1"))
    );
    // The group is the unit the storm cap counts: the second member joins, no slot.
    let second = handle(&f, &named("db-replica-lag", "ALARM", "t2")).await;
    assert_eq!(
        (second.outcome, second.case_id.as_deref()),
        (Outcome::Updated, Some("dry-run-1"))
    );
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert!(
        case.communications[0]
            .communication_body
            .contains("db-replica-lag also in ALARM (group database)")
    );
    // One member OK while the other is not: counted, nothing sent, and said so.
    let ok1 = handle(&f, &named("db-primary-cpu", "OK", "t3")).await;
    assert_eq!(
        (ok1.outcome, ok1.reason.as_deref()),
        (
            Outcome::Coalesced,
            Some("recovery counted, no note: other members of group database are still in ALARM")
        )
    );
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.communications.len(), 1, "no recovery note yet");
    // The last member OK: the case hears the group recovered.
    let ok2 = handle(&f, &named("db-replica-lag", "OK", "t4")).await;
    assert_eq!((ok2.outcome, ok2.reason), (Outcome::Recovered, None));
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.communications.len(), 2);
    assert!(
        case.communications[1]
            .communication_body
            .contains("Recovered:")
    );
    assert!(f.backend.desk.case("dry-run-2").expect("read").is_none());
}

#[tokio::test]
async fn a_weekly_window_holds_alarms_during_each_occurrence() {
    let f = fixture();
    let now = *f.now.lock().expect("clock");
    let began = now - chrono::Duration::minutes(1);
    let rule = crate::domain::maintenance::Recurrence::parse(
        &format!("daily {}", began.format("%H:%M")),
        "UTC",
        30,
    )
    .expect("rule");
    f.backend
        .config
        .save_windows(&[crate::domain::maintenance::MaintenanceWindow {
            id: "mw-weekly".into(),
            reason: "nightly backups".into(),
            alarm_pattern: None,
            starts_at: now - chrono::Duration::days(2),
            ends_at: crate::domain::maintenance::forever(),
            every: Some(rule),
            by: None,
        }])
        .await
        .expect("save");
    let h = handle(&f, &alarm("ALARM", "t1")).await;
    assert_eq!(h.outcome, Outcome::Suppressed);
    let held = f.backend.ledger.held().await.expect("held");
    assert_eq!(held.len(), 1);
    // Held until this occurrence ends, not until the rule does.
    let ends = held[0].window_ends_at;
    assert!(
        ends > now && ends <= now + chrono::Duration::minutes(30),
        "{ends}"
    );
    // After the occurrence, alarms are heard again.
    f.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        handle(&f, &alarm("ALARM", "t2")).await.outcome,
        Outcome::Created
    );
}

#[tokio::test]
async fn an_inhibited_alarm_tells_its_parents_case_and_opens_none() {
    let f = fixture();
    f.backend
        .config
        .put(
            "prod-db-replica-lag",
            &AlarmConfigRecord {
                inhibited_by: Some("prod-db-primary*, other".into()),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    // With no parent case open, the alarm gets its own case as usual.
    let alone = handle(&f, &named("prod-db-replica-lag", "ALARM", "t0")).await;
    assert_eq!(
        (alone.outcome, alone.case_id.as_deref()),
        (Outcome::Created, Some("dry-run-1"))
    );
    handle(&f, &named("prod-db-replica-lag", "OK", "t0b")).await;
    f.backend
        .desk
        .resolve_case("dry-run-1")
        .await
        .expect("resolve");
    f.service.reconcile(&direct()).await.expect("reconcile");

    let parent = handle(&f, &named("prod-db-primary-cpu", "ALARM", "t1")).await;
    assert_eq!(parent.case_id.as_deref(), Some("dry-run-2"));
    let child = handle(&f, &named("prod-db-replica-lag", "ALARM", "t2")).await;
    assert_eq!(
        (child.outcome, child.case_id.as_deref()),
        (Outcome::Suppressed, Some("dry-run-2"))
    );
    assert!(
        f.backend.desk.case("dry-run-3").expect("read").is_none(),
        "no case of its own"
    );
    let case = f
        .backend
        .desk
        .case("dry-run-2")
        .expect("read")
        .expect("case");
    assert_eq!(case.communications.len(), 1);
    assert!(
        case.communications[0].communication_body.contains(
            "prod-db-replica-lag is also in ALARM (it is inhibited by prod-db-primary-cpu"
        )
    );
    // Its repeats go to the parent's case within the cooldown, counted.
    let again = handle(&f, &named("prod-db-replica-lag", "ALARM", "t3")).await;
    assert_eq!(
        (again.outcome, again.case_id.as_deref()),
        (Outcome::Coalesced, Some("dry-run-2"))
    );
}
