use super::*;
use crate::backend::local::LocalBackend;

fn duplicate(alarm: &str, delivery: &str) -> Decision {
    Decision {
        seq: 0,
        at: Utc::now(),
        delivery_kind: DeliveryKind::Sqsd,
        delivery_id: Some(delivery.into()),
        alarm_key: alarm.into(),
        alarm_name: alarm.into(),
        state: DecisionState::Alarm(crate::domain::alarm::AlarmState::Alarm),
        state_change_time: "t1".into(),
        outcome: Outcome::Duplicate,
        case_id: Some("dry-run-1".into()),
        note: Some("first handled as #1 (created)".into()),
        severity: None,
    }
}

/// A redelivery storm of one message is one line of history with its count, and a
/// listing writes what waits first.
#[tokio::test]
async fn noted_duplicates_are_one_line_per_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = LocalBackend::open(dir.path()).expect("open");
    for _ in 0..300 {
        b.ledger
            .note(duplicate("alarm-a", "m-1"))
            .await
            .expect("noted");
    }
    b.ledger
        .note(duplicate("alarm-b", "m-2"))
        .await
        .expect("noted");
    let listed = b.ledger.decisions(&Default::default()).await.expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    let a = listed
        .iter()
        .find(|d| d.alarm_key == "alarm-a")
        .expect("alarm-a");
    let note = a.note.as_deref().unwrap_or_default();
    assert!(
        note.starts_with("first handled as #1 (created); 300 deliveries until "),
        "{note}"
    );
    let b_line = listed
        .iter()
        .find(|d| d.alarm_key == "alarm-b")
        .expect("alarm-b");
    assert_eq!(
        b_line.note.as_deref(),
        Some("first handled as #1 (created)")
    );

    for i in 0..DuplicateTally::EVENTS {
        b.ledger
            .note(duplicate(&format!("storm-{i}"), "m-3"))
            .await
            .expect("noted");
    }
    // The eighth event's note wrote the eight lines (detached); flush waits for them.
    b.ledger.flush().await.expect("flush");
    let listed = b.ledger.decisions(&Default::default()).await.expect("list");
    assert_eq!(listed.len(), 2 + DuplicateTally::EVENTS);
}

/// A local ledger and a clock for the claim tests: claims are taken `now` and expire
/// `later`.
struct Claims {
    _dir: tempfile::TempDir,
    b: LocalBackend,
    now: DateTime<Utc>,
    later: DateTime<Utc>,
}

impl Claims {
    fn open() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = LocalBackend::open(dir.path()).expect("open");
        let now = Utc::now();
        Self {
            _dir: dir,
            b,
            now,
            later: now + chrono::Duration::minutes(2),
        }
    }

    fn claim(&self, key: &str, replaces: Option<&str>) -> Claim {
        Claim::new(key, self.now, self.later, replaces.map(str::to_owned))
    }

    async fn claim_at(&self, claim: &Claim, at: DateTime<Utc>) -> ClaimOutcome {
        self.b.ledger.claim(claim, at).await.expect("claim")
    }

    /// The commit that records case dry-run-1 for alarm-a, opened under `claim`.
    fn commit(&self, claim: &Claim) -> Commit {
        let decision = Decision {
            seq: 0,
            at: self.now,
            delivery_kind: DeliveryKind::Direct,
            delivery_id: None,
            alarm_key: "alarm-a".into(),
            alarm_name: "alarm-a".into(),
            state: DecisionState::Alarm(crate::domain::alarm::AlarmState::Alarm),
            state_change_time: "t".into(),
            outcome: Outcome::Created,
            case_id: Some("dry-run-1".into()),
            note: None,
            severity: None,
        };
        let open = OpenCase {
            alarm_key: "alarm-a".into(),
            alarm_name: "alarm-a".into(),
            case_id: "dry-run-1".into(),
            opened_at: self.now,
            last_update_at: self.now,
            coalesced: 0,
            updates: 0,
            recovered: false,
            digest: None,
            cycles: Vec::new(),
            flapping: false,
            group: None,
        };
        let mut c = Commit::record(vec!["event:a".into()], decision);
        c.open_cases.push(OpenCaseChange::Put(open));
        c.claim = Some(claim.clone());
        c
    }
}

fn taken(o: ClaimOutcome) -> bool {
    matches!(o, ClaimOutcome::Taken { .. })
}

#[tokio::test]
async fn claims_exclude_each_other_until_released_or_expired() {
    let t = Claims::open();
    let first = t.claim("alarm-a", None);
    let second = t.claim("alarm-a", None);
    assert_eq!(
        t.claim_at(&first, t.now).await,
        ClaimOutcome::Taken { stale: None }
    );
    assert!(
        !taken(t.claim_at(&second, t.now).await),
        "a live claim excludes"
    );
    assert!(taken(t.claim_at(&t.claim("alarm-b", None), t.now).await));
}

/// A claim left behind by a crash is taken over once it expires, with its reference; the
/// first owner's commit then fails instead of recording a second case.
#[tokio::test]
async fn an_expired_claim_is_taken_over_and_its_owner_cannot_commit() {
    let t = Claims::open();
    let first = t.claim("alarm-a", None);
    let second = t.claim("alarm-a", None);
    assert!(taken(t.claim_at(&first, t.now).await));
    let takeover = t
        .claim_at(&second, t.later + chrono::Duration::seconds(1))
        .await;
    assert_eq!(
        takeover,
        ClaimOutcome::Taken {
            stale: Some(StaleClaim {
                reference: first.reference.clone(),
                claimed_at: parse_time(&first.claimed_at.to_rfc3339()).expect("time"),
            })
        }
    );
    assert!(matches!(
        t.b.ledger.commit(t.commit(&first)).await,
        Err(LedgerError::Conflict(_))
    ));
    assert!(
        t.b.ledger
            .find_handled(&["event:a".into()])
            .await
            .expect("read")
            .is_none()
    );
    t.b.ledger
        .commit(t.commit(&second))
        .await
        .expect("owner commits");
}

/// With a case open, only a claim that replaces that very case is granted.
#[tokio::test]
async fn with_a_case_open_only_a_claim_replacing_it_is_granted() {
    let t = Claims::open();
    let owner = t.claim("alarm-a", None);
    assert!(taken(t.claim_at(&owner, t.now).await));
    t.b.ledger
        .commit(t.commit(&owner))
        .await
        .expect("owner commits");
    assert!(!taken(t.claim_at(&t.claim("alarm-a", None), t.later).await));
    assert!(!taken(
        t.claim_at(&t.claim("alarm-a", Some("dry-run-9")), t.later)
            .await
    ));
    let replacing = t.claim("alarm-a", Some("dry-run-1"));
    assert!(taken(t.claim_at(&replacing, t.later).await));
    t.b.ledger.release(&replacing).await.expect("release");
    assert!(taken(
        t.claim_at(&t.claim("alarm-a", Some("dry-run-1")), t.later)
            .await
    ));
}
