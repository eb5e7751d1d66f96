//! The embedded local backend, so the service runs on a fresh machine with no AWS account:
//!
//! - per-alarm settings in `DATA_DIR/alarms.json`, readable and editable by hand (re-read
//!   when it changes, written atomically by `alarms put`);
//! - the ledger in `DATA_DIR/ledger.sqlite3` (SQLite, WAL, synchronous=FULL: a decision that
//!   was answered 200 survives a crash, and other processes such as `cases list` can read it
//!   while the server runs);
//! - the dry-run support desk, in the same database, recording the complete case it would
//!   have opened (ids `dry-run-N`) and every communication it would have added.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::alarm_config::{AlarmConfigRecord, AlarmConfigStore, StoreError};
use crate::case::Outcome;
use crate::desk::{CaseInfo, Communication, DeskError, NewCase, ServiceCatalog, SupportDesk};
use crate::ledger::{
    CaseLedger, Claim, ClaimOutcome, Commit, Decision, DecisionFilter, HeldAlarm, HoldChange,
    LedgerError, OpenCase, OpenCaseChange, StaleClaim, slot_hour,
};
use crate::maintenance::MaintenanceWindow;

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
            LedgerError::Storage(format!("cannot create {}: {e}", data_dir.display()))
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
            LedgerError::Storage(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LedgerError::Storage(format!("cannot open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Storage(format!(
                "another cw-support-api is already serving from {} (it holds {}): stop it, \
                 or give this one its own DATA_DIR",
                data_dir.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(LedgerError::Storage(format!(
                "cannot lock {}: {e}",
                path.display()
            ))),
        }
    }
}

// ---- per-alarm settings file ---------------------------------------------------------------

type ConfigMap = BTreeMap<String, AlarmConfigRecord>;

/// Per-alarm settings in one JSON object keyed by alarm name.
pub struct LocalConfigFile {
    path: PathBuf,
    /// The parsed file and the modification time it was read at: a storm of one alarm
    /// costs one `stat`, and a hand edit takes effect on the next delivery.
    cache: Mutex<Option<(SystemTime, Arc<ConfigMap>)>>,
}

impl LocalConfigFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Arc<ConfigMap>, StoreError> {
        let modified = match std::fs::metadata(&self.path) {
            Ok(m) => m.modified()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Arc::new(ConfigMap::new()));
            }
            Err(e) => return Err(e.into()),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, map)) = cache.as_ref().filter(|(at, _)| *at == modified) {
            return Ok(map.clone());
        }
        let text = std::fs::read_to_string(&self.path)?;
        let map: ConfigMap = if text.trim().is_empty() {
            ConfigMap::new()
        } else {
            serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
                path: self.path.display().to_string(),
                source,
            })?
        };
        let map = Arc::new(map);
        *cache = Some((modified, map.clone()));
        Ok(map)
    }

    fn save(&self, map: &ConfigMap) -> Result<(), StoreError> {
        let text =
            serde_json::to_string_pretty(map).map_err(|e| StoreError::Backend(e.to_string()))?;
        write_atomically(&self.path, &text)?;
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Maintenance windows live beside the settings, in `maintenance.json`.
    fn windows_path(&self) -> PathBuf {
        self.path.with_file_name(WINDOWS_FILE)
    }
}

#[async_trait]
impl AlarmConfigStore for LocalConfigFile {
    async fn get(&self, alarm_name: &str) -> Result<Option<AlarmConfigRecord>, StoreError> {
        Ok(self.load()?.get(alarm_name).cloned())
    }

    async fn put(&self, alarm_name: &str, record: &AlarmConfigRecord) -> Result<(), StoreError> {
        let mut map = (*self.load()?).clone();
        map.insert(alarm_name.to_owned(), record.clone());
        self.save(&map)
    }

    async fn list(&self) -> Result<Vec<(String, AlarmConfigRecord)>, StoreError> {
        Ok(self
            .load()?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn delete(&self, alarm_name: &str) -> Result<bool, StoreError> {
        let mut map = (*self.load()?).clone();
        let existed = map.remove(alarm_name).is_some();
        if existed {
            self.save(&map)?;
        }
        Ok(existed)
    }

    async fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let path = self.windows_path();
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
            Ok(text) => serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
                path: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn save_windows(&self, windows: &[MaintenanceWindow]) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(windows)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        write_atomically(&self.windows_path(), &text)
    }
}

/// Writes a file through a temporary one and a rename, so a reader (or a crash) never sees
/// half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), StoreError> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

// ---- the SQLite database shared by the ledger and the dry-run desk --------------------------

struct Db {
    conn: Mutex<Connection>,
}

fn storage(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(e.to_string())
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
        .map_err(|e| storage(format!("cannot open {}: {e}", path.display())))?;
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
            .map_err(storage)?
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

// ---- ledger ---------------------------------------------------------------------------------

pub struct SqliteLedger {
    db: Arc<Db>,
}

const DECISION_COLUMNS: &str = "d.seq, d.at, d.delivery_kind, d.delivery_id, d.alarm_key, \
     d.alarm_name, d.state, d.state_change_time, d.outcome, d.case_id, d.note";

fn decision_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Decision> {
    let outcome: String = r.get(8)?;
    Ok(Decision {
        seq: r.get(0)?,
        at: parse_time(&r.get::<_, String>(1)?)?,
        delivery_kind: r.get(2)?,
        delivery_id: r.get(3)?,
        alarm_key: r.get(4)?,
        alarm_name: r.get(5)?,
        state: r.get(6)?,
        state_change_time: r.get(7)?,
        outcome: Outcome::parse(&outcome).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                8,
                rusqlite::types::Type::Text,
                format!("unknown outcome {outcome:?}").into(),
            )
        })?,
        case_id: r.get(9)?,
        note: r.get(10)?,
    })
}

#[async_trait]
impl CaseLedger for SqliteLedger {
    async fn find_handled(&self, keys: &[String]) -> Result<Option<Decision>, LedgerError> {
        let keys = keys.to_vec();
        self.db
            .run(move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {DECISION_COLUMNS} FROM handled h JOIN decisions d ON d.seq = h.seq \
                     WHERE h.key = ?1"
                ))?;
                let mut earliest: Option<Decision> = None;
                for key in &keys {
                    let found = stmt.query_row([key], decision_row).optional()?;
                    if let Some(d) =
                        found.filter(|d| earliest.as_ref().is_none_or(|e| d.seq < e.seq))
                    {
                        earliest = Some(d);
                    }
                }
                Ok(earliest)
            })
            .await
    }

    async fn open_case(&self, alarm_key: &str) -> Result<Option<OpenCase>, LedgerError> {
        let key = alarm_key.to_owned();
        self.db
            .run(move |c| {
                let record: Option<String> = c
                    .prepare_cached("SELECT record FROM open_cases WHERE alarm_key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?;
                record.map(|r| from_json(&r)).transpose()
            })
            .await
    }

    async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError> {
        self.db
            .run(|c| {
                let mut stmt = c.prepare("SELECT record FROM open_cases ORDER BY alarm_key")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.map(|r| r.and_then(|s| from_json(&s))).collect()
            })
            .await
    }

    async fn claim(&self, claim: &Claim, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        let claim = claim.clone();
        self.db
            .run(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let open: Option<String> = tx
                    .query_row(
                        "SELECT record FROM open_cases WHERE alarm_key = ?1",
                        [&claim.alarm_key],
                        |r| r.get(0),
                    )
                    .optional()?;
                let blocked_by_open_case = match open {
                    Some(record) => {
                        let open: OpenCase = from_json(&record)?;
                        claim.replaces.as_deref() != Some(open.case_id.as_str())
                    }
                    None => false,
                };
                let held: Option<(String, String, String, String)> = tx
                    .query_row(
                        "SELECT token, reference, claimed_at, expires_at FROM claims WHERE alarm_key = ?1",
                        [&claim.alarm_key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .optional()?;
                let (live, stale) = match held {
                    Some((token, _, _, _)) if token == claim.token => (false, None),
                    Some((_, reference, claimed_at, expires)) => {
                        let live = parse_time(&expires)? > now;
                        let stale = StaleClaim {
                            reference,
                            claimed_at: parse_time(&claimed_at)?,
                        };
                        (live, Some(stale))
                    }
                    None => (false, None),
                };
                if blocked_by_open_case || live {
                    return Ok(ClaimOutcome::Refused);
                }
                tx.execute(
                    "INSERT OR REPLACE INTO claims (alarm_key, token, reference, claimed_at, \
                     expires_at, owner, alarm_name, handled_keys, replaces) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        claim.alarm_key,
                        claim.token,
                        claim.reference,
                        claim.claimed_at.to_rfc3339(),
                        claim.expires_at.to_rfc3339(),
                        claim.owner,
                        claim.alarm_name,
                        to_json(&claim.handled_keys)?,
                        claim.replaces
                    ],
                )?;
                tx.commit()?;
                Ok(ClaimOutcome::Taken { stale })
            })
            .await
    }

    async fn release(&self, claim: &Claim) -> Result<(), LedgerError> {
        let claim = claim.clone();
        self.db
            .run(move |c| {
                c.execute(
                    "DELETE FROM claims WHERE alarm_key = ?1 AND token = ?2",
                    params![claim.alarm_key, claim.token],
                )
                .map(|_| ())
            })
            .await
    }

    async fn renew(&self, claim: &Claim, until: DateTime<Utc>) -> Result<bool, LedgerError> {
        let claim = claim.clone();
        self.db
            .run(move |c| {
                c.execute(
                    "UPDATE claims SET expires_at = ?3 WHERE alarm_key = ?1 AND token = ?2",
                    params![claim.alarm_key, claim.token, until.to_rfc3339()],
                )
                .map(|n| n == 1)
            })
            .await
    }

    async fn claims(&self) -> Result<Vec<Claim>, LedgerError> {
        self.db
            .run(|c| {
                let mut stmt = c.prepare(
                    "SELECT alarm_key, token, reference, claimed_at, expires_at, owner, \
                     alarm_name, handled_keys, replaces FROM claims ORDER BY alarm_key",
                )?;
                let rows = stmt.query_map([], |r| {
                    let alarm_key: String = r.get(0)?;
                    let name: String = r.get(6)?;
                    Ok(Claim {
                        token: r.get(1)?,
                        reference: r.get(2)?,
                        claimed_at: parse_time(&r.get::<_, String>(3)?)?,
                        expires_at: parse_time(&r.get::<_, String>(4)?)?,
                        owner: r.get(5)?,
                        alarm_name: if name.is_empty() {
                            alarm_key.clone()
                        } else {
                            name
                        },
                        handled_keys: from_json(&r.get::<_, String>(7)?)?,
                        replaces: r.get(8)?,
                        alarm_key,
                    })
                })?;
                rows.collect()
            })
            .await
    }

    async fn commit(&self, commit: Commit) -> Result<i64, LedgerError> {
        // A decision that changes nothing but the record (a duplicate) is written without
        // waiting for the disk: a power cut could lose that line of history, never a case or
        // a dedupe key. Everything else waits for fsync (synchronous=FULL).
        let record_only = commit.handled_keys.is_empty()
            && commit.open_cases.is_empty()
            && commit.claim.is_none()
            && commit.hold.is_none();
        let result = self
            .db
            .run(move |c| {
                c.pragma_update(None, "synchronous", if record_only { "NORMAL" } else { "FULL" })?;
                let tx = c.transaction()?;
                if let Some(claim) = &commit.claim {
                    let released = tx.execute(
                        "DELETE FROM claims WHERE alarm_key = ?1 AND token = ?2",
                        params![claim.alarm_key, claim.token],
                    )?;
                    if released == 0 {
                        return Ok(None);
                    }
                }
                let d = &commit.decision;
                tx.execute(
                    "INSERT INTO decisions (at, delivery_kind, delivery_id, alarm_key, alarm_name, \
                     state, state_change_time, outcome, case_id, note) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        d.at.to_rfc3339(),
                        d.delivery_kind,
                        d.delivery_id,
                        d.alarm_key,
                        d.alarm_name,
                        d.state,
                        d.state_change_time,
                        d.outcome.as_str(),
                        d.case_id,
                        d.note
                    ],
                )?;
                let seq = tx.last_insert_rowid();
                for key in &commit.handled_keys {
                    tx.execute(
                        "INSERT OR IGNORE INTO handled (key, seq) VALUES (?1, ?2)",
                        params![key, seq],
                    )?;
                }
                for change in &commit.open_cases {
                    match change {
                        OpenCaseChange::Put(open) => {
                            tx.execute(
                                "INSERT OR REPLACE INTO open_cases (alarm_key, record) VALUES (?1, ?2)",
                                params![open.alarm_key, to_json(open)?],
                            )?;
                        }
                        OpenCaseChange::Remove { alarm_key } => {
                            tx.execute("DELETE FROM open_cases WHERE alarm_key = ?1", [alarm_key])?;
                        }
                    }
                }
                match &commit.hold {
                    None => {}
                    Some(HoldChange::Put(held)) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO held (alarm_key, record) VALUES (?1, ?2)",
                            params![held.alarm_key, to_json(held)?],
                        )?;
                    }
                    Some(HoldChange::Remove { alarm_key }) => {
                        tx.execute("DELETE FROM held WHERE alarm_key = ?1", [alarm_key])?;
                    }
                }
                tx.commit()?;
                Ok(Some(seq))
            })
            .await?;
        result.ok_or_else(|| {
            LedgerError::Conflict("the claim to open this case was taken over".into())
        })
    }

    async fn case_slots_taken(&self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
        let hour = slot_hour(now);
        self.db
            .run(move |c| {
                c.query_row("SELECT n FROM case_slots WHERE hour = ?1", [hour], |r| {
                    r.get::<_, i64>(0)
                })
                .optional()
                .map(|n| usize::try_from(n.unwrap_or(0)).unwrap_or(0))
            })
            .await
    }

    async fn take_case_slot(&self, cap: usize, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        let hour = slot_hour(now);
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        self.db
            .run(move |c| {
                let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let n: i64 = tx
                    .query_row("SELECT n FROM case_slots WHERE hour = ?1", [&hour], |r| {
                        r.get(0)
                    })
                    .optional()?
                    .unwrap_or(0);
                if n >= cap {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO case_slots (hour, n) VALUES (?1, 1) \
                     ON CONFLICT (hour) DO UPDATE SET n = n + 1",
                    [&hour],
                )?;
                // Old hours are of no use: keep the table a few rows long.
                tx.execute("DELETE FROM case_slots WHERE hour < ?1", [&hour])?;
                tx.commit()?;
                Ok(true)
            })
            .await
    }

    async fn return_case_slot(&self, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let hour = slot_hour(now);
        self.db
            .run(move |c| {
                c.execute(
                    "UPDATE case_slots SET n = n - 1 WHERE hour = ?1 AND n > 0",
                    [hour],
                )
                .map(|_| ())
            })
            .await
    }

    async fn held(&self) -> Result<Vec<HeldAlarm>, LedgerError> {
        self.db
            .run(|c| {
                let mut stmt = c.prepare("SELECT record FROM held ORDER BY alarm_key")?;
                let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
                rows.map(|r| r.and_then(|s| from_json(&s))).collect()
            })
            .await
    }

    async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>, LedgerError> {
        let filter = filter.clone();
        self.db
            .run(move |c| {
                let limit = if filter.limit == 0 {
                    i64::MAX
                } else {
                    filter.limit as i64
                };
                let mut stmt = c.prepare(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions d \
                     WHERE (?1 IS NULL OR d.alarm_key = ?1) \
                       AND (?2 IS NULL OR d.case_id = ?2) \
                       AND (?3 IS NULL OR d.at >= ?3) \
                     ORDER BY d.seq DESC LIMIT ?4"
                ))?;
                let rows = stmt.query_map(
                    params![
                        filter.alarm_key,
                        filter.case_id,
                        filter.since.map(|t| t.to_rfc3339()),
                        limit
                    ],
                    decision_row,
                )?;
                rows.collect()
            })
            .await
    }
}

// ---- notices --------------------------------------------------------------------------------

/// The embedded default's notice sink: what would have been sent, kept beside the case
/// (`cases show` lists it).
pub struct NoticeLog {
    db: Arc<Db>,
}

impl NoticeLog {
    /// The notices about a case, oldest first: `(when, notice)`.
    pub fn for_case(
        &self,
        case_id: &str,
    ) -> Result<Vec<(DateTime<Utc>, serde_json::Value)>, LedgerError> {
        let case_id = case_id.to_owned();
        self.db.with(move |c| {
            let mut stmt =
                c.prepare("SELECT at, record FROM notices WHERE case_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map([case_id], |r| {
                let at: String = r.get(0)?;
                let record: String = r.get(1)?;
                Ok((parse_time(&at)?, from_json(&record)?))
            })?;
            rows.collect()
        })
    }
}

#[async_trait]
impl crate::notify::NoticeSink for NoticeLog {
    fn name(&self) -> &'static str {
        "ledger"
    }

    async fn send(&self, notice: &crate::notify::Notice) -> Result<(), String> {
        let mut record = serde_json::to_value(notice).map_err(|e| e.to_string())?;
        record["text"] = serde_json::Value::String(notice.text());
        let record = record.to_string();
        let case_id = notice.case_id().map(str::to_owned);
        self.db
            .run(move |c| {
                c.execute(
                    "INSERT INTO notices (at, case_id, record) VALUES (?1, ?2, ?3)",
                    params![Utc::now().to_rfc3339(), case_id, record],
                )
                .map(|_| ())
            })
            .await
            .map_err(|e| e.to_string())
    }
}

// ---- dry-run support desk -------------------------------------------------------------------

/// The service list the dry-run desk checks against (`support_services.txt`).
pub fn bundled_services() -> Arc<ServiceCatalog> {
    static CATALOG: std::sync::OnceLock<Arc<ServiceCatalog>> = std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| Arc::new(ServiceCatalog::parse(include_str!("support_services.txt"))))
        .clone()
}

/// A case the dry-run desk recorded instead of opening it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunCase {
    pub case_id: String,
    pub created_at: DateTime<Utc>,
    pub resolved: bool,
    pub case: NewCase,
    pub communications: Vec<Communication>,
    /// The files it would have attached (the alarm's graph), as kept on disk.
    pub attachments: Vec<PathBuf>,
}

pub struct DryRunDesk {
    db: Arc<Db>,
    /// Where the files it would have attached are kept (`DATA_DIR/graphs`).
    graphs: PathBuf,
}

/// The dry-run desk's attachments, under `DATA_DIR`.
pub const GRAPHS_DIR: &str = "graphs";

const DRY_RUN_PREFIX: &str = "dry-run-";

fn dry_run_number(case_id: &str) -> Option<i64> {
    case_id.strip_prefix(DRY_RUN_PREFIX)?.parse().ok()
}

impl DryRunDesk {
    /// The recorded case with this id, with its communications.
    pub fn case(&self, case_id: &str) -> Result<Option<DryRunCase>, LedgerError> {
        let Some(n) = dry_run_number(case_id) else {
            return Ok(None);
        };
        let case_id = case_id.to_owned();
        self.db
            .with(move |c| {
                let row = c
                    .query_row(
                        "SELECT created_at, record, resolved_at FROM dry_run_cases WHERE n = ?1",
                        [n],
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, Option<String>>(2)?,
                            ))
                        },
                    )
                    .optional()?;
                let Some((created, record, resolved)) = row else {
                    return Ok(None);
                };
                let mut stmt = c.prepare(
                    "SELECT record FROM dry_run_communications WHERE n = ?1 ORDER BY id",
                )?;
                let communications = stmt
                    .query_map([n], |r| r.get::<_, String>(0))?
                    .map(|r| r.and_then(|s| from_json(&s)))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(Some(DryRunCase {
                    attachments: Vec::new(),
                    case_id,
                    created_at: parse_time(&created)?,
                    resolved: resolved.is_some(),
                    case: from_json(&record)?,
                    communications,
                }))
            })
            .map(|found| {
                found.map(|mut c| {
                    c.attachments = self.attachments_of(&c.case_id);
                    c
                })
            })
    }

    /// The files kept for a case, by name.
    fn attachments_of(&self, case_id: &str) -> Vec<PathBuf> {
        let prefix = format!("{case_id}--");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.graphs)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(&prefix))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    fn exists_open(c: &Connection, n: i64) -> rusqlite::Result<bool> {
        c.query_row(
            "SELECT COUNT(*) FROM dry_run_cases WHERE n = ?1 AND resolved_at IS NULL",
            [n],
            |r| r.get::<_, i64>(0),
        )
        .map(|count| count > 0)
    }
}

fn desk_error(e: LedgerError) -> DeskError {
    DeskError::Unavailable(e.to_string())
}

#[async_trait]
impl SupportDesk for DryRunDesk {
    async fn services(&self) -> Result<Option<Arc<ServiceCatalog>>, DeskError> {
        Ok(Some(bundled_services()))
    }

    async fn create_case(&self, case: &NewCase) -> Result<String, DeskError> {
        // Refuse what AWS Support would refuse, so the same mistakes show on a laptop.
        bundled_services()
            .check(&case.service_code, Some(&case.category_code))
            .map_err(|e| DeskError::Rejected(format!("CreateCase: {e}")))?;
        let record = serde_json::to_string(case).map_err(|e| DeskError::Rejected(e.to_string()))?;
        let n = self
            .db
            .run(move |c| {
                c.execute(
                    "INSERT INTO dry_run_cases (created_at, record) VALUES (?1, ?2)",
                    params![Utc::now().to_rfc3339(), record],
                )?;
                Ok(c.last_insert_rowid())
            })
            .await
            .map_err(desk_error)?;
        let case_id = format!("{DRY_RUN_PREFIX}{n}");
        // What would have been attached, kept where `cases show` points to it. A file that
        // cannot be written costs the picture, never the case.
        for a in &case.attachments {
            let path = self.graphs.join(format!("{case_id}--{}", a.file_name));
            let written =
                std::fs::create_dir_all(&self.graphs).and_then(|()| std::fs::write(&path, &a.data));
            if let Err(e) = written {
                tracing::warn!(path = %path.display(), error = %e, "could not keep an attachment");
            }
        }
        Ok(case_id)
    }

    async fn add_communication(
        &self,
        case_id: &str,
        comm: &Communication,
    ) -> Result<(), DeskError> {
        let n =
            dry_run_number(case_id).ok_or_else(|| DeskError::CaseNotFound(case_id.to_owned()))?;
        let record = serde_json::to_string(comm).map_err(|e| DeskError::Rejected(e.to_string()))?;
        let reference = crate::case::communication_reference(&comm.communication_body)
            .map(|r| format!("%{r}%"));
        let found = self
            .db
            .run(move |c| {
                if !DryRunDesk::exists_open(c, n)? {
                    return Ok(false);
                }
                // Already there: an earlier attempt whose answer was lost did land.
                if let Some(like) = &reference {
                    let there: i64 = c.query_row(
                        "SELECT COUNT(*) FROM dry_run_communications WHERE n = ?1 AND record LIKE ?2",
                        params![n, like],
                        |r| r.get(0),
                    )?;
                    if there > 0 {
                        return Ok(true);
                    }
                }
                c.execute(
                    "INSERT INTO dry_run_communications (n, at, record) VALUES (?1, ?2, ?3)",
                    params![n, Utc::now().to_rfc3339(), record],
                )?;
                Ok(true)
            })
            .await
            .map_err(desk_error)?;
        match found {
            true => Ok(()),
            false => Err(DeskError::CaseNotFound(case_id.to_owned())),
        }
    }

    async fn case_info(&self, case_id: &str) -> Result<Option<CaseInfo>, DeskError> {
        let case = self.case(case_id).map_err(desk_error)?;
        Ok(case.map(|c| CaseInfo {
            case_id: c.case_id,
            display_id: None,
            subject: c.case.subject,
            status: if c.resolved { "resolved" } else { "opened" }.into(),
            severity_code: Some(c.case.severity_code.as_str().into()),
            resolved: c.resolved,
        }))
    }

    async fn find_case(
        &self,
        reference: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<String>, DeskError> {
        let needle = format!("%{reference}%");
        let found = self
            .db
            .run(move |c| {
                c.query_row(
                    "SELECT n FROM dry_run_cases WHERE created_at >= ?1 AND record LIKE ?2 ORDER BY n LIMIT 1",
                    params![since.to_rfc3339(), needle],
                    |r| r.get::<_, i64>(0),
                )
                .optional()
            })
            .await
            .map_err(desk_error)?;
        Ok(found.map(|n| format!("{DRY_RUN_PREFIX}{n}")))
    }

    async fn resolve_case(&self, case_id: &str) -> Result<(), DeskError> {
        let n =
            dry_run_number(case_id).ok_or_else(|| DeskError::CaseNotFound(case_id.to_owned()))?;
        let changed = self
            .db
            .run(move |c| {
                c.execute(
                    "UPDATE dry_run_cases SET resolved_at = ?1 WHERE n = ?2 AND resolved_at IS NULL",
                    params![Utc::now().to_rfc3339(), n],
                )
            })
            .await
            .map_err(desk_error)?;
        match changed {
            0 => Err(DeskError::CaseNotFound(case_id.to_owned())),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn config_file_round_trip_and_hand_edits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalConfigFile::new(dir.path().join(CONFIG_FILE));
        assert_eq!(
            store.get("a").await.expect("get"),
            None,
            "no file: no settings"
        );
        let rec = AlarmConfigRecord {
            priority: Some("high".into()),
            ..Default::default()
        };
        store.put("a", &rec).await.expect("put");
        assert_eq!(store.get("a").await.expect("get"), Some(rec));

        // A hand edit is picked up (mtime changes; sleep past coarse timestamps).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(
            store.path(),
            r#"{"b": {"priority": "low", "ccemail": "x@y.com"}}"#,
        )
        .expect("write");
        assert_eq!(store.get("a").await.expect("get"), None);
        assert!(store.get("b").await.expect("get").is_some());

        assert!(store.delete("b").await.expect("delete"));
        assert!(!store.delete("b").await.expect("delete"));
        assert!(store.list().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn corrupt_config_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalConfigFile::new(dir.path().join(CONFIG_FILE));
        std::fs::write(store.path(), "{ not json").expect("write");
        assert!(matches!(
            store.get("a").await,
            Err(StoreError::Corrupt { .. })
        ));
        assert!(store.put("a", &AlarmConfigRecord::default()).await.is_err());
        assert_eq!(
            std::fs::read_to_string(store.path()).expect("read"),
            "{ not json"
        );
    }

    #[tokio::test]
    async fn claims_exclude_each_other_until_released_or_expired() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = LocalBackend::open(dir.path()).expect("open");
        let now = Utc::now();
        let later = now + chrono::Duration::minutes(2);
        let claim = |key: &str, replaces: Option<&str>| {
            Claim::new(key, now, later, replaces.map(str::to_owned))
        };
        let taken = |o: ClaimOutcome| matches!(o, ClaimOutcome::Taken { .. });
        let first = claim("alarm-a", None);
        let second = claim("alarm-a", None);
        assert_eq!(
            b.ledger.claim(&first, now).await.expect("claim"),
            ClaimOutcome::Taken { stale: None }
        );
        assert!(
            !taken(b.ledger.claim(&second, now).await.expect("claim")),
            "a live claim excludes"
        );
        assert!(taken(
            b.ledger
                .claim(&claim("alarm-b", None), now)
                .await
                .expect("claim")
        ));
        // A claim left behind by a crash is taken over once it expires, with its reference.
        let takeover = b
            .ledger
            .claim(&second, later + chrono::Duration::seconds(1))
            .await
            .expect("claim");
        assert_eq!(
            takeover,
            ClaimOutcome::Taken {
                stale: Some(StaleClaim {
                    reference: first.reference.clone(),
                    claimed_at: parse_time(&first.claimed_at.to_rfc3339()).expect("time"),
                })
            }
        );
        // The first owner's commit then fails instead of recording a second case.
        let decision = Decision {
            seq: 0,
            at: now,
            delivery_kind: "direct".into(),
            delivery_id: None,
            alarm_key: "alarm-a".into(),
            alarm_name: "alarm-a".into(),
            state: "ALARM".into(),
            state_change_time: "t".into(),
            outcome: Outcome::Created,
            case_id: Some("dry-run-1".into()),
            note: None,
        };
        let open = OpenCase {
            alarm_key: "alarm-a".into(),
            alarm_name: "alarm-a".into(),
            case_id: "dry-run-1".into(),
            opened_at: now,
            last_update_at: now,
            coalesced: 0,
            updates: 0,
            recovered: false,
            digest: None,
            cycles: Vec::new(),
            flapping: false,
            group: None,
        };
        let commit = |claim: &Claim| {
            let mut c = Commit::record(vec!["event:a".into()], decision.clone());
            c.open_cases.push(OpenCaseChange::Put(open.clone()));
            c.claim = Some(claim.clone());
            c
        };
        assert!(matches!(
            b.ledger.commit(commit(&first)).await,
            Err(LedgerError::Conflict(_))
        ));
        assert!(
            b.ledger
                .find_handled(&["event:a".into()])
                .await
                .expect("read")
                .is_none()
        );
        b.ledger
            .commit(commit(&second))
            .await
            .expect("owner commits");
        // With a case open, only a claim that replaces that very case is granted.
        assert!(!taken(
            b.ledger
                .claim(&claim("alarm-a", None), later)
                .await
                .expect("claim")
        ));
        assert!(!taken(
            b.ledger
                .claim(&claim("alarm-a", Some("dry-run-9")), later)
                .await
                .expect("claim")
        ));
        let replacing = claim("alarm-a", Some("dry-run-1"));
        assert!(taken(
            b.ledger.claim(&replacing, later).await.expect("claim")
        ));
        b.ledger.release(&replacing).await.expect("release");
        assert!(taken(
            b.ledger
                .claim(&claim("alarm-a", Some("dry-run-1")), later)
                .await
                .expect("claim")
        ));
    }

    #[tokio::test]
    async fn dry_run_desk_refuses_unknown_and_resolved_cases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = LocalBackend::open(dir.path()).expect("open");
        let comm = Communication {
            communication_body: "hi".into(),
            cc_email_addresses: vec![],
        };
        assert!(matches!(
            b.desk.add_communication("dry-run-9", &comm).await,
            Err(DeskError::CaseNotFound(_))
        ));
        assert!(matches!(
            b.desk.add_communication("case-123", &comm).await,
            Err(DeskError::CaseNotFound(_))
        ));
        assert!(matches!(
            b.desk.resolve_case("dry-run-1").await,
            Err(DeskError::CaseNotFound(_))
        ));
    }
}
