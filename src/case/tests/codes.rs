//! Service and category codes the desk refuses, and commits that fail after the desk acted.

use super::*;

#[tokio::test]
async fn an_unknown_service_code_falls_back_to_the_defaults_with_a_note() {
    let f = fixture();
    let a = alarm("ALARM", "t1");
    f.backend
        .config
        .put(
            &a.name,
            &AlarmConfigRecord {
                service_code: Some("amazon-dynamo-db".into()),
                category_code: Some("performance".into()),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    let h = handle(&f, &a).await;
    assert_eq!(h.outcome, Outcome::Created);
    let case = f
        .backend
        .desk
        .case("dry-run-1")
        .expect("read")
        .expect("case");
    assert_eq!(case.case.service_code, "amazon-elastic-compute-cloud-linux");
    assert_eq!(case.case.category_code, "other");
    let body = &case.case.communication_body;
    assert!(
        body.contains("amazon-dynamo-db") && body.contains("did you mean amazon-dynamodb"),
        "{body}"
    );

    // A known service with an unknown category keeps the service.
    let b = named("svc-b", "ALARM", "t1");
    f.backend
        .config
        .put(
            &b.name,
            &AlarmConfigRecord {
                service_code: Some("amazon-dynamodb".into()),
                category_code: Some("throttle".into()),
                ..Default::default()
            },
        )
        .await
        .expect("put");
    handle(&f, &b).await;
    let case = f
        .backend
        .desk
        .case("dry-run-2")
        .expect("read")
        .expect("case");
    assert_eq!(
        (
            case.case.service_code.as_str(),
            case.case.category_code.as_str()
        ),
        ("amazon-dynamodb", "other")
    );
}

#[tokio::test]
async fn a_refusal_with_the_defaults_too_is_recorded_as_failed() {
    let f = fixture_with(CasePolicy {
        default_service_code: "not-a-support-service".into(),
        ..CasePolicy::default()
    });
    let a = alarm("ALARM", "t1");
    let e = f.service.handle(&direct(), &a).await.expect_err("refused");
    assert!(
        matches!(e, CaseError::Desk(DeskError::Rejected(_))),
        "{e:?}"
    );
    let recorded = f
        .service
        .ledger()
        .decisions(&Default::default())
        .await
        .expect("ledger");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].outcome, Outcome::Failed);
    assert!(
        recorded[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("not-a-support-service")
    );
    assert!(f.backend.desk.case("dry-run-1").expect("read").is_none());
    // Not marked handled: once fixed, the redelivery opens the case.
    let e = f
        .service
        .handle(&direct(), &a)
        .await
        .expect_err("still refused");
    assert!(matches!(e, CaseError::Desk(DeskError::Rejected(_))));
}

/// The local ledger, with commits that fail a number of times first.
struct FlakyCommits {
    inner: Arc<dyn CaseLedger>,
    failures: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl CaseLedger for FlakyCommits {
    async fn find_handled(&self, keys: &[String]) -> Result<Option<Decision>, LedgerError> {
        self.inner.find_handled(keys).await
    }
    async fn open_case(&self, key: &str) -> Result<Option<OpenCase>, LedgerError> {
        self.inner.open_case(key).await
    }
    async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError> {
        self.inner.open_cases().await
    }
    async fn claim(&self, c: &Claim, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        self.inner.claim(c, now).await
    }
    async fn release(&self, c: &Claim) -> Result<(), LedgerError> {
        self.inner.release(c).await
    }
    async fn renew(&self, c: &Claim, until: DateTime<Utc>) -> Result<bool, LedgerError> {
        self.inner.renew(c, until).await
    }
    async fn commit(&self, commit: Commit) -> Result<i64, LedgerError> {
        use std::sync::atomic::Ordering;
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        match failing {
            true => Err(LedgerError::storage(
                "committing",
                std::io::Error::other("disk I/O error (injected)"),
            )),
            false => self.inner.commit(commit).await,
        }
    }
    async fn decisions(
        &self,
        f: &crate::ports::ledger::DecisionFilter,
    ) -> Result<Vec<Decision>, LedgerError> {
        self.inner.decisions(f).await
    }
    async fn case_slots_taken(&self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
        self.inner.case_slots_taken(now).await
    }
    async fn take_case_slot(&self, cap: usize, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        self.inner.take_case_slot(cap, now).await
    }
    async fn return_case_slot(&self, now: DateTime<Utc>) -> Result<(), LedgerError> {
        self.inner.return_case_slot(now).await
    }
    async fn held(&self) -> Result<Vec<crate::ports::ledger::HeldAlarm>, LedgerError> {
        self.inner.held().await
    }
}

#[tokio::test]
async fn the_claimer_retries_its_own_commit_after_the_desk_opened_the_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = LocalBackend::open(dir.path()).expect("backend");
    let ledger = Arc::new(FlakyCommits {
        inner: backend.ledger.clone(),
        failures: std::sync::atomic::AtomicUsize::new(2),
    });
    let service = CaseService::new(
        backend.config.clone(),
        ledger.clone(),
        backend.desk.clone(),
        CasePolicy::default(),
    );
    let a = alarm("ALARM", "t1");
    let h = service
        .handle(&direct(), &a)
        .await
        .expect("committed on a retry");
    assert_eq!(
        (h.outcome, h.case_id.as_deref()),
        (Outcome::Created, Some("dry-run-1"))
    );
    assert!(
        backend.ledger.claims().await.expect("claims").is_empty(),
        "claim released"
    );
    assert_eq!(
        service.handle(&direct(), &a).await.expect("again").outcome,
        Outcome::Duplicate
    );
    assert!(
        backend.desk.case("dry-run-2").expect("read").is_none(),
        "one case"
    );
}
