//! The dry-run support desk: records the complete case it would have opened at AWS Support
//! (ids `dry-run-N`) and every communication it would have added, in the ledger's database,
//! and keeps the files it would have attached under `DATA_DIR/graphs`. It refuses what AWS
//! Support would refuse, so the same mistakes show on a laptop.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::{Db, from_json, parse_time};
use crate::ports::desk::{
    CaseInfo, CaseMessage, Communication, DeskError, NewCase, ServiceCatalog, SupportDesk,
};
use crate::ports::graph::Attachment;
use crate::ports::ledger::LedgerError;

/// The service list the dry-run desk checks against (`support_services.txt`).
pub fn bundled_services() -> Arc<ServiceCatalog> {
    static CATALOG: std::sync::OnceLock<Arc<ServiceCatalog>> = std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| {
            Arc::new(ServiceCatalog::parse(include_str!(
                "../support_services.txt"
            )))
        })
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
    pub(super) db: Arc<Db>,
    /// Where the files it would have attached are kept (`DATA_DIR/graphs`).
    pub(super) graphs: PathBuf,
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
            .read(move |c| {
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
            .write(true, move |c| {
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
                tracing::warn!(path = %path.display(), error = %crate::errors::Chain(&e), "could not keep an attachment");
            }
        }
        Ok(case_id)
    }

    /// The case's opening text, then each communication it would have added.
    async fn communications(&self, case_id: &str) -> Result<Vec<CaseMessage>, DeskError> {
        let Some(n) = dry_run_number(case_id) else {
            return Ok(Vec::new());
        };
        self.db
            .reading(move |c| {
                let opened = c
                    .query_row(
                        "SELECT created_at, record FROM dry_run_cases WHERE n = ?1",
                        [n],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                    )
                    .optional()?;
                let Some((at, record)) = opened else {
                    return Ok(Vec::new());
                };
                let case: NewCase = from_json(&record)?;
                let mut out = vec![CaseMessage {
                    at: parse_time(&at)?,
                    by: "cw-support-api (dry run)".into(),
                    body: case.communication_body.as_str().to_owned(),
                }];
                let mut stmt = c.prepare(
                    "SELECT at, record FROM dry_run_communications WHERE n = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map([n], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (at, record) = row?;
                    let comm: Communication = from_json(&record)?;
                    out.push(CaseMessage {
                        at: parse_time(&at)?,
                        by: "cw-support-api (dry run)".into(),
                        body: comm.communication_body.as_str().to_owned(),
                    });
                }
                Ok(out)
            })
            .await
            .map_err(desk_error)
    }

    /// The graph kept beside the case (`DATA_DIR/graphs/<case id>--<name>.png`).
    async fn graph(&self, case_id: &str) -> Result<Option<Attachment>, DeskError> {
        let Some(path) = self
            .attachments_of(case_id)
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "png"))
        else {
            return Ok(None);
        };
        let data = tokio::fs::read(&path).await.map_err(|e| {
            DeskError::Rejected(format!("the graph {} cannot be read: {e}", path.display()))
        })?;
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once("--"))
            .map(|(_, name)| name.to_owned())
            .unwrap_or_default();
        Ok(Some(Attachment { file_name, data }))
    }

    async fn add_communication(
        &self,
        case_id: &str,
        comm: &Communication,
    ) -> Result<(), DeskError> {
        let n =
            dry_run_number(case_id).ok_or_else(|| DeskError::CaseNotFound(case_id.to_owned()))?;
        let record = serde_json::to_string(comm).map_err(|e| DeskError::Rejected(e.to_string()))?;
        let reference = crate::ports::desk::communication_reference(&comm.communication_body)
            .map(|r| format!("%{r}%"));
        let found = self
            .db
            .write(true, move |c| {
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
            .reading(move |c| {
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
            .write(true, move |c| {
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
    use crate::backend::local::LocalBackend;

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
