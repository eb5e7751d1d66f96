//! The ledger table this service adds to DynamoDB.
//!
//! Ledger layout (one table, string keys `pk`/`sk`, TTL attribute `expires_at`):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a handled delivery or event (TTL) | `handled#<key>` | `-` |
//! | the alarm's open case, or a claim to open one | `alarm#<alarm key>` | `open` |
//! | a decision, per alarm | `alarm#<alarm key>` | `decision#<seq>` |
//! | the same decision, per day (for `cases list`) | `day#<YYYY-MM-DD>` | `<seq>#<alarm key>` |
//! | the same decision, per case (for `cases show`) | `case#<case id>` | `decision#<seq>` |
//!
//! The notice outbox (`outbox`) and the pages (`pages`) keep their items in the same table,
//! under partitions of their own; `pages` documents its items.
//!
//! Every decision is one TransactWriteItems: handled keys (conditional: not yet handled),
//! the decision copies and the open-case change (conditional on our claim when a case was
//! just opened). `seq` is the decision time in microseconds, zero-padded so it sorts.
//!
//! This file holds the table's layout and the [`CaseLedger`] methods; `requests` the
//! DynamoDB calls they make, `items` the items' shapes, `claims` the claim transaction and
//! how its cancellation reads, `commit` a decision's transaction.

mod claims;
mod commit;
mod items;
pub(super) mod requests;

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::{get_s, n, s};
use crate::ports::ledger::{
    CaseLedger, Claim, ClaimOutcome, Commit, CountedClaim, Decision, DecisionFilter,
    DuplicateTally, HeldAlarm, LedgerError, Lookup, OpenCase, slot_hour,
};
use claims::{Cancelled, claim_item, read_cancelled, stale_claim};
use items::{
    BELOW_CAP, TAKE_SLOT, item_key, keep_earliest, live_decision, open_from, seq_of, slot_key,
    slot_values, slots_from,
};
use requests::{Transacted, cancellation_codes, ledger_error};

pub struct DynamoLedger {
    pub(super) client: Client,
    pub(super) table: String,
    /// How long a handled delivery or event is remembered (SQS keeps a message 14 days at
    /// most, so a redelivery cannot come later than that).
    handled_ttl: Duration,
    /// Duplicates answered from memory, counted per event and written together by
    /// BatchWriteItem (see [`CaseLedger::note`]).
    notes: DuplicateTally,
}

const OPEN_SK: &str = "open";
/// Partition of the alarms held during maintenance windows (sort key: the alarm key).
const HELD_PK: &str = "held";
const STATE_OPEN: &str = "open";
const STATE_CLAIMED: &str = "claimed";
/// How many days back `cases list` looks when no `since` is given.
const LIST_DAYS: i64 = 31;

impl DynamoLedger {
    /// The ledger table of `settings`, through `clients`' DynamoDB clients.
    pub fn on(
        clients: &crate::backend::aws::AwsClients,
        settings: &crate::backend::aws::AwsSettings,
    ) -> Self {
        Self::new(
            clients.dynamodb.clone(),
            &settings.ledger_table,
            settings.handled_ttl,
        )
    }

    pub fn new(client: Client, table: &str, handled_ttl: Duration) -> Self {
        Self {
            client,
            table: table.to_owned(),
            handled_ttl,
            notes: DuplicateTally::default(),
        }
    }
}

#[async_trait]
impl CaseLedger for DynamoLedger {
    async fn find_handled(&self, keys: &[String]) -> Result<Option<Decision>, LedgerError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let wanted = keys
            .iter()
            .map(|k| item_key(format!("handled#{k}"), "-"))
            .collect();
        let epoch = Utc::now().timestamp();
        let mut earliest = None;
        for item in self.batch_get(wanted).await? {
            keep_earliest(&mut earliest, live_decision(&item, epoch)?);
        }
        Ok(earliest)
    }

    /// The handled keys, the alarm's open case and the hour's slot counter in one
    /// BatchGetItem (consistent reads).
    async fn lookup(
        &self,
        keys: &[String],
        alarm_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Lookup, LedgerError> {
        let open_pk = format!("alarm#{alarm_key}");
        let slots_pk = format!("slots#{}", slot_hour(now));
        let mut wanted = vec![
            item_key(open_pk.clone(), OPEN_SK),
            item_key(slots_pk.clone(), "-"),
        ];
        wanted.extend(keys.iter().map(|k| item_key(format!("handled#{k}"), "-")));
        let epoch = Utc::now().timestamp();
        let mut found = Lookup::default();
        for item in self.batch_get(wanted).await? {
            match get_s(&item, "pk") {
                Some(pk) if pk == open_pk => found.open = open_from(&item)?,
                Some(pk) if pk == slots_pk => found.slots_taken = slots_from(&item),
                Some(pk) if pk.starts_with("handled#") => {
                    keep_earliest(&mut found.earlier, live_decision(&item, epoch)?)
                }
                _ => {}
            }
        }
        if found.earlier.is_some() {
            found.open = None;
            found.slots_taken = 0;
        }
        Ok(found)
    }

    /// A duplicate answered from memory costs no request of its own: duplicates are
    /// counted per event in memory ([`DuplicateTally`]), and the lines of up to eight
    /// events go out in one BatchWriteItem. So a redelivery storm of one message costs a
    /// request every ten seconds, not one per redelivery. Not durable until then: a crash
    /// may lose such lines of history, never a case or a handled key.
    async fn note(&self, mut decision: Decision) -> Result<(), LedgerError> {
        decision.seq = seq_of(decision.at);
        match self.notes.add(decision) {
            Some(due) => self.write_noted(due).await,
            None => Ok(()),
        }
    }

    async fn flush(&self) -> Result<(), LedgerError> {
        self.write_noted(self.notes.take()).await
    }

    async fn open_case(&self, alarm_key: &str) -> Result<Option<OpenCase>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("alarm#{alarm_key}")))
            .key("sk", s(OPEN_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ledger_error("GetItem", e))?;
        match out.item() {
            Some(item) => open_from(item),
            None => Ok(None),
        }
    }

    async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError> {
        let mut all = Vec::new();
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("sk = :open AND #state = :state")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":open", s(OPEN_SK))
            .expression_attribute_values(":state", s(STATE_OPEN))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items
            .try_next()
            .await
            .map_err(|e| ledger_error("Scan", e))?
        {
            if let Some(json) = get_s(&item, "record") {
                all.push(
                    serde_json::from_str(json)
                        .map_err(|e| LedgerError::corrupt("a ledger record", e))?,
                );
            }
        }
        Ok(all)
    }

    /// One TransactWriteItems: none of the claim's handled keys recorded (condition
    /// checks), one of the hour's slots (below the cap), and the claim, when nothing is held
    /// under the alarm's key (or only the resolved case it replaces). So a new alarm needs
    /// no read before it: what failed says what the decision did not know. DynamoDB
    /// applies the transaction atomically (serializably against every other write), so two
    /// instances cannot both pass the cap.
    async fn claim_counted(
        &self,
        claim: &Claim,
        cap: usize,
        now: DateTime<Utc>,
    ) -> Result<CountedClaim, LedgerError> {
        let items = self.counted_claim_items(claim, cap, now)?;
        let reasons = match self.transact("claim", &items).await? {
            Transacted::Done => return Ok(CountedClaim::Taken { stale: None }),
            Transacted::Cancelled(reasons) => reasons,
        };
        match read_cancelled(&reasons, claim.handled_keys.len(), now)? {
            Cancelled::Decided(outcome) => Ok(outcome),
            Cancelled::ExpiredClaim => {
                crate::ports::ledger::claim_counted_in_steps(self, claim, cap, now).await
            }
        }
    }

    fn checks_at_claim(&self) -> bool {
        true
    }

    async fn claim(&self, claim: &Claim, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
        let (item, condition, values) = claim_item(claim, now);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_names("#state", "state")
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result {
            // Overwriting an expired claim: its owner may have opened a case.
            Ok(out) => Ok(ClaimOutcome::Taken {
                stale: out.attributes().and_then(stale_claim),
            }),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                Ok(ClaimOutcome::Refused)
            }
            Err(e) => Err(ledger_error("PutItem (claim)", e)),
        }
    }

    async fn renew(&self, claim: &Claim, until: DateTime<Utc>) -> Result<bool, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("alarm#{}", claim.alarm_key)))
            .key("sk", s(OPEN_SK))
            .update_expression("SET claim_expires = :until")
            .condition_expression("#state = :claimed AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(STATE_CLAIMED))
            .expression_attribute_values(":token", s(claim.token.clone()))
            .expression_attribute_values(":until", n(until.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(ledger_error("UpdateItem (renew)", e)),
        }
    }

    async fn release(&self, claim: &Claim) -> Result<(), LedgerError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("alarm#{}", claim.alarm_key)))
            .key("sk", s(OPEN_SK))
            .condition_expression("#state = :claimed AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":claimed", s(STATE_CLAIMED))
            .expression_attribute_values(":token", s(claim.token.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Someone took the expired claim over: nothing of ours to give back.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(ledger_error("DeleteItem (release)", e)),
        }
    }

    async fn commit(&self, mut commit: Commit) -> Result<i64, LedgerError> {
        let seq = seq_of(commit.decision.at);
        commit.decision.seq = seq;
        let items = self.commit_items(&commit)?;
        match self.transact("commit", &items).await? {
            Transacted::Done => Ok(seq),
            Transacted::Cancelled(reasons) => Err(LedgerError::Conflict(format!(
                "transaction cancelled [{}]",
                cancellation_codes(&reasons)
            ))),
        }
    }

    async fn case_slots_taken(&self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(slot_key(now)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ledger_error("GetItem (slots)", e))?;
        Ok(out.item().map(slots_from).unwrap_or(0))
    }

    /// One counter item per clock hour, incremented only while below the cap: a
    /// conditional update, so a fleet cannot overshoot and no request scans decisions.
    async fn take_case_slot(&self, cap: usize, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(slot_key(now)))
            .update_expression(TAKE_SLOT)
            .condition_expression(BELOW_CAP)
            .set_expression_attribute_values(Some(slot_values(cap, now)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(ledger_error("UpdateItem (take slot)", e)),
        }
    }

    async fn return_case_slot(&self, now: DateTime<Utc>) -> Result<(), LedgerError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(slot_key(now)))
            .update_expression("ADD n :minus")
            .condition_expression("n > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(e) => Err(ledger_error("UpdateItem (return slot)", e)),
        }
    }

    async fn held(&self) -> Result<Vec<HeldAlarm>, LedgerError> {
        let mut all = Vec::new();
        let mut items = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(HELD_PK))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items
            .try_next()
            .await
            .map_err(|e| ledger_error("Query", e))?
        {
            let json = get_s(&item, "record")
                .ok_or_else(|| LedgerError::corrupt_said("held item without record"))?;
            all.push(
                serde_json::from_str(json)
                    .map_err(|e| LedgerError::corrupt("a ledger record", e))?,
            );
        }
        Ok(all)
    }

    async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>, LedgerError> {
        // Noted duplicates first, so the list is complete.
        self.flush().await?;
        let limit = if filter.limit == 0 {
            usize::MAX
        } else {
            filter.limit
        };
        let mut found = if let Some(case) = &filter.case_id {
            self.query(format!("case#{case}"), Some("decision#"), limit)
                .await?
        } else if let Some(alarm) = &filter.alarm_key {
            self.query(format!("alarm#{alarm}"), Some("decision#"), limit)
                .await?
        } else {
            let today = Utc::now().date_naive();
            let oldest = filter
                .since
                .map(|s| s.date_naive())
                .unwrap_or(today - chrono::Duration::days(LIST_DAYS));
            let mut all = Vec::new();
            let mut day = today;
            while day >= oldest && all.len() < limit {
                let page = self
                    .query(
                        format!("day#{}", day.format("%Y-%m-%d")),
                        None,
                        limit - all.len(),
                    )
                    .await?;
                all.extend(page);
                day -= chrono::Duration::days(1);
            }
            all
        };
        if let Some(since) = filter.since {
            found.retain(|d| d.at >= since);
        }
        Ok(found)
    }
}
