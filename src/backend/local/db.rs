//! The SQLite database the ledger, the dry-run desk and the notice log share, with group
//! commit: every write goes to one writer thread, which runs the writes waiting at that
//! moment in one transaction and one fsync (each in its own savepoint, so one that fails
//! undoes only itself), and answers each only once that transaction is durable. Reads use
//! their own connection: in WAL mode they never wait for the writer, and they see every
//! write that has been answered.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, Savepoint};

use crate::ports::ledger::LedgerError;

/// At most this many writes share one transaction.
const MAX_BATCH: usize = 512;

/// How a write's answer reaches its caller, once its batch is committed (or not).
type Finish = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

/// A write's work in its savepoint: whether to keep what it did, and how to answer.
type Run = Box<dyn FnOnce(&mut Savepoint<'_>) -> (bool, Finish) + Send>;

/// One write: run in its own savepoint; `true` keeps what it did.
struct Job {
    durable: bool,
    run: Run,
}

pub(super) struct Db {
    reader: Mutex<Connection>,
    writes: mpsc::Sender<Job>,
    /// Transactions the writer committed (each one fsync when durable).
    batches: Arc<AtomicU64>,
}

fn storage(e: rusqlite::Error) -> LedgerError {
    LedgerError::storage("SQLite", e)
}

fn writer_gone() -> LedgerError {
    LedgerError::storage_said("the SQLite writer stopped")
}

impl Db {
    pub(super) fn open(path: &Path) -> Result<Self, LedgerError> {
        let conn = Connection::open(path).map_err(storage)?;
        migrate_claims(&conn)?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| LedgerError::storage(format!("cannot open {}", path.display()), e))?;
        migrate_pages(&conn)?;
        migrate_decisions(&conn)?;
        let reader = Connection::open(path).map_err(storage)?;
        reader
            .execute_batch("PRAGMA busy_timeout = 5000;")
            .map_err(storage)?;
        let (writes, queue) = mpsc::channel();
        let batches = Arc::new(AtomicU64::new(0));
        let counted = batches.clone();
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || write_loop(conn, queue, &counted))
            .map_err(|e| LedgerError::storage("cannot start the ledger's writer", e))?;
        Ok(Self {
            reader: Mutex::new(reader),
            writes,
            batches,
        })
    }

    /// Transactions committed so far.
    pub(super) fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }

    /// Reads on the reader's connection, here and now.
    pub(super) fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, LedgerError> {
        // A panic while holding the lock cannot leave SQLite half-read, so a poisoned lock
        // is safe to keep using.
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(storage)
    }

    /// Reads off the async runtime's threads.
    pub(super) async fn reading<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, LedgerError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read(f))
            .await
            .map_err(|e| LedgerError::storage("the SQLite reader", e))?
    }

    /// Writes, answered once the batch it joined is committed: durable (fsync) when
    /// `durable`, or at least written to the log when not (a line of history only).
    pub(super) async fn write<R: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Savepoint<'_>) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, LedgerError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(durable, f, move |r| {
            let _ = tx.send(r);
        })?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Writes without waiting for the answer (a duplicate noted for the record); a failure
    /// is logged.
    pub(super) fn write_detached(
        &self,
        f: impl FnOnce(&mut Savepoint<'_>) -> rusqlite::Result<()> + Send + 'static,
    ) -> Result<(), LedgerError> {
        self.submit(false, f, |r: Result<(), LedgerError>| {
            if let Err(e) = r {
                tracing::warn!(error = %crate::errors::Chain(&e), "a noted decision was not written");
            }
        })
    }

    fn submit<R: Send + 'static>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Savepoint<'_>) -> rusqlite::Result<R> + Send + 'static,
        answer: impl FnOnce(Result<R, LedgerError>) + Send + 'static,
    ) -> Result<(), LedgerError> {
        let run = Box::new(move |sp: &mut Savepoint<'_>| -> (bool, Finish) {
            match f(sp) {
                Ok(r) => (
                    true,
                    Box::new(move |failed: Option<&rusqlite::Error>| {
                        answer(match failed {
                            None => Ok(r),
                            Some(e) => Err(LedgerError::storage_said(format!(
                                "SQLite commit failed: {e}"
                            ))),
                        })
                    }),
                ),
                Err(e) => (false, Box::new(move |_| answer(Err(storage(e))))),
            }
        });
        self.writes
            .send(Job { durable, run })
            .map_err(|_| writer_gone())
    }
}

/// Brings the claims table of a ledger written by an earlier version up to date, before
/// [`SCHEMA`] creates whatever is missing.
fn migrate_claims(conn: &Connection) -> Result<(), LedgerError> {
    // Claims are transient (minutes): a ledger written before claims carried a
    // reference simply starts with no claims.
    let has_reference = any_row(
        conn,
        "SELECT COUNT(*) FROM pragma_table_info('claims') WHERE name = 'reference'",
    )
    .unwrap_or(true);
    if !has_reference {
        conn.execute_batch("DROP TABLE IF EXISTS claims")
            .map_err(storage)?;
    }
    // Claims that name their owner and their delivery (for recovery at start): older
    // ones get the columns, empty, and are recovered by reference all the same.
    let has_owner = any_row(
        conn,
        "SELECT COUNT(*) FROM pragma_table_info('claims') WHERE name = 'owner'",
    )
    .unwrap_or(true);
    let has_claims = any_row(
        conn,
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'claims'",
    )
    .unwrap_or(false);
    if has_claims && !has_owner {
        conn.execute_batch(
            "ALTER TABLE claims ADD COLUMN owner TEXT NOT NULL DEFAULT '';
             ALTER TABLE claims ADD COLUMN alarm_name TEXT NOT NULL DEFAULT '';
             ALTER TABLE claims ADD COLUMN handled_keys TEXT NOT NULL DEFAULT '[]';
             ALTER TABLE claims ADD COLUMN replaces TEXT;",
        )
        .map_err(storage)?;
    }
    Ok(())
}

/// Pages of a ledger written before they kept when they were acknowledged and resolved get
/// the columns, empty (their times are not known: reports leave them out).
fn migrate_pages(conn: &Connection) -> Result<(), LedgerError> {
    let has_times = any_row(
        conn,
        "SELECT COUNT(*) FROM pragma_table_info('pages') WHERE name = 'acked_at'",
    )
    .unwrap_or(true);
    if !has_times {
        conn.execute_batch(
            "ALTER TABLE pages ADD COLUMN acked_at TEXT;
             ALTER TABLE pages ADD COLUMN resolved_at TEXT;",
        )
        .map_err(storage)?;
    }
    Ok(())
}

/// Decisions of a ledger written before cases kept their severity get the column, empty
/// (the report counts those cases under no severity).
fn migrate_decisions(conn: &Connection) -> Result<(), LedgerError> {
    let has_severity = any_row(
        conn,
        "SELECT COUNT(*) FROM pragma_table_info('decisions') WHERE name = 'severity'",
    )
    .unwrap_or(true);
    if !has_severity {
        conn.execute_batch("ALTER TABLE decisions ADD COLUMN severity TEXT;")
            .map_err(storage)?;
    }
    Ok(())
}

/// Whether a `SELECT COUNT(*)` counts more than nothing.
fn any_row(conn: &Connection, count: &str) -> rusqlite::Result<bool> {
    conn.prepare(count)
        .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
        .map(|n| n > 0)
}

/// The connection's settings (WAL, so reads never wait for the writer; synchronous=FULL, so
/// an answered decision survives a crash) and every table, created when missing.
const SCHEMA: &str = "
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = FULL;
    PRAGMA busy_timeout = 5000;
    CREATE TABLE IF NOT EXISTS decisions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        delivery_kind TEXT NOT NULL,
        delivery_id TEXT,
        alarm_key TEXT NOT NULL,
        alarm_name TEXT NOT NULL,
        state TEXT NOT NULL,
        state_change_time TEXT NOT NULL,
        outcome TEXT NOT NULL,
        case_id TEXT,
        note TEXT,
        severity TEXT);
    CREATE INDEX IF NOT EXISTS decisions_by_alarm ON decisions (alarm_key, seq);
    CREATE INDEX IF NOT EXISTS decisions_by_case ON decisions (case_id, seq);
    -- Storm control counts the cases opened in the last hour on every new alarm;
    -- keyed by outcome first so a storm of duplicates is not read too.
    CREATE INDEX IF NOT EXISTS decisions_created ON decisions (outcome, at);
    CREATE TABLE IF NOT EXISTS handled (
        key TEXT PRIMARY KEY,
        seq INTEGER NOT NULL REFERENCES decisions (seq));
    CREATE TABLE IF NOT EXISTS open_cases (
        alarm_key TEXT PRIMARY KEY,
        record TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS claims (
        alarm_key TEXT PRIMARY KEY,
        token TEXT NOT NULL,
        reference TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        alarm_name TEXT NOT NULL DEFAULT '',
        handled_keys TEXT NOT NULL DEFAULT '[]',
        replaces TEXT);
    -- Storm control: new cases per clock hour, counted as they are opened.
    CREATE TABLE IF NOT EXISTS case_slots (
        hour TEXT PRIMARY KEY,
        n INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS held (
        alarm_key TEXT PRIMARY KEY,
        record TEXT NOT NULL);
    -- Notices waiting to be sent (written with their decision); failed ones stay.
    CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        notice TEXT NOT NULL,
        case_id TEXT,
        queued_at TEXT NOT NULL,
        next_at TEXT NOT NULL,
        lease_until TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        pending TEXT,
        state TEXT NOT NULL DEFAULT 'pending',
        error TEXT);
    CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
    -- What the notifier would have told people (the embedded default's sink).
    CREATE TABLE IF NOT EXISTS pages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        alarm TEXT NOT NULL,
        policy TEXT NOT NULL,
        summary TEXT NOT NULL,
        state TEXT NOT NULL,
        owner TEXT,
        round INTEGER NOT NULL,
        stage INTEGER NOT NULL,
        opened_at TEXT NOT NULL,
        next_at TEXT,
        lease_until TEXT NOT NULL,
        acked_at TEXT,
        resolved_at TEXT
    );
    CREATE INDEX IF NOT EXISTS pages_due ON pages (state, next_at);
    CREATE INDEX IF NOT EXISTS pages_by_key ON pages (key, state);
    CREATE TABLE IF NOT EXISTS page_events (
        event TEXT PRIMARY KEY,
        page INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS page_timeline (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        page INTEGER NOT NULL,
        at TEXT NOT NULL,
        text TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS page_timeline_by_page ON page_timeline (page, seq);
    CREATE TABLE IF NOT EXISTS page_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        page INTEGER NOT NULL,
        key TEXT NOT NULL UNIQUE,
        person TEXT NOT NULL,
        channel TEXT NOT NULL,
        to_addr TEXT NOT NULL,
        text TEXT NOT NULL,
        stage INTEGER,
        round INTEGER,
        queued_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'queued',
        sent_at TEXT,
        error TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_at TEXT NOT NULL,
        lease_until TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS page_messages_by_page ON page_messages (page, id);
    CREATE INDEX IF NOT EXISTS page_messages_due ON page_messages (state, next_at);
    CREATE TABLE IF NOT EXISTS callouts (
        page INTEGER NOT NULL,
        person TEXT NOT NULL,
        schedule TEXT,
        at TEXT NOT NULL,
        local_time TEXT NOT NULL,
        off_hours INTEGER NOT NULL,
        PRIMARY KEY (page, person)
    );
    CREATE INDEX IF NOT EXISTS callouts_by_time ON callouts (at);
    -- The console's sessions, by the SHA-256 of their token, and its audit log.
    CREATE TABLE IF NOT EXISTS console_sessions (
        key TEXT PRIMARY KEY,
        user TEXT NOT NULL,
        csrf TEXT NOT NULL,
        created TEXT NOT NULL,
        expires TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        who TEXT NOT NULL,
        what TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS notices (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        case_id TEXT,
        record TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS dry_run_cases (
        n INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        record TEXT NOT NULL,
        resolved_at TEXT);
    CREATE TABLE IF NOT EXISTS dry_run_communications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        n INTEGER NOT NULL REFERENCES dry_run_cases (n),
        at TEXT NOT NULL,
        record TEXT NOT NULL);";

/// The writer: takes every write waiting, runs each in its own savepoint of one
/// transaction, commits once, then answers them all.
fn write_loop(mut conn: Connection, queue: mpsc::Receiver<Job>, batches: &AtomicU64) {
    let mut synchronous_full = true;
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Durable when any write in the batch needs it: then every one is.
        let full = batch.iter().any(|j| j.durable);
        if full != synchronous_full {
            let mode = if full { "FULL" } else { "NORMAL" };
            if conn.pragma_update(None, "synchronous", mode).is_ok() {
                synchronous_full = full;
            }
        }
        let mut finishers = Vec::with_capacity(batch.len());
        let committed = (|| -> rusqlite::Result<()> {
            let mut tx =
                conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for job in batch {
                let mut sp = tx.savepoint()?;
                // A write that panics undoes itself; its caller hears the writer failed.
                match std::panic::catch_unwind(AssertUnwindSafe(|| (job.run)(&mut sp))) {
                    Ok((keep, finish)) => {
                        if keep {
                            sp.commit()?;
                        }
                        finishers.push(finish);
                    }
                    Err(_) => tracing::error!("a ledger write panicked; it was undone"),
                }
            }
            tx.commit()
        })();
        let failed = committed.err();
        batches.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = &failed {
            tracing::error!(error = %e, "a ledger batch could not be committed");
        }
        for finish in finishers {
            finish(failed.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Arc<Db>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("ledger.sqlite3")).expect("open");
        (dir, Arc::new(db))
    }

    #[test]
    fn pages_of_an_older_ledger_gain_their_times_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.sqlite3");
        {
            // A ledger written before pages kept their acknowledge and resolve times.
            let old = Connection::open(&path).expect("old");
            old.execute_batch(
                "CREATE TABLE pages (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL,
                   alarm TEXT NOT NULL, policy TEXT NOT NULL, summary TEXT NOT NULL,
                   state TEXT NOT NULL, owner TEXT, round INTEGER NOT NULL,
                   stage INTEGER NOT NULL, opened_at TEXT NOT NULL, next_at TEXT,
                   lease_until TEXT NOT NULL);
                 INSERT INTO pages (key, alarm, policy, summary, state, round, stage,
                   opened_at, lease_until) VALUES ('db', 'db', 'default', 'db is in ALARM',
                   'acknowledged', 0, 1, '2026-12-01T03:00:00.000000Z', '2026-12-01T03:00:00.000000Z');",
            )
            .expect("old schema");
        }
        let db = Db::open(&path).expect("opens and migrates");
        let (acked, resolved): (Option<String>, Option<String>) = db
            .read(|c| {
                c.query_row("SELECT acked_at, resolved_at FROM pages", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
            })
            .expect("read");
        assert_eq!((acked, resolved), (None, None));
        drop(db);
        // Opened again: nothing more to do.
        Db::open(&path).expect("opens again");
    }

    #[test]
    fn decisions_of_an_older_ledger_gain_an_empty_severity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.sqlite3");
        {
            // A ledger written before cases kept their severity.
            let old = Connection::open(&path).expect("old");
            old.execute_batch(
                "CREATE TABLE decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
                   delivery_kind TEXT NOT NULL, delivery_id TEXT, alarm_key TEXT NOT NULL,
                   alarm_name TEXT NOT NULL, state TEXT NOT NULL,
                   state_change_time TEXT NOT NULL, outcome TEXT NOT NULL, case_id TEXT,
                   note TEXT);
                 INSERT INTO decisions (at, delivery_kind, alarm_key, alarm_name, state,
                   state_change_time, outcome, case_id) VALUES ('2026-12-01T03:00:00Z',
                   'direct', 'db', 'db', 'ALARM', 't', 'created', 'dry-run-1');",
            )
            .expect("old schema");
        }
        let db = Db::open(&path).expect("opens and migrates");
        let severity: Option<String> = db
            .read(|c| c.query_row("SELECT severity FROM decisions", [], |r| r.get(0)))
            .expect("read");
        assert_eq!(severity, None);
        drop(db);
        Db::open(&path).expect("opens again");
    }

    fn count(db: &Db) -> i64 {
        db.read(|c| c.query_row("SELECT COUNT(*) FROM notices", [], |r| r.get(0)))
            .expect("count")
    }

    #[tokio::test]
    async fn writes_waiting_together_share_one_transaction_and_a_failure_undoes_only_itself() {
        let (_dir, db) = db();
        // Hold the writer in a first write, so the next ones queue up behind it.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let first = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(true, move |_| {
                    let _ = held.recv();
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let before = db.batches();
        let mut writes = Vec::new();
        for i in 0..20 {
            let db = db.clone();
            writes.push(tokio::spawn(async move {
                db.write(true, move |c| {
                    c.execute(
                        "INSERT INTO notices (at, case_id, record) VALUES ('t', ?1, '{}')",
                        [format!("case-{i}")],
                    )?;
                    match i {
                        // Writes, then fails: what it wrote must not stay.
                        7 => Err(rusqlite::Error::InvalidQuery),
                        _ => Ok(i),
                    }
                })
                .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).expect("release");
        first.await.expect("join").expect("first write");
        let mut failed = 0;
        for w in writes {
            match w.await.expect("join") {
                Ok(_) => {}
                Err(_) => failed += 1,
            }
        }
        assert_eq!(failed, 1);
        assert_eq!(
            count(&db),
            19,
            "the failed write undid itself, and only itself"
        );
        assert_eq!(before, 0, "the first write is still running");
        assert_eq!(
            db.batches(),
            2,
            "the first write alone, then the 20 that waited for it as one transaction"
        );
    }

    #[tokio::test]
    async fn an_answered_write_is_seen_by_the_next_read() {
        let (_dir, db) = db();
        for i in 0..5 {
            db.write(true, move |c| {
                c.execute(
                    "INSERT INTO notices (at, case_id, record) VALUES ('t', ?1, '{}')",
                    [format!("case-{i}")],
                )
            })
            .await
            .expect("write");
            assert_eq!(count(&db), i + 1);
        }
    }
}
