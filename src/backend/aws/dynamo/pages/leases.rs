//! Taking work under a lease: due pages from the live pages' partition, queued messages
//! from the queue's. Each lease is a conditional UpdateItem (nobody took it since), so one
//! instance of a fleet takes each.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::items::{LIVE_PK, MessageRow, QUEUE_PK, micros, summary_from, time};
use crate::backend::aws::dynamo::ledger::requests::ledger_error;
use crate::backend::aws::dynamo::{DynamoLedger, Item, get_s, s};
use crate::domain::page::PageState;
use crate::ports::ledger::LedgerError;
use crate::ports::pages::{DuePage, OutMessage};

/// Due at `now` and not leased: what both leases check, on the copy or the queued message.
const DUE: &str = "next_at <= :now AND lease_until <= :now";

impl DynamoLedger {
    /// Leases one item of `pk` until `until` if it is still due at `now` (and, for a page,
    /// still open): `false` when another instance took it first, or it moved on.
    async fn lease(
        &self,
        pk: &str,
        item: &Item,
        open: bool,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let Some(sk) = get_s(item, "sk") else {
            return Ok(false);
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET lease_until = :until")
            .expression_attribute_values(":now", micros(now))
            .expression_attribute_values(":until", micros(until));
        update = match open {
            true => update
                .condition_expression(format!("#state = :open AND {DUE}"))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":open", s(PageState::Open.as_str())),
            // A missing item fails the condition too: it is not re-created by the update.
            false => update.condition_expression(DUE),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(e) => Err(ledger_error("UpdateItem (lease)", e)),
        }
    }

    /// The items of `pk` due at `now`, as a Query with a filter reads them.
    async fn due_items(
        &self,
        pk: &str,
        open: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<Item>, LedgerError> {
        let mut q = self
            .query_partition(pk.to_owned())
            .expression_attribute_values(":now", micros(now));
        q = match open {
            true => q
                .filter_expression(format!("#state = :open AND {DUE}"))
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":open", s(PageState::Open.as_str())),
            false => q.filter_expression(DUE),
        };
        self.query_items(q, usize::MAX).await
    }

    /// Open pages due at `now`, earliest due first, up to `limit`, each leased.
    pub(super) async fn take_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DuePage>, LedgerError> {
        let mut due = Vec::new();
        for item in self.due_items(LIVE_PK, true, now).await? {
            let p = summary_from(&item)?;
            let at = time(&item, "next_at")?;
            due.push((at, p.id, item));
        }
        due.sort_by_key(|(at, id, _)| (*at, *id));
        let mut taken = Vec::new();
        for (at, _, item) in due {
            if taken.len() >= limit {
                break;
            }
            if !self.lease(LIVE_PK, &item, true, now, until).await? {
                continue;
            }
            let p = summary_from(&item)?;
            taken.push(DuePage {
                id: p.id,
                alarm: p.alarm,
                policy: p.policy,
                summary: p.summary,
                owner: p.owner,
                position: p.position,
                due: at,
            });
        }
        Ok(taken)
    }

    /// Queued messages due at `now`, in queue order (by page, then as queued), up to
    /// `limit`, each leased.
    pub(super) async fn take_queued(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutMessage>, LedgerError> {
        let mut taken = Vec::new();
        for item in self.due_items(QUEUE_PK, false, now).await? {
            if taken.len() >= limit {
                break;
            }
            let message = MessageRow::from_item(&item)?.out()?;
            if self.lease(QUEUE_PK, &item, false, now, until).await? {
                taken.push(message);
            }
        }
        Ok(taken)
    }
}
