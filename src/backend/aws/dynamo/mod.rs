//! DynamoDB: the per-alarm settings table of the original service (read as it is, in
//! `settings`), the ledger table this service adds (`ledger`, with its notice `outbox` and
//! its `pages`), and `tables create` and the key checks of `check` (`tables`).
//!
//! This file holds what they share: the attribute helpers, the ledger table's TTL
//! attribute.

mod console;
mod ledger;
mod outbox;
mod pages;
mod settings;
mod tables;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

pub use ledger::DynamoLedger;
pub use settings::{DynamoConfigStore, WINDOWS_CACHE_TTL, WINDOWS_ITEM};
pub use tables::{TableOutcome, create_tables, hash_key_of, ledger_keys};

/// The TTL attribute of the ledger table.
pub const TTL_ATTRIBUTE: &str = "expires_at";

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
