//! The embedded local backend, so the service runs on a fresh machine with no AWS account:
//!
//! - per-alarm settings in `DATA_DIR/alarms.json` (`settings`), readable and editable by
//!   hand (re-read when it changes, written atomically by `alarms put`);
//! - the ledger in `DATA_DIR/ledger.sqlite3` (`ledger`; SQLite, WAL, synchronous=FULL: a
//!   decision that was answered 200 survives a crash, and other processes such as
//!   `cases list` can read it while the server runs);
//! - the dry-run support desk (`desk`), in the same database, recording the complete case it
//!   would have opened (ids `dry-run-N`) and every communication it would have added;
//! - the log of what would have been told to people (`notices`), in the same database.
//!
//! This file opens them together on one data directory, holds the lock that keeps a second
//! server off it, and owns the SQLite database the last three share.

mod desk;
mod ledger;
mod notices;
mod settings;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;

use crate::ledger::LedgerError;

pub use desk::{DryRunCase, DryRunDesk, GRAPHS_DIR, bundled_services};
pub use ledger::SqliteLedger;
pub use notices::NoticeLog;
pub use settings::LocalConfigFile;

pub const CONFIG_FILE: &str = "alarms.json";
pub const LEDGER_FILE: &str = "ledger.sqlite3";
pub const WINDOWS_FILE: &str = "maintenance.json";

/// The three local stores, opened together on one data directory, and the log of what
/// would have been told to people.
#[derive(Clone)]
pub struct LocalBackend {
    pub config: Arc<LocalConfigFile>,
    pub ledger: Arc<SqliteLedger>,
    pub desk: Arc<DryRunDesk>,
    pub notices: Arc<NoticeLog>,
}

impl LocalBackend {
    pub fn open(data_dir: &Path) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            LedgerError::storage(format!("cannot create {}", data_dir.display()), e)
        })?;
        let db = Arc::new(Db::open(&data_dir.join(LEDGER_FILE))?);
        Ok(Self {
            config: Arc::new(LocalConfigFile::new(data_dir.join(CONFIG_FILE))),
            ledger: Arc::new(SqliteLedger { db: db.clone() }),
            notices: Arc::new(NoticeLog { db: db.clone() }),
            desk: Arc::new(DryRunDesk {
                db,
                graphs: data_dir.join(GRAPHS_DIR),
            }),
        })
    }
}

/// The file `serve` locks in the data directory.
pub const LOCK_FILE: &str = "serve.lock";

/// One serving process per data directory: held for the life of the process (the OS drops
/// it when the process dies, however it dies). With it, every claim found at start was
/// left by a process that stopped, and can be recovered at once instead of after a lease.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            LedgerError::storage(format!("cannot create {}", data_dir.display()), e)
        })?;
        let path = data_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LedgerError::storage(format!("cannot open {}", path.display()), e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::storage_said(format!(
                "another cw-support-api is already serving from {} (it holds {}): stop it, \
                 or give this one its own DATA_DIR",
                data_dir.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(LedgerError::storage(
                format!("cannot lock {}", path.display()),
                e,
            )),
        }
    }
}

// ---- the SQLite database shared by the ledger, the dry-run desk and the notice log -----------

struct Db {
    conn: Mutex<Connection>,
}

fn storage(e: rusqlite::Error) -> LedgerError {
    LedgerError::storage("SQLite", e)
}

impl Db {
    fn open(path: &Path) -> Result<Self, LedgerError> {
        let conn = Connection::open(path).map_err(storage)?;
        // Claims are transient (minutes): a ledger written before claims carried a
        // reference simply starts with no claims.
        let has_reference: bool = conn
            .prepare("SELECT COUNT(*) FROM pragma_table_info('claims') WHERE name = 'reference'")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| n > 0)
            .unwrap_or(true);
        if !has_reference {
            conn.execute_batch("DROP TABLE IF EXISTS claims")
                .map_err(storage)?;
        }
        // Claims that name their owner and their delivery (for recovery at start): older
        // ones get the columns, empty, and are recovered by reference all the same.
        let has_owner: bool = conn
            .prepare("SELECT COUNT(*) FROM pragma_table_info('claims') WHERE name = 'owner'")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| n > 0)
            .unwrap_or(true);
        let has_claims: bool = conn
            .prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'claims'")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| n > 0)
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
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
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
                 note TEXT);
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
             -- What the notifier would have told people (the embedded default's sink).
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
                 record TEXT NOT NULL);",
        )
        .map_err(|e| LedgerError::storage(format!("cannot open {}", path.display()), e))?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>,
    ) -> Result<R, LedgerError> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is safe to keep using.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(storage)
    }

    /// Runs blocking SQLite work off the async runtime's threads.
    async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, LedgerError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.with(f))
            .await
            .map_err(|e| LedgerError::storage("the SQLite worker", e))?
    }
}

fn to_json<T: Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn parse_time(s: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })
}
