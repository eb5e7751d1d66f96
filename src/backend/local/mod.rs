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

mod db;
mod desk;
pub mod graph;
mod ledger;
mod notices;
mod outbox;
mod settings;

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::ports::ledger::LedgerError;

use db::Db;

pub use desk::{DryRunCase, DryRunDesk, GRAPHS_DIR, bundled_services};
pub use ledger::SqliteLedger;
pub use notices::NoticeLog;
pub use outbox::LocalOutbox;
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
            ledger: Arc::new(SqliteLedger {
                db: db.clone(),
                notes: Default::default(),
            }),
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
