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
            delivery_kind: DeliveryKind::Sqsd,
            delivery_id: None,
            alarm_key: "k".into(),
            alarm_name: "n".into(),
            state: DecisionState::Alarm(crate::domain::alarm::AlarmState::Alarm),
            state_change_time: "t1".into(),
            outcome: Outcome::Created,
            case_id: Some(id.clone()),
            note: None,
            severity: None,
        };
        ledger
            .commit(Commit {
                notices: Vec::new(),
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

/// A graph that is drawn only when the test says so, and says when it is being drawn: it
/// holds a new alarm between its claim and CreateCase.
struct SlowGraph {
    drawing: tokio::sync::Notify,
    finish: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl crate::ports::graph::Grapher for SlowGraph {
    async fn graph(
        &self,
        _alarm: &Alarm,
    ) -> Result<crate::ports::graph::Attachment, crate::ports::PortError> {
        self.drawing.notify_one();
        self.finish.notified().await;
        Err("no graph in this test".into())
    }
}

#[tokio::test]
async fn a_stop_lets_go_of_a_claim_whose_case_was_not_yet_sent() {
    let f = fixture();
    let graph = Arc::new(SlowGraph {
        drawing: tokio::sync::Notify::new(),
        finish: tokio::sync::Notify::new(),
    });
    let stopping = Arc::new(
        CaseService::new(
            f.backend.config.clone(),
            f.backend.ledger.clone(),
            f.backend.desk.clone(),
            CasePolicy::default(),
        )
        .with_grapher(graph.clone()),
    );
    let a = alarm("ALARM", "t1");
    let work = {
        let (service, a) = (stopping.clone(), a.clone());
        tokio::spawn(async move { service.handle(&direct(), &a).await })
    };
    graph.drawing.notified().await;
    assert_eq!(f.backend.ledger.claims().await.expect("claims").len(), 1);

    // The grace ran out: the claim goes at once, nothing having reached the desk under it.
    let stopped = stopping.stop_claims().await;
    assert_eq!(
        stopped,
        StoppedClaims {
            released: 1,
            lapsing: 0
        }
    );
    assert!(f.backend.ledger.claims().await.expect("claims").is_empty());
    // The work may still run until the process exits: it opens nothing any more.
    graph.finish.notify_one();
    let refused = work.await.expect("joined");
    assert!(matches!(refused, Err(CaseError::Stopping)), "{refused:?}");
    assert!(f.backend.desk.case("dry-run-1").expect("desk").is_none());

    // The next instance takes the redelivery up at once: no claim to wait out.
    let h = handle(&f, &a).await;
    assert_eq!(
        (h.outcome, h.case_id.as_deref()),
        (Outcome::Created, Some("dry-run-1"))
    );
}
