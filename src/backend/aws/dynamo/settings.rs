//! The per-alarm settings in the original service's DynamoDB table, read as it is: one item
//! per alarm, keyed by the alarm name, plus one item that holds the maintenance windows.
//! Reads are cached for a short while: a table of at most [`SNAPSHOT_MAX`] alarms is read
//! whole (one Scan per cache lifetime), so an alarm never seen before costs no read either;
//! a bigger table (or one the service may not Scan) is read item by item, each cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use super::{Item, get_s, hash_key_of, s};
use crate::backend::aws::describe;
use crate::domain::maintenance::MaintenanceWindow;
use crate::domain::settings::Document;
use crate::domain::settings::{AlarmConfigRecord, AlarmConfigStore, CcField, StoreError};

/// How long maintenance windows read from the settings table are reused.
pub const WINDOWS_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// The original service's table: one item per alarm, keyed by the alarm name under
/// whatever attribute name the table's hash key has (found with DescribeTable).
pub struct DynamoConfigStore {
    client: Client,
    table: String,
    hash_key: String,
    cache_ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<AlarmConfigRecord>)>>,
    windows_cache: Mutex<Option<(Instant, Vec<MaintenanceWindow>)>>,
    /// The whole table, when it is small, and when it was read.
    snapshot: Mutex<Option<(Instant, Snapshot)>>,
    /// One Scan at a time, however many requests find the snapshot expired.
    scanning: tokio::sync::Mutex<()>,
    /// The table is too big for a snapshot, or Scan is not allowed: item by item.
    per_item: AtomicBool,
}

/// Every alarm's settings, by name.
type Snapshot = Arc<HashMap<String, AlarmConfigRecord>>;

/// Tables of up to this many alarms are read whole.
pub(super) const SNAPSHOT_MAX: usize = 2048;

/// The settings table item that holds the maintenance windows (one item: one read per cache
/// lifetime, whatever the number of windows). Not an alarm: `alarms list` leaves it out.
pub const WINDOWS_ITEM: &str = "__maintenance__";
/// The item holding the on-duty file (`oncall import`), beside the settings.
pub(crate) const ONCALL_ITEM: &str = "__oncall__";
/// The console's local accounts (`Document::Users`).
const USERS_ITEM: &str = "__users__";

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
            .map_err(|e| StoreError::backend_said(e.to_string()))?;
        Ok(Self {
            client,
            table: table.to_owned(),
            hash_key,
            cache_ttl,
            cache: Mutex::new(HashMap::new()),
            windows_cache: Mutex::new(None),
            snapshot: Mutex::new(None),
            scanning: tokio::sync::Mutex::new(()),
            per_item: AtomicBool::new(false),
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
        // What this process wrote is read back at once.
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn fresh_snapshot(&self) -> Option<Snapshot> {
        let snapshot = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        snapshot
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.cache_ttl)
            .map(|(_, all)| all.clone())
    }

    /// The settings from the whole-table snapshot, read again when it has expired; None
    /// when the table is read item by item.
    async fn in_snapshot(&self, name: &str) -> Option<Option<AlarmConfigRecord>> {
        if self.per_item.load(Ordering::Relaxed) {
            return None;
        }
        if let Some(all) = self.fresh_snapshot() {
            return Some(all.get(name).cloned());
        }
        let _one = self.scanning.lock().await;
        if let Some(all) = self.fresh_snapshot() {
            return Some(all.get(name).cloned());
        }
        match self.scan_small().await {
            Ok(Some(all)) => {
                let all = Arc::new(all);
                *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((Instant::now(), all.clone()));
                Some(all.get(name).cloned())
            }
            Ok(None) => {
                tracing::info!(
                    table = %self.table,
                    "more than {SNAPSHOT_MAX} alarm settings: read item by item"
                );
                self.per_item.store(true, Ordering::Relaxed);
                None
            }
            Err(e) => {
                // Scan denied, or the table unreachable: the item read says which.
                tracing::warn!(error = %crate::errors::Chain(&e), "the settings table could not be read whole; reading item by item");
                self.per_item.store(true, Ordering::Relaxed);
                None
            }
        }
    }

    /// Every alarm's settings, or None when there are more than [`SNAPSHOT_MAX`].
    async fn scan_small(&self) -> Result<Option<HashMap<String, AlarmConfigRecord>>, StoreError> {
        Ok(self
            .scan(Some(SNAPSHOT_MAX))
            .await?
            .map(|all| all.into_iter().collect()))
    }

    /// Every alarm's settings (the maintenance item left out), or None when there are more
    /// than `most`.
    async fn scan(
        &self,
        most: Option<usize>,
    ) -> Result<Option<Vec<(String, AlarmConfigRecord)>>, StoreError> {
        let mut all = Vec::new();
        let mut items = self
            .client
            .scan()
            .table_name(&self.table)
            .into_paginator()
            .items()
            .send();
        while let Some(item) = items.try_next().await.map_err(|e| store_error("Scan", e))? {
            match get_s(&item, &self.hash_key) {
                Some(WINDOWS_ITEM | ONCALL_ITEM | USERS_ITEM) | None => {}
                Some(_) if most.is_some_and(|m| all.len() >= m) => return Ok(None),
                Some(name) => all.push((name.to_owned(), record_from_item(&item))),
            }
        }
        Ok(Some(all))
    }
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
        route: text("route"),
        policy: text("policy"),
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
    put("route", &r.route);
    put("policy", &r.policy);
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
    StoreError::backend_said(format!("{op}: {}", describe(&e)))
}

#[async_trait]
impl AlarmConfigStore for DynamoConfigStore {
    async fn get(&self, alarm_name: &str) -> Result<Option<AlarmConfigRecord>, StoreError> {
        if let Some(hit) = self.cached(alarm_name) {
            return Ok(hit);
        }
        if let Some(hit) = self.in_snapshot(alarm_name).await {
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
        let mut all = self.scan(None).await?.unwrap_or_default();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    async fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        if let Some(w) = self.cached_windows() {
            return Ok(w);
        }
        let item = self.item(WINDOWS_ITEM).await?;
        let windows: Vec<serde_json::Value> = match item.as_ref().and_then(|i| get_s(i, "windows"))
        {
            Some(json) => serde_json::from_str(json).map_err(|source| StoreError::Corrupt {
                path: format!("{}/{WINDOWS_ITEM}", self.table),
                source,
            })?,
            None => Vec::new(),
        };
        let windows = crate::domain::maintenance::usable(windows);
        *self.windows_cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), windows.clone()));
        Ok(windows)
    }

    async fn document(&self, doc: Document) -> Result<Option<String>, StoreError> {
        let item = self.item(doc.item()).await?;
        Ok(item
            .as_ref()
            .and_then(|i| get_s(i, "file"))
            .map(str::to_owned))
    }

    async fn save_document(&self, doc: Document, text: &str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(&self.hash_key, s(doc.item()))
            .item("file", s(text))
            .send()
            .await
            .map_err(|e| store_error("PutItem", e))?;
        Ok(())
    }

    async fn save_windows(&self, windows: &[MaintenanceWindow]) -> Result<(), StoreError> {
        let json = serde_json::to_string(windows)
            .map_err(|e| StoreError::backend("the maintenance windows", e))?;
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
