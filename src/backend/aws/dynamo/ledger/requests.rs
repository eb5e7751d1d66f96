//! The DynamoDB requests the ledger makes, each with the care its failures need:
//! transactions that say why they were cancelled, reads that ask again for what was left
//! unprocessed, and the conditional writes a transaction is made of.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Delete, KeysAndAttributes, Put, TransactWriteItem,
};

use super::DynamoLedger;
use super::items::{decision_from, decision_json, history};
use crate::backend::aws::describe;
use crate::backend::aws::dynamo::{Item, s};
use crate::ports::ledger::{Decision, LedgerError};

/// How a TransactWriteItems ended, when DynamoDB answered.
pub(in crate::backend::aws::dynamo) enum Transacted {
    Done,
    /// Nothing was written; why, item by item.
    Cancelled(Vec<CancellationReason>),
}

/// BatchGetItem requests made for one read before unprocessed keys are an error.
const BATCH_GET_ATTEMPTS: u32 = 5;
/// Between reads of what DynamoDB left unprocessed: 20, 40, 80, 160 ms.
const BATCH_GET_BACKOFF: crate::retry::Backoff = crate::retry::Backoff::new(
    std::time::Duration::from_millis(20),
    2,
    std::time::Duration::from_secs(1),
);

pub(in crate::backend::aws::dynamo) fn ledger_error<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    op: &str,
    e: SdkError<E, R>,
) -> LedgerError {
    LedgerError::storage_said(format!("{op}: {}", describe(&e)))
}

pub(in crate::backend::aws::dynamo) fn build_error(
    e: aws_sdk_dynamodb::error::BuildError,
) -> LedgerError {
    LedgerError::storage("building a DynamoDB request", e)
}

impl DynamoLedger {
    /// One TransactWriteItems, retried by the SDK with one ClientRequestToken (so a retry
    /// after a lost answer is the same write, not a second one): done, or refused with the
    /// reasons, one per item.
    pub(in crate::backend::aws::dynamo) async fn transact(
        &self,
        what: &str,
        items: &[TransactWriteItem],
    ) -> Result<Transacted, LedgerError> {
        // ClientRequestToken is an idempotency token in DynamoDB's API model: left unset, the
        // SDK makes one per call and its retries resend the same request, token included.
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items.to_vec()))
            .send()
            .await
        {
            Ok(_) => Ok(Transacted::Done),
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                let TransactWriteItemsError::TransactionCanceledException(c) = e.into_err() else {
                    unreachable!("matched above")
                };
                Ok(Transacted::Cancelled(
                    c.cancellation_reasons.unwrap_or_default(),
                ))
            }
            Err(e) => Err(ledger_error(&format!("TransactWriteItems ({what})"), e)),
        }
    }

    /// For `check`: one transaction that writes nothing (a condition on a key never
    /// written) shows that the ledger's transactions reach DynamoDB, signed and allowed.
    pub async fn probe_transactions(&self) -> Result<(), LedgerError> {
        use aws_sdk_dynamodb::types::ConditionCheck;
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s("check#probe"))
            .key("sk", s("-"))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_error)?;
        let item = TransactWriteItem::builder().condition_check(check).build();
        match self.transact("check", &[item]).await? {
            Transacted::Done => Ok(()),
            Transacted::Cancelled(reasons) => Err(LedgerError::storage_said(format!(
                "TransactWriteItems (check) cancelled: {}",
                reasons
                    .iter()
                    .map(|r| r.code().unwrap_or("?"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Consistent reads of these items, however many BatchGetItem requests it takes: keys
    /// DynamoDB leaves unprocessed (throttling) are asked for again, never taken as absent
    /// (an unread handled key would make a redelivery look new).
    pub(in crate::backend::aws::dynamo) async fn batch_get(
        &self,
        wanted: Vec<Item>,
    ) -> Result<Vec<Item>, LedgerError> {
        let mut found = Vec::new();
        let mut pending = wanted;
        for attempt in 1..=BATCH_GET_ATTEMPTS {
            if pending.is_empty() {
                return Ok(found);
            }
            let ka = KeysAndAttributes::builder()
                .consistent_read(true)
                .set_keys(Some(std::mem::take(&mut pending)))
                .build()
                .map_err(build_error)?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, ka)
                .send()
                .await
                .map_err(|e| ledger_error("BatchGetItem", e))?;
            if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                found.extend(items.iter().cloned());
            }
            pending = out
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .map(|ka| ka.keys().to_vec())
                .unwrap_or_default();
            if !pending.is_empty() {
                tokio::time::sleep(BATCH_GET_BACKOFF.after(attempt)).await;
            }
        }
        match pending.is_empty() {
            true => Ok(found),
            false => Err(LedgerError::storage_said(format!(
                "BatchGetItem left {} key(s) unprocessed after {BATCH_GET_ATTEMPTS} attempts",
                pending.len()
            ))),
        }
    }

    /// Writes noted history items, 25 at most per request; what DynamoDB leaves unprocessed
    /// is tried once more, then given up with a warning (a line of history, never a case).
    async fn write_notes(&self, items: Vec<Item>) -> Result<(), LedgerError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        for chunk in items.chunks(25) {
            let mut requests = chunk
                .iter()
                .map(|item| {
                    PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(build_error)
                })
                .collect::<Result<Vec<_>, _>>()?;
            for attempt in 0..2 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| ledger_error("BatchWriteItem (noted duplicates)", e))?;
                requests = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                if attempt == 1 {
                    tracing::warn!(
                        items = requests.len(),
                        "noted duplicates left unwritten after a retry"
                    );
                }
            }
        }
        Ok(())
    }

    pub(super) async fn write_noted(&self, noted: Vec<Decision>) -> Result<(), LedgerError> {
        let mut items = Vec::new();
        for decision in noted {
            let json = decision_json(&decision)?;
            items.extend(history(&decision, &json));
        }
        match items.is_empty() {
            true => Ok(()),
            false => self.write_notes(items).await,
        }
    }

    pub(in crate::backend::aws::dynamo) fn put(
        &self,
        item: Item,
        condition: Option<(&str, Item)>,
    ) -> Result<TransactWriteItem, LedgerError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some((expr, values)) = condition {
            put = put
                .condition_expression(expr)
                .set_expression_attribute_values((!values.is_empty()).then_some(values));
            // `state` is a reserved word in DynamoDB expressions.
            if expr.contains("#state") {
                put = put.expression_attribute_names("#state", "state");
            }
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(build_error)?)
            .build())
    }

    pub(in crate::backend::aws::dynamo) fn delete(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<TransactWriteItem, LedgerError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(super) async fn query(
        &self,
        pk: String,
        prefix: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Decision>, LedgerError> {
        let q = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .expression_attribute_values(":pk", s(pk));
        let q = match prefix {
            Some(p) => q
                .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                .expression_attribute_values(":p", s(p)),
            None => q.key_condition_expression("pk = :pk"),
        };
        // Pages are fetched as the items are read: stopping at the limit stops the reads.
        let mut items = q.into_paginator().items().send();
        let mut out = Vec::new();
        while let Some(item) = items
            .try_next()
            .await
            .map_err(|e| ledger_error("Query", e))?
        {
            out.push(decision_from(&item)?);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}

/// The codes of a cancelled transaction's reasons, one per item in order (`None` for an item
/// that passed), as a conflict reports them.
pub(in crate::backend::aws::dynamo) fn cancellation_codes(
    reasons: &[CancellationReason],
) -> String {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
    codes.join(",")
}
