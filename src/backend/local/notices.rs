//! The local notice log: what the notifier would have told people, kept in the ledger's
//! database beside the case it is about, so `cases show` can list it. The embedded
//! default's notice sink.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{Db, from_json, parse_time};
use crate::ports::ledger::LedgerError;

/// The embedded default's notice sink: what would have been sent, kept beside the case
/// (`cases show` lists it).
pub struct NoticeLog {
    pub(super) db: Arc<Db>,
}

impl NoticeLog {
    /// The notices about a case, oldest first: `(when, notice)`.
    pub fn for_case(
        &self,
        case_id: &str,
    ) -> Result<Vec<(DateTime<Utc>, serde_json::Value)>, LedgerError> {
        let case_id = case_id.to_owned();
        self.db.read(move |c| {
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
impl crate::ports::notify::NoticeSink for NoticeLog {
    fn name(&self) -> &'static str {
        "ledger"
    }

    async fn send(
        &self,
        notice: &crate::domain::notice::Notice,
    ) -> Result<(), crate::ports::PortError> {
        use crate::ports::PortError;
        let mut record =
            serde_json::to_value(notice).map_err(|e| PortError::caused(e.to_string(), e))?;
        record["text"] = serde_json::Value::String(notice.text());
        let record = record.to_string();
        let case_id = notice.case_id().map(str::to_owned);
        self.db
            .write(true, move |c| {
                c.execute(
                    "INSERT INTO notices (at, case_id, record) VALUES (?1, ?2, ?3)",
                    params![Utc::now().to_rfc3339(), case_id, record],
                )
                .map(|_| ())
            })
            .await
            .map_err(|e| PortError::caused(e.to_string(), e))
    }
}
