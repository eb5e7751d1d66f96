//! DynamoDB: the per-alarm settings table of the original service (read as it is, in
//! `settings`), the ledger table this service adds (`ledger`), and `tables create` and the
//! key checks of `check` (`tables`).
//!
//! This file holds what they share: the attribute helpers, the ledger table's TTL
//! attribute, and the one line that names an SDK error (which every AWS client in the crate
//! uses for its messages).

mod ledger;
mod settings;
mod tables;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
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
