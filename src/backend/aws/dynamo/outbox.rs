//! The notice outbox in the ledger table: one item per notice under `pk = outbox`, written in
//! the decision's own transaction. Taken with a conditional lease, so one instance of a fleet
//! sends each; deleted once delivered; kept, marked failed, for 30 days when given up.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::ledger::DynamoLedger;
use super::{Item, TTL_ATTRIBUTE, get_n, get_s, n, s};
use crate::domain::notice::Notice;
use crate::ports::ledger::LedgerError;
use crate::ports::notify::{OutboxState, Queued};

const PK: &str = "outbox";
const PENDING: &str = "pending";
const FAILED: &str = "failed";
/// How long a failed notice stays visible (`cases show`).
const KEEP_FAILED: chrono::Duration = chrono::Duration::days(30);
/// Pages of the outbox read for one round: a few hundred notices at most.
const PAGES: usize = 4;

fn storage(what: &str, e: impl std::fmt::Display) -> LedgerError {
    LedgerError::storage_said(format!("{what}: {e}"))
}

/// The item of a notice queued now: its id sorts by the time it was queued.
pub(super) fn notice_item(notice: &Notice, now: DateTime<Utc>) -> Result<Item, LedgerError> {
    let json = serde_json::to_string(notice).map_err(|e| LedgerError::corrupt("a notice", e))?;
    let micros = now.timestamp_micros();
    let id = format!("{micros:020}#{:016x}", rand_u64());
    let mut item = Item::from([
        ("pk".to_owned(), s(PK)),
        ("sk".to_owned(), s(id)),
        ("notice".to_owned(), s(json)),
        ("queued_at".to_owned(), s(now.to_rfc3339())),
        ("next_at".to_owned(), n(now.timestamp_millis())),
        ("lease_until".to_owned(), n(now.timestamp_millis())),
        ("attempts".to_owned(), n(0)),
        ("state".to_owned(), s(PENDING)),
    ]);
    if let Some(case_id) = notice.case_id() {
        item.insert("case_id".to_owned(), s(case_id));
    }
    Ok(item)
}

/// A random number for ids queued in the same microsecond.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

fn notice_of(item: &Item) -> Result<Notice, LedgerError> {
    let json = get_s(item, "notice")
        .ok_or_else(|| LedgerError::corrupt_said("a notice without its text"))?;
    serde_json::from_str(json).map_err(|e| LedgerError::corrupt("a notice", e))
}

fn pending_of(item: &Item) -> Result<Option<Vec<String>>, LedgerError> {
    get_s(item, "pending")
        .map(|p| serde_json::from_str(p).map_err(|e| LedgerError::corrupt("a notice's sinks", e)))
        .transpose()
}

impl DynamoLedger {
    /// Every item of the outbox matching `filter` (with its values), a few pages at most.
    async fn outbox_items(
        &self,
        filter: &str,
        values: Vec<(&str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> Result<Vec<Item>, LedgerError> {
        let mut items = Vec::new();
        let mut start = None;
        for _ in 0..PAGES {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .filter_expression(filter)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pk", s(PK))
                .set_exclusive_start_key(start.take());
            for (k, v) in &values {
                q = q.expression_attribute_values(*k, v.clone());
            }
            let out = q
                .send()
                .await
                .map_err(|e| storage("Query (outbox)", crate::backend::aws::describe(&e)))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(k) => start = Some(k.clone()),
                None => break,
            }
        }
        Ok(items)
    }
}

#[async_trait]
impl crate::ports::notify::Outbox for DynamoLedger {
    async fn enqueue(&self, notices: Vec<Notice>) -> Result<(), LedgerError> {
        let now = Utc::now();
        for notice in &notices {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(notice_item(notice, now)?))
                .send()
                .await
                .map_err(|e| storage("PutItem (outbox)", crate::backend::aws::describe(&e)))?;
        }
        Ok(())
    }

    async fn take_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Queued>, LedgerError> {
        let at = now.timestamp_millis();
        let due = self
            .outbox_items(
                "#state = :pending AND next_at <= :now AND lease_until <= :now",
                vec![(":pending", s(PENDING)), (":now", n(at))],
            )
            .await?;
        let mut taken = Vec::new();
        for item in due.into_iter().take(limit) {
            let Some(id) = get_s(&item, "sk").map(str::to_owned) else {
                continue;
            };
            // The lease, taken only if nobody took it since: one sender per notice.
            let leased = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(PK))
                .key("sk", s(id.clone()))
                .update_expression("SET lease_until = :until")
                .condition_expression("#state = :pending AND lease_until <= :now")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pending", s(PENDING))
                .expression_attribute_values(":now", n(at))
                .expression_attribute_values(":until", n(until.timestamp_millis()))
                .send()
                .await;
            match leased {
                Ok(_) => taken.push(Queued {
                    id,
                    notice: notice_of(&item)?,
                    attempts: u32::try_from(get_n(&item, "attempts").unwrap_or(0)).unwrap_or(0),
                    pending: pending_of(&item)?,
                }),
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => {}
                Err(e) => {
                    return Err(storage(
                        "UpdateItem (outbox lease)",
                        crate::backend::aws::describe(&e),
                    ));
                }
            }
        }
        Ok(taken)
    }

    async fn delivered(&self, id: &str) -> Result<(), LedgerError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(id))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| storage("DeleteItem (outbox)", crate::backend::aws::describe(&e)))
    }

    async fn retry(
        &self,
        id: &str,
        pending: Vec<String>,
        attempts: u32,
        next: DateTime<Utc>,
        error: String,
    ) -> Result<(), LedgerError> {
        let pending =
            serde_json::to_string(&pending).map_err(|e| LedgerError::corrupt("sinks", e))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(id))
            .update_expression(
                "SET pending = :pending, attempts = :attempts, next_at = :next, \
                 lease_until = :next, #error = :error",
            )
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":pending", s(pending))
            .expression_attribute_values(":attempts", n(i64::from(attempts)))
            .expression_attribute_values(":next", n(next.timestamp_millis()))
            .expression_attribute_values(":error", s(error))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                storage(
                    "UpdateItem (outbox retry)",
                    crate::backend::aws::describe(&e),
                )
            })
    }

    async fn failed(
        &self,
        id: &str,
        pending: Vec<String>,
        error: String,
    ) -> Result<(), LedgerError> {
        let pending =
            serde_json::to_string(&pending).map_err(|e| LedgerError::corrupt("sinks", e))?;
        let expires = (Utc::now() + KEEP_FAILED).timestamp();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(PK))
            .key("sk", s(id))
            .update_expression(
                "SET #state = :failed, pending = :pending, #error = :error, \
                 attempts = attempts + :one, #ttl = :expires",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#error", "error")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":failed", s(FAILED))
            .expression_attribute_values(":pending", s(pending))
            .expression_attribute_values(":error", s(error))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                storage(
                    "UpdateItem (outbox failed)",
                    crate::backend::aws::describe(&e),
                )
            })
    }

    async fn about_case(&self, case_id: &str) -> Result<Vec<OutboxState>, LedgerError> {
        let items = self
            .outbox_items(
                "case_id = :case AND #state <> :none",
                vec![(":case", s(case_id)), (":none", s("-"))],
            )
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(OutboxState {
                    notice: notice_of(item)?,
                    queued_at: get_s(item, "queued_at")
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default(),
                    state: get_s(item, "state").unwrap_or(PENDING).to_owned(),
                    attempts: u32::try_from(get_n(item, "attempts").unwrap_or(0)).unwrap_or(0),
                    pending: pending_of(item)?,
                    error: get_s(item, "error").map(str::to_owned),
                })
            })
            .collect()
    }
}
