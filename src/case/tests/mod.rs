//! The case logic's behaviour, against the local backends (a temporary directory, no
//! network): the decision table here, the rest by theme in the sibling files.
use super::*;
use crate::backend::local::LocalBackend;
use crate::domain::delivery::DeliveryKind;
use crate::domain::outcome::DecisionState;
use crate::domain::settings::{AlarmConfigRecord, CcField};
use serde_json::json;
use std::sync::Mutex as StdMutex;

use super::records::{fresh_open_case, handled_keys};
use crate::domain::settings::AlarmSettings;
use crate::ports::desk::DeskError;
use crate::ports::ledger::{Claim, ClaimOutcome, Commit, OpenCase, OpenCaseChange};

mod claims;
mod codes;
mod routing;
mod storm;

struct Fixture {
    _dir: tempfile::TempDir,
    backend: LocalBackend,
    now: Arc<StdMutex<DateTime<Utc>>>,
    service: CaseService,
}

fn fixture_with(policy: CasePolicy) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = LocalBackend::open(dir.path()).expect("backend");
    let now = Arc::new(StdMutex::new(Utc::now()));
    let clock = now.clone();
    let service = CaseService::new(
        backend.config.clone(),
        backend.ledger.clone(),
        backend.desk.clone(),
        policy,
    )
    .with_clock(move || *clock.lock().expect("clock"));
    Fixture {
        _dir: dir,
        backend,
        now,
        service,
    }
}

fn fixture() -> Fixture {
    fixture_with(CasePolicy::default())
}

impl Fixture {
    fn advance(&self, d: Duration) {
        let mut n = self.now.lock().expect("clock");
        *n += chrono::Duration::from_std(d).expect("duration");
    }
}

fn alarm(state: &str, time: &str) -> Alarm {
    Alarm::parse(json!({
        "AlarmName": "db-cpu",
        "AlarmDescription": "CPU high",
        "NewStateValue": state,
        "OldStateValue": "OK",
        "StateChangeTime": time,
        "AlarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:db-cpu",
        "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/RDS"}
    }))
    .expect("alarm")
}

fn direct() -> Delivery {
    Delivery::new(DeliveryKind::Direct)
}

async fn handle(f: &Fixture, a: &Alarm) -> Handled {
    f.service.handle(&direct(), a).await.expect("handled")
}

fn named(name: &str, state: &str, time: &str) -> Alarm {
    Alarm::parse(json!({
        "AlarmName": name,
        "NewStateValue": state,
        "StateChangeTime": time,
        "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"),
    }))
    .expect("alarm")
}

async fn window(f: &Fixture, pattern: Option<&str>, minutes: i64) {
    let now = *f.now.lock().expect("clock");
    f.backend
        .config
        .save_windows(&[crate::domain::maintenance::MaintenanceWindow {
            id: "mw-1".into(),
            reason: "database upgrade".into(),
            alarm_pattern: pattern.map(str::to_owned),
            starts_at: now - chrono::Duration::minutes(1),
            ends_at: now + chrono::Duration::minutes(minutes),
            every: None,
            by: None,
        }])
        .await
        .expect("save");
}

#[tokio::test]
async fn alarm_opens_a_case_with_the_settings() {
    let f = fixture();
    f.backend
        .config
        .put(
            "db-cpu",
            &AlarmConfigRecord {
                priority: Some("urgent".into()),
                action: Some(r#"{"runbook":"failover"}"#.into()),
                ccemail: Some(CcField::One("ops@example.com".into())),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    let h = handle(&f, &alarm("ALARM", "t1")).await;
    assert_eq!(h.outcome, Outcome::Created);
    let id = h.case_id.expect("case id");
    assert_eq!(id, "dry-run-1");
    let case = f.backend.desk.case(&id).expect("read").expect("recorded");
    assert_eq!(case.case.subject, "db-cpu");
    assert_eq!(case.case.severity_code.as_str(), "urgent");
    assert_eq!(case.case.service_code, "amazon-elastic-compute-cloud-linux");
    assert_eq!(case.case.category_code, "other");
    assert_eq!(case.case.language, "en");
    assert_eq!(case.case.cc_email_addresses[0].as_str(), "ops@example.com");
    let body = &case.case.communication_body;
    assert!(body.contains("Alarm: db-cpu"));
    assert!(body.contains("Description: CPU high"));
    assert!(body.contains("State: ALARM (was OK)"));
    assert!(body.contains("Region: us-east-1"));
    assert!(
        body.contains("\"runbook\": \"failover\""),
        "action pretty-printed"
    );
    assert!(
        body.contains("\"AlarmName\": \"db-cpu\""),
        "raw JSON quoted"
    );
}

#[tokio::test]
async fn repeat_within_cooldown_is_coalesced_then_updated() {
    let f = fixture();
    let first = handle(&f, &alarm("ALARM", "t1")).await;
    f.advance(Duration::from_secs(60));
    let again = handle(&f, &alarm("ALARM", "t2")).await;
    assert_eq!(again.outcome, Outcome::Coalesced);
    assert_eq!(again.case_id, first.case_id);
    let open = f
        .backend
        .ledger
        .open_case(alarm("ALARM", "t").key())
        .await
        .expect("read")
        .expect("open");
    assert_eq!(open.coalesced, 1);

    f.advance(Duration::from_secs(600));
    let later = handle(&f, &alarm("ALARM", "t3")).await;
    assert_eq!(later.outcome, Outcome::Updated);
    assert_eq!(later.case_id, first.case_id);
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.communications.len(), 1);
    assert!(
        case.communications[0]
            .communication_body
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("It's happened again!"))
    );
    assert!(
        case.communications[0]
            .communication_body
            .contains("1 further notification")
    );
}

#[tokio::test]
async fn ok_recovers_the_open_case_and_is_otherwise_ignored() {
    let f = fixture();
    assert_eq!(
        handle(&f, &alarm("OK", "t0")).await.outcome,
        Outcome::Ignored
    );
    assert_eq!(
        handle(&f, &alarm("INSUFFICIENT_DATA", "t0b")).await.outcome,
        Outcome::Ignored
    );
    let created = handle(&f, &alarm("ALARM", "t1")).await;
    let rec = handle(&f, &alarm("OK", "t2")).await;
    assert_eq!(rec.outcome, Outcome::Recovered);
    assert_eq!(rec.case_id, created.case_id);
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert!(
        case.communications[0]
            .communication_body
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("Recovered:"))
    );
    assert!(!case.resolved, "never closed unless configured");
    // A new ALARM after recovery tells support at once, cooldown or not.
    let back = handle(&f, &alarm("ALARM", "t3")).await;
    assert_eq!(back.outcome, Outcome::Updated);
    assert_eq!(back.case_id, created.case_id);
}

#[tokio::test]
async fn recovery_note_can_be_off_and_close_on_recovery_resolves() {
    let f = fixture_with(CasePolicy {
        recovery_note: false,
        ..CasePolicy::default()
    });
    handle(&f, &alarm("ALARM", "t1")).await;
    // Nothing is added to the case, and the answer and the ledger say so.
    let ok = handle(&f, &alarm("OK", "t2")).await;
    assert_eq!(
        (ok.outcome, ok.reason.as_deref()),
        (
            Outcome::Coalesced,
            Some("recovery counted, no note: RECOVERY_NOTE is off")
        )
    );
    let recorded = f
        .backend
        .ledger
        .decisions(&crate::ports::ledger::DecisionFilter::default())
        .await
        .expect("decisions");
    assert_eq!(recorded[0].note, ok.reason);
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert!(case.communications.is_empty());

    let f = fixture_with(CasePolicy {
        close_on_recovery: true,
        ..CasePolicy::default()
    });
    handle(&f, &alarm("ALARM", "t1")).await;
    assert_eq!(
        handle(&f, &alarm("OK", "t2")).await.outcome,
        Outcome::Recovered
    );
    assert!(
        f.backend
            .desk
            .case("dry-run-1")
            .expect("read")
            .expect("case")
            .resolved
    );
    let next = handle(&f, &alarm("ALARM", "t3")).await;
    assert_eq!(next.outcome, Outcome::Created);
    assert_eq!(next.case_id.as_deref(), Some("dry-run-2"));
}

#[tokio::test]
async fn muted_alarms_are_suppressed() {
    let f = fixture();
    f.backend
        .config
        .put(
            "db-cpu",
            &AlarmConfigRecord {
                enabled: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    let h = handle(&f, &alarm("ALARM", "t1")).await;
    assert_eq!(h.outcome, Outcome::Suppressed);
    assert_eq!(h.case_id, None);
    assert!(f.backend.desk.case("dry-run-1").expect("read").is_none());
}

#[tokio::test]
async fn same_event_or_same_delivery_is_a_duplicate() {
    let f = fixture();
    let a = alarm("ALARM", "t1");
    let first = handle(&f, &a).await;
    let dup = handle(&f, &a).await;
    assert_eq!(dup.outcome, Outcome::Duplicate);
    assert_eq!(dup.case_id, first.case_id);

    // Same SQS message id, different event: still the same delivery.
    let mut d = Delivery::new(DeliveryKind::Sqsd);
    d.sqsd_message_id = Some("msg-1".into());
    let b = alarm("ALARM", "t2");
    f.advance(Duration::from_secs(3600));
    assert_eq!(
        f.service.handle(&d, &b).await.expect("ok").outcome,
        Outcome::Updated
    );
    let c = alarm("ALARM", "t3");
    assert_eq!(
        f.service.handle(&d, &c).await.expect("ok").outcome,
        Outcome::Duplicate
    );
    let decisions = f
        .backend
        .ledger
        .decisions(&Default::default())
        .await
        .expect("decisions");
    assert_eq!(decisions.len(), 4, "every decision is recorded");
    assert_eq!(decisions[0].outcome, Outcome::Duplicate);
    assert_eq!(decisions[0].delivery_id.as_deref(), Some("msg-1"));
}

#[tokio::test]
async fn concurrent_deliveries_of_one_new_alarm_open_one_case() {
    let f = Arc::new(fixture());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut d = Delivery::new(DeliveryKind::Sqsd);
            d.sqsd_message_id = Some(format!("m{i}"));
            f.service
                .handle(&d, &alarm("ALARM", "t1"))
                .await
                .expect("ok")
                .outcome
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("join"));
    }
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Created).count(),
        1
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::Duplicate)
            .count(),
        19
    );
}

#[tokio::test]
async fn plan_changes_nothing() {
    let f = fixture();
    let a = alarm("ALARM", "t1");
    let p1 = f.service.plan(&direct(), &a).await.expect("plan");
    let p2 = f.service.plan(&direct(), &a).await.expect("plan");
    assert_eq!(p1.outcome, Outcome::Created);
    assert_eq!(p2.outcome, Outcome::Created);
    assert!(f.backend.desk.case("dry-run-1").expect("read").is_none());
}

#[tokio::test]
async fn malformed_settings_use_defaults_and_say_so_in_the_case() {
    let f = fixture();
    f.backend
        .config
        .put(
            "db-cpu",
            &AlarmConfigRecord {
                priority: Some("p1".into()),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    handle(&f, &alarm("ALARM", "t1")).await;
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.case.severity_code.as_str(), "low");
    assert!(case.case.communication_body.contains("Configuration notes"));
    assert!(
        case.case
            .communication_body
            .contains("unknown priority \"p1\"")
    );
}

#[tokio::test]
async fn huge_alarms_are_truncated_to_what_support_accepts() {
    let f = fixture();
    // Every field within its bound, the whole (quoted in the case) beyond Support's.
    let a = Alarm::parse(json!({
        "AlarmName": "big", "StateChangeTime": "t",
        "AlarmDescription": "x".repeat(1024),
        "NewStateReasonData": "y".repeat(10_000),
        "Extra": "z".repeat(10_000),
    }))
    .expect("alarm");
    handle(&f, &a).await;
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert!(case.case.communication_body.chars().count() <= crate::ports::desk::MAX_BODY_CHARS);
    assert!(case.case.communication_body.contains("characters omitted]"));
}

/// Facts as the stores would give them for an alarm nobody has seen.
fn first_sight() -> Facts {
    Facts {
        now: Utc::now(),
        settings: AlarmSettings::default(),
        notes: Vec::new(),
        earlier: None,
        window: None,
        open: None,
        others: Vec::new(),
        slots_taken: 0,
        storm: None,
    }
}

#[test]
fn deciding_needs_no_stores_and_names_the_storm_fallback() {
    let policy = CasePolicy::default();
    let a = alarm("ALARM", "2026-12-02T01:00:00.000+0000");
    let plan = decide(&a, first_sight(), &policy);
    assert_eq!(plan.outcome, Outcome::Created);
    let Action::Create { case, if_full } = &plan.action else {
        panic!("expected a new case, got {plan:?}")
    };
    assert_eq!(case.subject, "db-cpu");
    assert!(
        if_full.case.subject.starts_with("Alarm storm"),
        "{if_full:?}"
    );
    assert!(
        if_full
            .communication
            .communication_body
            .contains("Another alarm in the storm")
    );

    // The hour's slots taken and a storm case open: folded, with a new storm case if gone.
    let storm = fresh_open_case(STORM_KEY, "alarm storm", "case-storm".into(), Utc::now());
    let facts = Facts {
        slots_taken: policy.storm_cap,
        storm: Some(storm),
        ..first_sight()
    };
    let plan = decide(&a, facts, &policy);
    assert_eq!(plan.outcome, Outcome::Folded);
    assert!(matches!(
        &plan.action,
        Action::Fold { if_gone: IfGone::OpenStorm { case }, .. } if case.subject.starts_with("Alarm storm")
    ));
}

#[tokio::test]
async fn a_preview_shows_what_happens_when_the_case_is_gone() {
    let f = fixture();
    handle(&f, &alarm("ALARM", "2026-12-02T01:00:00.000+0000")).await;
    f.advance(Duration::from_secs(3600));
    let again = alarm("ALARM", "2026-12-02T02:00:00.000+0000");
    let plan = f.service.plan(&direct(), &again).await.expect("plan");
    assert_eq!(plan.outcome, Outcome::Updated);
    let shown = serde_json::to_value(&plan).expect("json");
    assert_eq!(shown["action"], "update");
    assert_eq!(shown["ifGone"]["then"], "open", "{shown:#}");
    assert_eq!(shown["ifGone"]["case"]["subject"], "db-cpu");
    assert!(
        shown["ifGone"]["ifFull"]["case"]["subject"]
            .as_str()
            .is_some_and(|s| s.starts_with("Alarm storm")),
        "{shown:#}"
    );
}
