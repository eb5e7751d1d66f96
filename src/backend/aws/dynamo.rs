//! DynamoDB: the per-alarm settings table of the original service (read as it is), and the
//! ledger table this service adds.
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

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType,
    KeysAndAttributes, Put, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem,
};
use chrono::{DateTime, Utc};

use crate::alarm_config::{AlarmConfigRecord, AlarmConfigStore, CcField, StoreError};
use crate::ledger::{
    CaseLedger, Claim, ClaimOutcome, Commit, Decision, DecisionFilter, HeldAlarm, HoldChange,
    LedgerError, OpenCase, OpenCaseChange, StaleClaim, slot_hour,
};
use crate::maintenance::MaintenanceWindow;

/// The TTL attribute of the ledger table.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// How long maintenance windows read from the settings table are reused.
pub const WINDOWS_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

type Item = HashMap<String, AttributeValue>;

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

/// One line naming an SDK error: its code and message, or its kind when it never reached
/// the service (timeout, connection refused).
pub(crate) fn describe<
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(_) => format!(
            "{}: {}",
            e.code().unwrap_or("unknown error"),
            e.message().unwrap_or("")
        ),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

// ---- per-alarm settings ------------------------------------------------------------------

/// The original service's table: one item per alarm, keyed by the alarm name under
/// whatever attribute name the table's hash key has (found with DescribeTable).
pub struct DynamoConfigStore {
    client: Client,
    table: String,
    hash_key: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<AlarmConfigRecord>)>>,
    windows_cache: Mutex<Option<(Instant, Vec<MaintenanceWindow>)>>,
}

/// The settings table item that holds the maintenance windows (one item: one read per cache
/// lifetime, whatever the number of windows). Not an alarm: `alarms list` leaves it out.
pub const WINDOWS_ITEM: &str = "__maintenance__";

/// More distinct alarms than this in one cache lifetime empties the cache: memory stays
/// bounded whatever names arrive.
const CONFIG_CACHE_MAX: usize = 4096;

impl DynamoConfigStore {
    /// Looks the table up (so a missing table or a wrong region is a start-up error, not a
    /// failed alarm at 3 a.m.) and learns its hash key's name.
    pub async fn open(
        client: Client,
        table: &str,
        cache_ttl: Duration,
    ) -> Result<Self, StoreError> {
        let hash_key = hash_key_of(&client, table)
            .await
            .map_err(StoreError::Backend)?;
        Ok(Self {
            client,
            table: table.to_owned(),
            hash_key,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            windows_cache: Mutex::new(None),
        })
    }

    pub fn hash_key(&self) -> &str {
        &self.hash_key
    }

    fn cached(&self, name: &str) -> Option<Option<AlarmConfigRecord>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(name)
            .filter(|(at, _)| at.elapsed() < self.cache_ttl)
            .map(|(_, r)| r.clone())
    }

    fn remember(&self, name: &str, record: Option<AlarmConfigRecord>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CONFIG_CACHE_MAX {
            cache.clear();
        }
        cache.insert(name.to_owned(), (Instant::now(), record));
    }

    /// The item stored under this hash key value, if any.
    async fn item(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(&self.hash_key, s(key))
            .send()
            .await
            .map_err(|e| store_error("GetItem", e))?;
        Ok(out.item().cloned())
    }

    fn cached_windows(&self) -> Option<Vec<MaintenanceWindow>> {
        let cache = self.windows_cache.lock().unwrap_or_else(|p| p.into_inner());
        // A window someone starts ("I'm fixing it") must reach every instance within
        // seconds, not a settings-cache TTL later: one read per few seconds is cheap.
        let ttl = self.cache_ttl.min(WINDOWS_CACHE_TTL);
        cache
            .as_ref()
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, w)| w.clone())
    }

    fn forget(&self, name: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}

/// The hash key attribute name of a table.
pub async fn hash_key_of(client: &Client, table: &str) -> Result<String, String> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("DescribeTable {table}: {}", describe(&e)))?;
    out.table()
        .and_then(|t| {
            t.key_schema()
                .iter()
                .find(|k| k.key_type() == &KeyType::Hash)
                .map(|k| k.attribute_name().to_owned())
        })
        .ok_or_else(|| format!("table {table} has no hash key"))
}

/// A stored attribute as text, whatever scalar type a hand-made item used.
fn text_of(v: &AttributeValue) -> Option<String> {
    match v {
        AttributeValue::S(s) => Some(s.clone()),
        AttributeValue::N(n) => Some(n.clone()),
        AttributeValue::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn record_from_item(item: &Item) -> AlarmConfigRecord {
    let text = |k: &str| item.get(k).and_then(text_of);
    let ccemail = match item.get("ccemail") {
        Some(AttributeValue::S(one)) => Some(CcField::One(one.clone())),
        Some(AttributeValue::Ss(many)) => Some(CcField::Many(many.clone())),
        Some(AttributeValue::L(list)) => {
            Some(CcField::Many(list.iter().filter_map(text_of).collect()))
        }
        _ => None,
    };
    let enabled = match item.get("enabled") {
        Some(AttributeValue::Bool(b)) => Some(*b),
        Some(other) => text_of(other).map(|t| !matches!(t.trim(), "false" | "0" | "no" | "off")),
        None => None,
    };
    AlarmConfigRecord {
        priority: text("priority"),
        action: text("action"),
        ccemail,
        subject: text("subject"),
        service_code: text("service_code"),
        category_code: text("category_code"),
        enabled,
        inhibited_by: text("inhibited_by"),
        group: text("group"),
    }
}

fn item_from_record(hash_key: &str, name: &str, r: &AlarmConfigRecord) -> Item {
    let mut item = Item::new();
    item.insert(hash_key.to_owned(), s(name));
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            item.insert(k.to_owned(), s(v.clone()));
        }
    };
    put("priority", &r.priority);
    put("action", &r.action);
    put("subject", &r.subject);
    put("service_code", &r.service_code);
    put("category_code", &r.category_code);
    put("inhibited_by", &r.inhibited_by);
    put("group", &r.group);
    match &r.ccemail {
        Some(CcField::One(one)) => {
            item.insert("ccemail".into(), s(one.clone()));
        }
        Some(CcField::Many(many)) => {
            item.insert(
                "ccemail".into(),
                AttributeValue::L(many.iter().cloned().map(s).collect()),
            );
        }
        None => {}
    }
    if let Some(e) = r.enabled {
        item.insert("enabled".into(), AttributeValue::Bool(e));
    }
    item
}

fn store_error<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    op: &str,
    e: SdkError<E, R>,
) -> StoreError {
    StoreError::Backend(format!("{op}: {}", describe(&e)))
}

#[async_trait]
impl AlarmConfigStore for DynamoConfigStore {
    async fn get(&self, alarm_name: &str) -> Result<Option<AlarmConfigRecord>, StoreError> {
        if let Some(hit) = self.cached(alarm_name) {
            return Ok(hit);
        }
        let record = self.item(alarm_name).await?.as_ref().map(record_from_item);
        self.remember(alarm_name, record.clone());
        Ok(record)
    }

    async fn put(&self, alarm_name: &str, record: &AlarmConfigRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_from_record(&self.hash_key, alarm_name, record)))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        self.forget(alarm_name);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<(String, AlarmConfigRecord)>, StoreError> {
        let mut all = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Scan", e))?;
            for item in out.items() {
                match get_s(item, &self.hash_key) {
                    Some(WINDOWS_ITEM) | None => {}
                    Some(name) => all.push((name.to_owned(), record_from_item(item))),
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    async fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        if let Some(w) = self.cached_windows() {
            return Ok(w);
        }
        let item = self.item(WINDOWS_ITEM).await?;
        let windows: Vec<MaintenanceWindow> = match item.as_ref().and_then(|i| get_s(i, "windows"))
        {
            Some(json) => serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
                path: format!("{}/{WINDOWS_ITEM}", self.table),
                source,
            })?,
            None => Vec::new(),
        };
        *self.windows_cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), windows.clone()));
        Ok(windows)
    }

    async fn save_windows(&self, windows: &[MaintenanceWindow]) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(windows).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(&self.hash_key, s(WINDOWS_ITEM))
            .item("windows", s(json))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        *self.windows_cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    async fn delete(&self, alarm_name: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(&self.hash_key, s(alarm_name))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", e))?;
        self.forget(alarm_name);
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }
}

// ---- ledger ---------------------------------------------------------------------------------

pub struct DynamoLedger {
    client: Client,
    table: String,
    /// How long a handled delivery or event is remembered (SQS keeps a message 14 days at
    /// most, so a redelivery cannot come later than that).
    handled_ttl: Duration,
}

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
    LedgerError::Storage(format!("{op}: {}", describe(&e)))
}

fn build_error(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Storage(format!("building a DynamoDB request: {e}"))
}

fn seq_of(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn decision_json(d: &Decision) -> Result<String, LedgerError> {
    serde_json::to_string(d).map_err(|e| LedgerError::Corrupt(e.to_string()))
}

fn decision_from(item: &Item) -> Result<Decision, LedgerError> {
    let json = get_s(item, "decision")
        .ok_or_else(|| LedgerError::Corrupt("decision item without a decision".into()))?;
    serde_json::from_str(json).map_err(|e| LedgerError::Corrupt(e.to_string()))
}

impl DynamoLedger {
    pub fn new(client: Client, table: &str, handled_ttl: Duration) -> Self {
        Self {
            client,
            table: table.to_owned(),
            handled_ttl,
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
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .scan_index_forward(false)
                .expression_attribute_values(":pk", s(pk.clone()))
                .set_exclusive_start_key(start.take());
            q = match prefix {
                Some(p) => q
                    .key_condition_expression("pk = :pk AND begins_with(sk, :p)")
                    .expression_attribute_values(":p", s(p)),
                None => q.key_condition_expression("pk = :pk"),
            };
            let page = q.send().await.map_err(|e| ledger_error("Query", e))?;
            for item in page.items() {
                out.push(decision_from(item)?);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }
}

#[async_trait]
impl CaseLedger for DynamoLedger {
    async fn find_handled(&self, keys: &[String]) -> Result<Option<Decision>, LedgerError> {
        if keys.is_empty() {
            return Ok(None);
        }
        let mut ka = KeysAndAttributes::builder().consistent_read(true);
        for key in keys {
            ka = ka.keys(HashMap::from([
                ("pk".to_owned(), s(format!("handled#{key}"))),
                ("sk".to_owned(), s("-")),
            ]));
        }
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, ka.build().map_err(build_error)?)
            .send()
            .await
            .map_err(|e| ledger_error("BatchGetItem", e))?;
        let now = Utc::now().timestamp();
        let mut earliest: Option<Decision> = None;
        for item in out
            .responses()
            .and_then(|r| r.get(&self.table))
            .into_iter()
            .flatten()
        {
            // TTL deletion is lazy: an expired record no longer counts.
            if get_n(item, TTL_ATTRIBUTE).is_some_and(|t| t < now) {
                continue;
            }
            let d = decision_from(item)?;
            if earliest.as_ref().is_none_or(|e| d.seq < e.seq) {
                earliest = Some(d);
            }
        }
        Ok(earliest)
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
            Some(item) if get_s(item, "state") == Some(STATE_OPEN) => {
                let json = get_s(item, "record")
                    .ok_or_else(|| LedgerError::Corrupt("open case without record".into()))?;
                serde_json::from_str(json)
                    .map(Some)
                    .map_err(|e| LedgerError::Corrupt(e.to_string()))
            }
            _ => Ok(None),
        }
    }

    async fn open_cases(&self) -> Result<Vec<OpenCase>, LedgerError> {
        let mut all = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("sk = :open AND #state = :state")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":open", s(OPEN_SK))
                .expression_attribute_values(":state", s(STATE_OPEN))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| ledger_error("Scan", e))?;
            for item in out.items() {
                if let Some(json) = get_s(item, "record") {
                    all.push(
                        serde_json::from_str(json)
                            .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                    );
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(all)
    }

    async fn claim(&self, claim: &Claim, now: DateTime<Utc>) -> Result<ClaimOutcome, LedgerError> {
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
            // An expired record that TTL has not deleted yet no longer counts.
            items.push(self.put(
                item,
                Some(("attribute_not_exists(pk) OR expires_at < :now", values)),
            )?);
        }
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
        for (pk, sk) in copies.into_iter().flatten() {
            let item = Item::from([
                ("pk".to_owned(), s(pk)),
                ("sk".to_owned(), s(sk)),
                ("decision".to_owned(), s(json.clone())),
            ]);
            items.push(self.put(item, None)?);
        }
        for change in &commit.open_cases {
            match change {
                OpenCaseChange::Put(open) => {
                    let record = serde_json::to_string(open)
                        .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
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
        match &commit.hold {
            None => {}
            Some(HoldChange::Put(held)) => {
                let record =
                    serde_json::to_string(held).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
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

        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(seq),
            Err(e) if e.code() == Some("TransactionCanceledException") => {
                let reasons = match e.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t)) => t
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_owned())
                        .collect::<Vec<_>>()
                        .join(","),
                    _ => String::new(),
                };
                Err(LedgerError::Conflict(format!(
                    "transaction cancelled [{reasons}]"
                )))
            }
            Err(e) => Err(ledger_error("TransactWriteItems", e)),
        }
    }

    async fn case_slots_taken(&self, now: DateTime<Utc>) -> Result<usize, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("slots#{}", slot_hour(now))))
            .key("sk", s("-"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ledger_error("GetItem (slots)", e))?;
        Ok(out
            .item()
            .and_then(|i| get_n(i, "n"))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0))
    }

    /// One counter item per clock hour, incremented only while below the cap: a
    /// conditional update, so a fleet cannot overshoot and no request scans decisions.
    async fn take_case_slot(&self, cap: usize, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        let expires = now.timestamp() + 3 * 3600;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("slots#{}", slot_hour(now))))
            .key("sk", s("-"))
            .update_expression("ADD n :one SET expires_at = :expires")
            .condition_expression("attribute_not_exists(n) OR n < :cap")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cap", n(i64::try_from(cap).unwrap_or(i64::MAX)))
            .expression_attribute_values(":expires", n(expires))
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
            .key("pk", s(format!("slots#{}", slot_hour(now))))
            .key("sk", s("-"))
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
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(HELD_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| ledger_error("Query", e))?;
            for item in page.items() {
                let json = get_s(item, "record")
                    .ok_or_else(|| LedgerError::Corrupt("held item without record".into()))?;
                all.push(
                    serde_json::from_str(json).map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                );
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(all),
            }
        }
    }

    async fn decisions(&self, filter: &DecisionFilter) -> Result<Vec<Decision>, LedgerError> {
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

// ---- `tables create` ------------------------------------------------------------------------

/// What `tables create` did with one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOutcome {
    Created,
    AlreadyExists,
}

fn attr(name: &str) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| e.to_string())
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| e.to_string())
}

async fn create(
    client: &Client,
    table: &str,
    keys: &[(&str, KeyType)],
) -> Result<TableOutcome, String> {
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in keys {
        req = req
            .attribute_definitions(attr(name)?)
            .key_schema(key(name, kind.clone())?);
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {
            return Ok(TableOutcome::AlreadyExists);
        }
        Err(e) => return Err(format!("CreateTable {table}: {}", describe(&e))),
    }
    // Wait until the table can be written (on-demand tables take seconds).
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("DescribeTable {table}: {}", describe(&e)))?;
        if out
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE")
        {
            return Ok(TableOutcome::Created);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("table {table} did not become ACTIVE"))
}

/// Creates the settings table (hash key `AlarmName`, as the original service's) and the
/// ledger table (`pk`/`sk`, TTL on `expires_at`), on-demand. Safe to run twice.
pub async fn create_tables(
    client: &Client,
    config_table: &str,
    ledger_table: &str,
) -> Result<Vec<(String, TableOutcome)>, String> {
    let settings = create(client, config_table, &[("AlarmName", KeyType::Hash)]).await?;
    let ledger = create(
        client,
        ledger_table,
        &[("pk", KeyType::Hash), ("sk", KeyType::Range)],
    )
    .await?;
    let ttl = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(TTL_ATTRIBUTE)
        .build()
        .map_err(|e| e.to_string())?;
    match client
        .update_time_to_live()
        .table_name(ledger_table)
        .time_to_live_specification(ttl)
        .send()
        .await
    {
        Ok(_) => {}
        // Enabling it again is refused: it is already what we want.
        Err(e)
            if e.code() == Some("ValidationException")
                && e.message().is_some_and(|m| m.contains("already enabled")) => {}
        Err(e) => return Err(format!("UpdateTimeToLive {ledger_table}: {}", describe(&e))),
    }
    Ok(vec![
        (config_table.to_owned(), settings),
        (ledger_table.to_owned(), ledger),
    ])
}

/// The key schema of the ledger table, for `check`.
pub async fn ledger_keys(client: &Client, table: &str) -> Result<Vec<(String, String)>, String> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("DescribeTable {table}: {}", describe(&e)))?;
    Ok(out
        .table()
        .map(|t| {
            t.key_schema()
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_owned(),
                        k.key_type().as_str().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}
