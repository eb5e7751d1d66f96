//! The tables themselves: `tables create` makes the settings and ledger tables (on-demand,
//! TTL on the ledger), and the key schema look-ups that the settings store and `check` use.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use aws_sdk_dynamodb::error::BuildError;

use super::TTL_ATTRIBUTE;
use crate::backend::aws::AwsError;

/// The hash key attribute name of a table.
pub async fn hash_key_of(client: &Client, table: &str) -> Result<String, AwsError> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| AwsError::call(format!("DescribeTable {table}"), e))?;
    out.table()
        .and_then(|t| {
            t.key_schema()
                .iter()
                .find(|k| k.key_type() == &KeyType::Hash)
                .map(|k| k.attribute_name().to_owned())
        })
        .ok_or_else(|| AwsError::Answer(format!("table {table} has no hash key")))
}

/// What `tables create` did with one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOutcome {
    Created,
    AlreadyExists,
}

fn attr(name: &str) -> Result<AttributeDefinition, BuildError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, BuildError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
}

async fn create(
    client: &Client,
    table: &str,
    keys: &[(&str, KeyType)],
) -> Result<TableOutcome, AwsError> {
    let mut req = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind) in keys {
        req = req
            .attribute_definitions(attr(name).map_err(built)?)
            .key_schema(key(name, kind.clone()).map_err(built)?);
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceInUseException") => {
            return Ok(TableOutcome::AlreadyExists);
        }
        Err(e) => return Err(AwsError::call(format!("CreateTable {table}"), e)),
    }
    // Wait until the table can be written (on-demand tables take seconds).
    for _ in 0..120 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| AwsError::call(format!("DescribeTable {table}"), e))?;
        if out
            .table()
            .and_then(|t| t.table_status())
            .is_some_and(|s| s.as_str() == "ACTIVE")
        {
            return Ok(TableOutcome::Created);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(AwsError::Answer(format!(
        "table {table} did not become ACTIVE"
    )))
}

/// Creates the settings table (hash key `AlarmName`, as the original service's) and the
/// ledger table (`pk`/`sk`, TTL on `expires_at`), on-demand. Safe to run twice.
pub async fn create_tables(
    client: &Client,
    config_table: &str,
    ledger_table: &str,
) -> Result<Vec<(String, TableOutcome)>, AwsError> {
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
        .map_err(built)?;
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
        Err(e) => {
            return Err(AwsError::call(
                format!("UpdateTimeToLive {ledger_table}"),
                e,
            ));
        }
    }
    Ok(vec![
        (config_table.to_owned(), settings),
        (ledger_table.to_owned(), ledger),
    ])
}

/// The key schema of the ledger table, for `check`.
pub async fn ledger_keys(client: &Client, table: &str) -> Result<Vec<(String, String)>, AwsError> {
    let out = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| AwsError::call(format!("DescribeTable {table}"), e))?;
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

/// A request the SDK's builder refused: a bug here, said as the answer.
fn built(e: BuildError) -> AwsError {
    AwsError::Answer(format!("building the request: {e}"))
}
