//! The console's sessions and audit log, the same tests on both stores: SQLite (the
//! embedded default) and DynamoDB (moto's server).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cw_support_api::ports::console::{AuditEntry, ConsoleStore, Session};

struct Under {
    store: Arc<dyn ConsoleStore>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Under {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = cw_support_api::backend::local::LocalBackend::open(dir.path()).expect("open");
    Under {
        store: b.ledger,
        _dir: Some(dir),
    }
}

async fn dynamodb() -> Under {
    Under {
        store: crate::page_ledger::dynamo_ledger().await,
        _dir: None,
    }
}

crate::common::on_both!(
    a_session_is_found_by_its_key_until_it_expires_or_ends,
    the_audit_log_is_read_newest_first_up_to_its_limit,
);

fn session(user: &str, csrf: &str, created: DateTime<Utc>, hours: i64) -> Session {
    Session {
        user: user.into(),
        csrf: csrf.into(),
        created,
        expires: created + Duration::hours(hours),
    }
}

async fn a_session_is_found_by_its_key_until_it_expires_or_ends(u: Under) {
    let now = Utc::now();
    let alice = session("alice", "c1", now, 12);
    u.store.put_session("k-alice", &alice).await.expect("put");
    u.store
        .put_session("k-bob", &session("bob", "c2", now, 1))
        .await
        .expect("put");
    let found = u.store.session("k-alice", now).await.expect("read");
    // Times are kept to the microsecond.
    let micros = |t: DateTime<Utc>| t.timestamp_micros();
    let found = found.expect("alice's session");
    assert_eq!(
        (
            found.user.as_str(),
            found.csrf.as_str(),
            micros(found.expires)
        ),
        ("alice", "c1", micros(alice.expires))
    );
    assert!(
        u.store
            .session("k-nobody", now)
            .await
            .expect("read")
            .is_none()
    );
    // Expired: not found, even before it is swept.
    let later = now + Duration::hours(2);
    assert!(
        u.store
            .session("k-bob", later)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        u.store
            .session("k-alice", later)
            .await
            .expect("read")
            .is_some()
    );
    u.store.end_session("k-alice").await.expect("end");
    assert!(
        u.store
            .session("k-alice", now)
            .await
            .expect("read")
            .is_none()
    );
    // Ending one that is not there is no error (signing out twice).
    u.store.end_session("k-alice").await.expect("end again");
}

async fn the_audit_log_is_read_newest_first_up_to_its_limit(u: Under) {
    assert!(u.store.audit_log(10).await.expect("empty").is_empty());
    let now = Utc::now();
    // Two within one instant stay two; one last month is read after this month's.
    let entries = [
        (now - Duration::days(40), "alice", "signed in"),
        (
            now - Duration::minutes(2),
            "bob",
            "acknowledged page 1 (db-down)",
        ),
        (now - Duration::minutes(2), "bob", "stopped I'm fixing mw-1"),
        (now, "alice", "signed out"),
    ];
    for (at, who, what) in entries {
        u.store
            .audit(&AuditEntry {
                at,
                who: who.into(),
                what: what.into(),
            })
            .await
            .expect("audit");
    }
    let log = u.store.audit_log(10).await.expect("log");
    let whats: Vec<&str> = log.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats.len(), 4, "{whats:?}");
    assert_eq!((whats[0], whats[3]), ("signed out", "signed in"));
    assert!(whats[1..3].contains(&"acknowledged page 1 (db-down)"));
    assert_eq!(log[0].who, "alice");
    let two = u.store.audit_log(2).await.expect("log");
    assert_eq!(two.len(), 2);
    assert_eq!(two[0].what, "signed out");
}
