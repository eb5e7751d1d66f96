//! Storm control and maintenance windows.

use super::*;

#[tokio::test]
async fn a_storm_is_folded_into_one_storm_case() {
    let f = fixture_with(CasePolicy {
        storm_cap: 2,
        ..CasePolicy::default()
    });
    let outcomes: Vec<Handled> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(handle(&f, &named(&format!("svc-{i}"), "ALARM", "t1")).await);
        }
        v
    };
    let ids: Vec<&str> = outcomes
        .iter()
        .filter_map(|h| h.case_id.as_deref())
        .collect();
    assert_eq!(
        ids,
        vec![
            "dry-run-1",
            "dry-run-2",
            "dry-run-3",
            "dry-run-3",
            "dry-run-3"
        ]
    );
    assert_eq!(
        outcomes[2].outcome,
        Outcome::Created,
        "the storm case is opened"
    );
    assert_eq!(outcomes[3].outcome, Outcome::Folded);
    assert_eq!(outcomes[4].outcome, Outcome::Folded);
    let storm = f
        .backend
        .desk
        .case("dry-run-3")
        .expect("read")
        .expect("storm case");
    assert!(
        storm.case.subject.starts_with("Alarm storm"),
        "{}",
        storm.case.subject
    );
    assert!(storm.case.communication_body.contains("svc-2"));
    assert_eq!(storm.communications.len(), 2, "one per folded alarm");
    assert!(storm.communications[1].communication_body.contains("svc-4"));
    // Every alarm is in the ledger with what was done with it.
    let decisions = f
        .service
        .ledger()
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert_eq!(decisions.len(), 5);
    // A folded alarm's later news goes to the storm case too.
    f.advance(Duration::from_secs(3601));
    let again = handle(&f, &named("svc-4", "ALARM", "t2")).await;
    assert_eq!(
        (again.outcome, again.case_id.as_deref()),
        (Outcome::Updated, Some("dry-run-3"))
    );
    // An hour later the storm is over: new alarms get their own case again.
    let calm = handle(&f, &named("svc-9", "ALARM", "t3")).await;
    assert_eq!(
        (calm.outcome, calm.case_id.as_deref()),
        (Outcome::Created, Some("dry-run-4"))
    );
}

#[tokio::test]
async fn maintenance_suppresses_and_raises_what_is_still_alarming_when_it_ends() {
    let f = fixture();
    window(&f, Some("prod-db-*"), 30).await;
    let held = handle(&f, &named("prod-db-cpu", "ALARM", "t1")).await;
    assert_eq!(held.outcome, Outcome::Suppressed);
    let other = handle(&f, &named("prod-api", "ALARM", "t1")).await;
    assert_eq!(
        other.outcome,
        Outcome::Created,
        "the window covers only its pattern"
    );
    let recovered = handle(&f, &named("prod-db-disk", "ALARM", "t1")).await;
    assert_eq!(recovered.outcome, Outcome::Suppressed);
    handle(&f, &named("prod-db-disk", "OK", "t2")).await;
    let decisions = f
        .service
        .ledger()
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert!(decisions.iter().any(|d| {
        d.note
            .as_deref()
            .is_some_and(|n| n.contains("database upgrade"))
    }));

    // While the window lasts, the periodic task raises nothing.
    let task = Delivery::new(DeliveryKind::Sqsd);
    assert!(
        f.service
            .reconcile(&task)
            .await
            .expect("reconcile")
            .raised
            .is_empty()
    );
    f.advance(Duration::from_secs(31 * 60));
    let report = f.service.reconcile(&task).await.expect("reconcile");
    assert_eq!(report.raised.len(), 1, "{report:?}");
    assert_eq!(report.raised[0].alarm, "prod-db-cpu");
    assert_eq!(report.raised[0].outcome, Outcome::Created);
    // Raised once only.
    assert!(
        f.service
            .reconcile(&task)
            .await
            .expect("reconcile")
            .raised
            .is_empty()
    );
    assert!(f.service.ledger().held().await.expect("held").is_empty());
}

#[tokio::test]
async fn an_alarm_that_fires_again_after_its_window_is_not_raised_twice() {
    let f = fixture();
    window(&f, None, 10).await;
    handle(&f, &named("prod-db-cpu", "ALARM", "t1")).await;
    f.advance(Duration::from_secs(11 * 60));
    let fresh = handle(&f, &named("prod-db-cpu", "ALARM", "t2")).await;
    assert_eq!(fresh.outcome, Outcome::Created);
    let report = f
        .service
        .reconcile(&Delivery::new(DeliveryKind::Sqsd))
        .await
        .expect("reconcile");
    assert!(report.raised.is_empty(), "{report:?}");
}

#[tokio::test]
async fn a_case_opened_before_a_crash_is_found_not_opened_again() {
    let f = fixture_with(CasePolicy {
        claim_ttl: Duration::from_secs(60),
        busy_wait: Duration::from_millis(200),
        ..CasePolicy::default()
    });
    let a = alarm("ALARM", "t1");
    // An instance claims the alarm, opens the case, and dies before recording it.
    let now = *f.now.lock().expect("clock");
    let crashed = Claim::new(a.key(), now, now + chrono::Duration::seconds(60), None);
    assert!(matches!(
        f.backend.ledger.claim(&crashed, now).await.expect("claim"),
        ClaimOutcome::Taken { .. }
    ));
    let mut case = f.service.plan(&direct(), &a).await.expect("plan");
    let Action::Create {
        case: ref mut new_case,
        ..
    } = case.action
    else {
        panic!("expected a new case");
    };
    new_case.communication_body = format!(
        "Reference: {} (cw-support-api)\n{}",
        crashed.reference, new_case.communication_body
    )
    .into();
    f.backend.desk.create_case(new_case).await.expect("opened");

    // The redelivery waits while the claim lives...
    let busy = f.service.handle(&direct(), &a).await;
    assert!(matches!(busy, Err(CaseError::Busy)), "{busy:?}");
    // ...then takes it over and adopts the case instead of opening a second one.
    f.advance(Duration::from_secs(61));
    let h = handle(&f, &a).await;
    assert_eq!(
        (h.outcome, h.case_id.as_deref()),
        (Outcome::Created, Some("dry-run-1"))
    );
    assert!(f.backend.desk.case("dry-run-2").expect("read").is_none());
    let decisions = f
        .service
        .ledger()
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert!(
        decisions[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("before a crash")
    );
    assert_eq!(handle(&f, &a).await.outcome, Outcome::Duplicate);
}

#[tokio::test]
async fn a_case_reopened_after_support_resolved_it_counts_against_the_cap() {
    let f = fixture_with(CasePolicy {
        storm_cap: 1,
        update_cooldown: Duration::ZERO,
        ..CasePolicy::default()
    });
    let first = handle(&f, &named("svc-1", "ALARM", "t1")).await;
    assert_eq!(first.outcome, Outcome::Created);
    f.backend
        .desk
        .resolve_case("dry-run-1")
        .await
        .expect("resolved");
    // The update finds the case gone and needs a new one: the hour's one slot is
    // taken, so it goes to the storm case instead.
    let again = handle(&f, &named("svc-1", "ALARM", "t2")).await;
    assert_eq!(again.outcome, Outcome::Created);
    let storm = f
        .backend
        .desk
        .case("dry-run-2")
        .expect("read")
        .expect("storm case");
    assert!(
        storm.case.subject.starts_with("Alarm storm"),
        "{}",
        storm.case.subject
    );
    let next = handle(&f, &named("svc-2", "ALARM", "t1")).await;
    assert_eq!(
        (next.outcome, next.case_id.as_deref()),
        (Outcome::Folded, Some("dry-run-2"))
    );
}
