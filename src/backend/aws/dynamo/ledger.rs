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
//! Every decision is one TransactWriteItems: handled keys (conditional: not yet handled),
//! the decision copies and the open-case change (conditional on our claim when a case was
//! just opened). `seq` is the decision time in microseconds, zero-padded so it sorts.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    CancellationReason, Delete, KeysAndAttributes, Put, TransactWriteItem,
};
use chrono::{DateTime, Utc};

use super::{Item, TTL_ATTRIBUTE, get_n, get_s, n, s};
use crate::backend::aws::describe;
use crate::ports::ledger::{
    CaseLedger, Claim, ClaimOutcome, Commit, CountedClaim, Decision, DecisionFilter,
    DuplicateTally, HeldAlarm, HoldChange, LedgerError, Lookup, OpenCase, OpenCaseChange,
    StaleClaim, slot_hour,
};

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

/// How a TransactWriteItems ended, when DynamoDB answered.
enum Transacted {
    Done,
    /// Nothing was written; why, item by item.
    Cancelled(Vec<CancellationReason>),
}

/// BatchGetItem requests made for one read before unprocessed keys are an error.
const BATCH_GET_ATTEMPTS: usize = 5;

const OPEN_SK: &str = "open";
/// Partition of the alarms held during maintenance windows (sort key: the alarm key).
const HELD_PK: &str = "held";
const STATE_OPEN: &str = "open";
const STATE_CLAIMED: &str = "claimed";
/// How many days back `cases list` looks when no `since` is given.
const LIST_DAYS: i64 = 31;

fn ledger_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> LedgerError {
    LedgerError::storage_said(format!("{op}: {}", describe(&e)))
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> LedgerError {
    LedgerError::storage("building a DynamoDB request", e)
}

fn seq_of(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn decision_json(d: &Decision) -> Result<String, LedgerError> {
    serde_json::to_string(d).map_err(|e| LedgerError::corrupt("a decision", e))
}

fn decision_from(item: &Item) -> Result<Decision, LedgerError> {
    let json = get_s(item, "decision")
        .ok_or_else(|| LedgerError::corrupt_said("decision item without a decision"))?;
    serde_json::from_str(json).map_err(|e| LedgerError::corrupt("a decision item", e))
}

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

    /// One TransactWriteItems, retried by the SDK with one ClientRequestToken (so a retry
    /// after a lost answer is the same write, not a second one): done, or refused with the
    /// reasons, one per item.
    async fn transact(
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
    async fn batch_get(&self, wanted: Vec<Item>) -> Result<Vec<Item>, LedgerError> {
        let mut found = Vec::new();
        let mut pending = wanted;
        let mut pause = std::time::Duration::from_millis(20);
        for _ in 0..BATCH_GET_ATTEMPTS {
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
                tokio::time::sleep(pause).await;
                pause *= 2;
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

    /// A decision's history items: under its alarm, its day and its case.
    fn history(decision: &Decision, json: &str) -> Vec<Item> {
        let seq = decision.seq;
        let copies = [
            Some((
                format!("alarm#{}", decision.alarm_key),
                format!("decision#{seq:020}"),
            )),
            Some((
                format!("day#{}", decision.at.format("%Y-%m-%d")),
                format!("{seq:020}#{}", decision.alarm_key),
            )),
            decision
                .case_id
                .as_ref()
                .map(|c| (format!("case#{c}"), format!("decision#{seq:020}"))),
        ];
        copies
            .into_iter()
            .flatten()
            .map(|(pk, sk)| {
                Item::from([
                    ("pk".to_owned(), s(pk)),
                    ("sk".to_owned(), s(sk)),
                    ("decision".to_owned(), s(json.to_owned())),
                ])
            })
            .collect()
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

    async fn write_noted(&self, noted: Vec<Decision>) -> Result<(), LedgerError> {
        let mut items = Vec::new();
        for decision in noted {
            let json = decision_json(&decision)?;
            items.extend(Self::history(&decision, &json));
        }
        match items.is_empty() {
            true => Ok(()),
            false => self.write_notes(items).await,
        }
    }

    fn put(
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

    fn delete(&self, pk: String, sk: &str) -> Result<TransactWriteItem, LedgerError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    async fn query(
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
        use aws_sdk_dynamodb::types::{
            ConditionCheck, ReturnValuesOnConditionCheckFailure, Update,
        };
        let mut items = Vec::with_capacity(claim.handled_keys.len() + 2);
        for key in &claim.handled_keys {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(format!("handled#{key}")))
                .key("sk", s("-"))
                .condition_expression(NOT_HANDLED)
                .expression_attribute_values(":now", n(now.timestamp()))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .build()
                .map_err(build_error)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        let slot = Update::builder()
            .table_name(&self.table)
            .set_key(Some(slot_key(now)))
            .update_expression(TAKE_SLOT)
            .condition_expression(BELOW_CAP)
            .set_expression_attribute_values(Some(slot_values(cap, now)))
            .build()
            .map_err(build_error)?;
        items.push(TransactWriteItem::builder().update(slot).build());
        let (item, _, _) = claim_item(claim, now);
        let (condition, values) = match &claim.replaces {
            None => ("attribute_not_exists(pk)", None),
            Some(old) => (
                "attribute_not_exists(pk) OR (#state = :open AND case_id = :replaces)",
                Some(Item::from([
                    (":open".to_owned(), s(STATE_OPEN)),
                    (":replaces".to_owned(), s(old.clone())),
                ])),
            ),
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_values(values)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if claim.replaces.is_some() {
            put = put.expression_attribute_names("#state", "state");
        }
        items.push(
            TransactWriteItem::builder()
                .put(put.build().map_err(build_error)?)
                .build(),
        );
        let reasons = match self.transact("claim", &items).await? {
            Transacted::Done => return Ok(CountedClaim::Taken { stale: None }),
            Transacted::Cancelled(reasons) => reasons,
        };
        let keys = claim.handled_keys.len();
        let failed =
            |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if (0..keys).any(failed) {
            // The failed checks carry the records that failed them: the earlier decision.
            let mut earliest = None;
            for reason in reasons
                .iter()
                .take(keys)
                .filter(|r| r.code() == Some("ConditionalCheckFailed"))
            {
                if let Some(item) = reason.item() {
                    keep_earliest(&mut earliest, Some(decision_from(item)?));
                }
            }
            return Ok(match earliest {
                Some(d) => CountedClaim::Handled(Box::new(d)),
                None => CountedClaim::Changed(None),
            });
        }
        if failed(keys + 1) {
            let held = reasons.get(keys + 1).and_then(|r| r.item());
            return match held.and_then(|h| get_s(h, "state")) {
                // A case was opened for the alarm since (or before) the decision: the item
                // says which, so deciding again needs no read.
                Some(STATE_OPEN) => Ok(CountedClaim::Changed(
                    held.map(open_from).transpose()?.flatten().map(Box::new),
                )),
                // An expired claim: its owner may have opened a case, which only the
                // overwritten item can say; the two steps take it over and return it.
                Some(STATE_CLAIMED)
                    if held
                        .and_then(|h| get_n(h, "claim_expires"))
                        .is_some_and(|t| t < now.timestamp()) =>
                {
                    crate::ports::ledger::claim_counted_in_steps(self, claim, cap, now).await
                }
                _ => Ok(CountedClaim::Refused),
            };
        }
        if failed(keys) {
            return Ok(CountedClaim::Full);
        }
        // A transaction conflict (another write to one of these items in flight): nothing
        // was written; deciding again is right.
        let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
        Err(LedgerError::Conflict(format!(
            "claim cancelled [{}]",
            codes.join(",")
        )))
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
            Ok(out) => {
                // Overwriting an expired claim: its owner may have opened a case.
                let stale = out
                    .attributes()
                    .filter(|old| get_s(old, "state") == Some(STATE_CLAIMED))
                    .and_then(|old| {
                        Some(StaleClaim {
                            reference: get_s(old, "claim_reference")?.to_owned(),
                            claimed_at: DateTime::from_timestamp(get_n(old, "claimed_at")?, 0)?,
                        })
                    });
                Ok(ClaimOutcome::Taken { stale })
            }
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

    async fn commit(&self, commit: Commit) -> Result<i64, LedgerError> {
        let mut decision = commit.decision;
        let seq = seq_of(decision.at);
        decision.seq = seq;
        let json = decision_json(&decision)?;
        let now = Utc::now().timestamp();
        let expires = now + i64::try_from(self.handled_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let mut items = Vec::new();

        for key in &commit.handled_keys {
            let item = Item::from([
                ("pk".to_owned(), s(format!("handled#{key}"))),
                ("sk".to_owned(), s("-")),
                ("decision".to_owned(), s(json.clone())),
                (TTL_ATTRIBUTE.to_owned(), n(expires)),
            ]);
            let values = Item::from([(":now".to_owned(), n(now))]);
            items.push(self.put(item, Some((NOT_HANDLED, values)))?);
        }
        for item in Self::history(&decision, &json) {
            items.push(self.put(item, None)?);
        }
        for change in &commit.open_cases {
            match change {
                OpenCaseChange::Put(open) => {
                    let record = serde_json::to_string(open)
                        .map_err(|e| LedgerError::corrupt("a ledger record", e))?;
                    let item = Item::from([
                        ("pk".to_owned(), s(format!("alarm#{}", open.alarm_key))),
                        ("sk".to_owned(), s(OPEN_SK)),
                        ("state".to_owned(), s(STATE_OPEN)),
                        ("case_id".to_owned(), s(open.case_id.clone())),
                        ("record".to_owned(), s(record)),
                    ]);
                    // The record that replaces our claim must still be ours to replace.
                    let condition = commit
                        .claim
                        .as_ref()
                        .filter(|c| c.alarm_key == open.alarm_key)
                        .map(|c| {
                            (
                                "#state = :claimed AND claim_token = :token",
                                Item::from([
                                    (":claimed".to_owned(), s(STATE_CLAIMED)),
                                    (":token".to_owned(), s(c.token.clone())),
                                ]),
                            )
                        });
                    items.push(self.put(item, condition)?);
                }
                OpenCaseChange::Remove { alarm_key } => {
                    items.push(self.delete(format!("alarm#{alarm_key}"), OPEN_SK)?);
                }
            }
        }
        for notice in &commit.notices {
            items.push(self.put(super::outbox::notice_item(notice, Utc::now())?, None)?);
        }
        match &commit.hold {
            None => {}
            Some(HoldChange::Put(held)) => {
                let record = serde_json::to_string(held)
                    .map_err(|e| LedgerError::corrupt("a ledger record", e))?;
                let item = Item::from([
                    ("pk".to_owned(), s(HELD_PK)),
                    ("sk".to_owned(), s(held.alarm_key.clone())),
                    ("record".to_owned(), s(record)),
                ]);
                items.push(self.put(item, None)?);
            }
            Some(HoldChange::Remove { alarm_key }) => {
                items.push(self.delete(HELD_PK.to_owned(), alarm_key)?);
            }
        }

        match self.transact("commit", &items).await? {
            Transacted::Done => Ok(seq),
            Transacted::Cancelled(reasons) => {
                let codes: Vec<&str> = reasons.iter().map(|r| r.code().unwrap_or("None")).collect();
                Err(LedgerError::Conflict(format!(
                    "transaction cancelled [{}]",
                    codes.join(",")
                )))
            }
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

/// The claim's item under the alarm's key, and the condition of a plain claim: nothing held,
/// an expired claim (taken over), or the resolved case this one replaces.
fn claim_item(claim: &Claim, now: DateTime<Utc>) -> (Item, String, Item) {
    let mut item = Item::from([
        ("pk".to_owned(), s(format!("alarm#{}", claim.alarm_key))),
        ("sk".to_owned(), s(OPEN_SK)),
        ("state".to_owned(), s(STATE_CLAIMED)),
        ("claim_token".to_owned(), s(claim.token.clone())),
        ("claim_reference".to_owned(), s(claim.reference.clone())),
        ("claimed_at".to_owned(), n(claim.claimed_at.timestamp())),
        ("claim_expires".to_owned(), n(claim.expires_at.timestamp())),
        ("claim_owner".to_owned(), s(claim.owner.clone())),
    ]);
    let mut condition =
        "attribute_not_exists(pk) OR (#state = :claimed AND claim_expires < :now)".to_owned();
    let mut values = Item::from([
        (":claimed".to_owned(), s(STATE_CLAIMED)),
        (":now".to_owned(), n(now.timestamp())),
    ]);
    if let Some(old) = &claim.replaces {
        condition.push_str(" OR (#state = :open AND case_id = :replaces)");
        values.insert(":open".into(), s(STATE_OPEN));
        values.insert(":replaces".into(), s(old.clone()));
        item.insert("replaces".into(), s(old.clone()));
    }
    (item, condition, values)
}

/// A handled key not yet recorded: no item, or an expired one TTL has not deleted yet.
const NOT_HANDLED: &str = "attribute_not_exists(pk) OR expires_at < :now";

/// Taking one of the hour's case slots: the counter goes up, only while below the cap, and
/// the item expires a few hours after its hour.
const TAKE_SLOT: &str = "ADD n :one SET expires_at = :expires";
const BELOW_CAP: &str = "attribute_not_exists(n) OR n < :cap";

fn slot_values(cap: usize, now: DateTime<Utc>) -> Item {
    Item::from([
        (":one".to_owned(), n(1)),
        (":cap".to_owned(), n(i64::try_from(cap).unwrap_or(i64::MAX))),
        (":expires".to_owned(), n(now.timestamp() + 3 * 3600)),
    ])
}

/// The key of the counter of new cases in the clock hour of `now`.
fn slot_key(now: DateTime<Utc>) -> Item {
    item_key(format!("slots#{}", slot_hour(now)), "-")
}

/// An item's key.
fn item_key(pk: String, sk: &str) -> Item {
    Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The open case an alarm's item holds (it may hold a claim instead).
fn open_from(item: &Item) -> Result<Option<OpenCase>, LedgerError> {
    if get_s(item, "state") != Some(STATE_OPEN) {
        return Ok(None);
    }
    let json = get_s(item, "record")
        .ok_or_else(|| LedgerError::corrupt_said("open case without record"))?;
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| LedgerError::corrupt("a ledger record", e))
}

/// New cases the hour's slot counter item holds.
fn slots_from(item: &Item) -> usize {
    get_n(item, "n")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// A handled key's decision, unless its record has expired (TTL deletion is lazy).
fn live_decision(item: &Item, epoch: i64) -> Result<Option<Decision>, LedgerError> {
    match get_n(item, TTL_ATTRIBUTE).is_some_and(|t| t < epoch) {
        true => Ok(None),
        false => decision_from(item).map(Some),
    }
}

/// Keeps the earliest of the decisions seen.
fn keep_earliest(earliest: &mut Option<Decision>, d: Option<Decision>) {
    if let Some(d) = d
        && earliest.as_ref().is_none_or(|e| d.seq < e.seq)
    {
        *earliest = Some(d);
    }
}
