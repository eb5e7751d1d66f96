//! Claims: crashes, restarts and concurrent deliveries of one new alarm.

use super::*;

#[test]
fn no_alarm_can_take_the_storm_cases_record() {
    let e = Alarm::parse(json!({
        "AlarmName": STORM_KEY,
        "AlarmDescription": "x",
        "StateChangeTime": "2026-11-20T03:12:45Z"
    }))
    .expect_err("refused");
    assert_eq!(e.code(), "invalid_field");
    // The old key was a visible character: an alarm of that name is just an alarm.
    let a = named("\u{2301}storm", "ALARM", "t1");
    assert_ne!(a.key(), STORM_KEY);
}

#[tokio::test]
async fn claims_left_by_a_stopped_process_are_settled_at_start() {
    let f = fixture_with(CasePolicy {
        claim_ttl: Duration::from_secs(60),
        busy_wait: Duration::from_millis(200),
        ..CasePolicy::default()
    });
    let now = *f.now.lock().expect("clock");
    let later = now + chrono::Duration::seconds(60);
    // One alarm's case was opened before the stop, another's never was.
    let (opened, unopened) = (alarm("ALARM", "t1"), named("other", "ALARM", "t1"));
    let keys = handled_keys(&direct(), &opened);
    let crashed = Claim::new(opened.key(), now, later, None).for_delivery(&opened.name, keys);
    let never = Claim::new(unopened.key(), now, later, None);
    for c in [&crashed, &never] {
        f.backend.ledger.claim(c, now).await.expect("claim");
    }
    let mut case = text::new_case(&opened, &AlarmSettings::default(), &[], &f.service.policy);
    case.communication_body = format!(
        "Reference: {}\n{}",
        crashed.reference, case.communication_body
    )
    .into();
    f.backend.desk.create_case(&case).await.expect("opened");

    let report = f.service.recover_claims().await.expect("recovered");
    assert_eq!((report.adopted, report.released, report.left), (1, 1, 0));
    assert!(f.backend.ledger.claims().await.expect("claims").is_empty());
    // At once, with no lease to wait for: the redelivery of the first is a duplicate
    // of the recovered case, the second opens its case.
    let h = handle(&f, &opened).await;
    assert_eq!(
        (h.outcome, h.case_id.as_deref()),
        (Outcome::Duplicate, Some("dry-run-1"))
    );
    let h = handle(&f, &unopened).await;
    assert_eq!(
        (h.outcome, h.case_id.as_deref()),
        (Outcome::Created, Some("dry-run-2"))
    );
}

#[tokio::test]
async fn a_concurrent_delivery_waits_for_the_claim_and_answers_duplicate() {
    let f = fixture_with(CasePolicy {
        busy_wait: Duration::from_secs(5),
        ..CasePolicy::default()
    });
    let a = alarm("ALARM", "t1");
    // Another instance holds the claim and will record the case in a moment.
    let now = *f.now.lock().expect("clock");
    let other = Claim::new(a.key(), now, now + chrono::Duration::seconds(60), None);
    f.backend.ledger.claim(&other, now).await.expect("claim");
    let ledger = f.backend.ledger.clone();
    let desk = f.backend.desk.clone();
    let keys = handled_keys(&direct(), &a);
    let case = text::new_case(&a, &AlarmSettings::default(), &[], &f.service.policy);
    let finisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = desk.create_case(&case).await.expect("opened");
        let decision = Decision {
            seq: 0,
            at: now,
            delivery_kind: "sqsd".into(),
            delivery_id: None,
            alarm_key: "k".into(),
            alarm_name: "n".into(),
            state: DecisionState::Alarm(crate::alarm::AlarmState::Alarm),
            state_change_time: "t1".into(),
            outcome: Outcome::Created,
            case_id: Some(id.clone()),
            note: None,
        };
        ledger
            .commit(Commit {
                handled_keys: keys,
                decision,
                open_cases: vec![OpenCaseChange::Put(fresh_open_case("k", "n", id, now))],
                claim: Some(other),
                hold: None,
            })
            .await
            .expect("commit");
    });
    let h = handle(&f, &a).await;
    assert_eq!(
        (h.outcome, h.case_id.as_deref()),
        (Outcome::Duplicate, Some("dry-run-1"))
    );
    finisher.await.expect("join");
}

#[tokio::test]
async fn new_cases_carry_their_reference_on_the_first_line() {
    let f = fixture();
    handle(&f, &alarm("ALARM", "t1")).await;
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    let first = case.case.communication_body.lines().next().unwrap_or("");
    assert!(first.starts_with("Reference: cwsa-"), "{first}");
}
