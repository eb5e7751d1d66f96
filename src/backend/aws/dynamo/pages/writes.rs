//! What every page transaction is made of: the page item, written only if its revision is
//! still the one read (so each write is decided on what is there, and a write that lost a
//! race is decided again on a fresh read), its live copy and key, timeline lines, queued
//! messages; and the transaction itself, bounded and retried.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::items::{KEY_SK, LIVE_PK, MessageRow, PageRow, key_pk, line_item, padded};
use crate::backend::aws::dynamo::DynamoLedger;
use crate::backend::aws::dynamo::ledger::requests::{Transacted, build_error, cancellation_codes};
use crate::backend::aws::dynamo::{Item, n, s};
use crate::domain::page::PageId;
use crate::ports::ledger::LedgerError;
use crate::ports::pages::NewMessage;

/// Tries of one page write before giving up: each lost try means another write of the page
/// committed meanwhile, so a few are enough unless the page is very busy.
pub(super) const ATTEMPTS: u32 = 8;
const BACKOFF: crate::retry::Backoff = crate::retry::Backoff::new(
    std::time::Duration::from_millis(10),
    2,
    std::time::Duration::from_millis(500),
);
/// DynamoDB's most items in one TransactWriteItems.
const MAX_ITEMS: usize = 100;
/// Written only where nothing is: a new page, event, callout or message.
pub(super) const NEW: &str = "attribute_not_exists(pk)";
/// What cancels a transaction because something it was decided on changed (a condition),
/// or another transaction was writing the same items: both worth deciding again.
const DECIDE_AGAIN: [&str; 3] = ["None", "ConditionalCheckFailed", "TransactionConflict"];

/// Waits before the next try of a write that lost a race.
pub(super) async fn pause(attempt: u32) {
    tokio::time::sleep(BACKOFF.after(attempt + 1)).await;
}

pub(super) fn busy(what: &str) -> LedgerError {
    LedgerError::Conflict(format!(
        "{what}: the page kept changing; gave up after {ATTEMPTS} tries"
    ))
}

impl DynamoLedger {
    /// One page transaction: `true` done, `false` cancelled by a change since the read it
    /// was decided on (decide again). The SQLite ledger writes a step or an action in one
    /// transaction, whatever its size; DynamoDB takes 100 items at most. A step bigger than
    /// that (about 90 new messages and callouts: a stage reaching dozens of people at once)
    /// is refused with an error rather than split: split, a crash between the parts would
    /// leave the page moved on with part of its messages never queued, or messages sent for
    /// a step that never committed.
    pub(super) async fn page_tx(
        &self,
        what: &str,
        items: &[TransactWriteItem],
    ) -> Result<bool, LedgerError> {
        if items.len() > MAX_ITEMS {
            return Err(LedgerError::storage_said(format!(
                "{what}: {} items are more than one DynamoDB transaction takes ({MAX_ITEMS})",
                items.len()
            )));
        }
        match self.transact(what, items).await? {
            Transacted::Done => Ok(true),
            Transacted::Cancelled(reasons)
                if reasons
                    .iter()
                    .all(|r| DECIDE_AGAIN.contains(&r.code().unwrap_or("None"))) =>
            {
                Ok(false)
            }
            Transacted::Cancelled(reasons) => Err(LedgerError::Conflict(format!(
                "{what}: transaction cancelled [{}]",
                cancellation_codes(&reasons)
            ))),
        }
    }

    /// The page item with its revision bumped, written only if it still has the revision
    /// read (`None`: a new page, written only if its number is unused).
    pub(super) fn page_put(
        &self,
        row: &mut PageRow,
        read: Option<i64>,
    ) -> Result<TransactWriteItem, LedgerError> {
        row.rev = read.map_or(1, |r| r + 1);
        match read {
            Some(rev) => self.put(
                row.item(),
                Some(("page_rev = :rev", Item::from([(":rev".to_owned(), n(rev))]))),
            ),
            None => self.put(row.item(), Some((NEW, Item::new()))),
        }
    }

    /// The live copy and the key's live page as the page now stands: the copy rewritten
    /// (its step leased until `lease_until`) while it is live; both removed once it is not,
    /// the key only if it still names this page.
    pub(super) fn live_writes(
        &self,
        row: &PageRow,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let p = &row.summary;
        if p.state.is_live() {
            return Ok(vec![self.put(row.live_item(lease_until), None)?]);
        }
        let key = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(key_pk(&p.key)))
            .key("sk", s(KEY_SK))
            .condition_expression("attribute_not_exists(pk) OR page = :page")
            .expression_attribute_values(":page", n_page(p.id))
            .build()
            .map_err(build_error)?;
        Ok(vec![
            self.delete(LIVE_PK.to_owned(), &padded(p.id))?,
            TransactWriteItem::builder().delete(key).build(),
        ])
    }

    /// The lines on the page's timeline at `at`, in one item; none for no lines.
    pub(super) fn line_put(
        &self,
        row: &mut PageRow,
        at: DateTime<Utc>,
        lines: &[String],
    ) -> Result<Option<TransactWriteItem>, LedgerError> {
        if lines.is_empty() {
            return Ok(None);
        }
        row.line_seq += 1;
        let item = line_item(row.summary.id, row.line_seq, at, lines);
        self.put(item, Some((NEW, Item::new()))).map(Some)
    }

    /// Queues the messages whose keys the page has not queued before (nor earlier in the
    /// list): each under the queue's partition, its key kept on the page item.
    pub(super) fn queue_new(
        &self,
        row: &mut PageRow,
        messages: &[NewMessage],
        at: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let mut items = Vec::new();
        for m in messages {
            if !row.msg_keys.insert(m.key.clone()) {
                continue;
            }
            row.msg_seq += 1;
            let queued = MessageRow::queued(row.summary.id, row.msg_seq, m, at);
            items.push(self.put(queued.queue_item(), Some((NEW, Item::new())))?);
        }
        Ok(items)
    }

    /// The item saying that an event raised `page`: only if the event is new.
    pub(super) fn event_put(
        &self,
        event: &str,
        page: PageId,
    ) -> Result<TransactWriteItem, LedgerError> {
        let item = Item::from([
            ("pk".to_owned(), s(super::items::event_pk(event))),
            ("sk".to_owned(), s(super::items::EVENT_SK)),
            ("page".to_owned(), n_page(page)),
        ]);
        self.put(item, Some((NEW, Item::new())))
    }

    /// The key's live page: only where no page is live for the key, or where the item
    /// names a page that is not live any more (`stale`, left by hand).
    pub(super) fn key_put(
        &self,
        key: &str,
        page: PageId,
        stale: Option<PageId>,
    ) -> Result<TransactWriteItem, LedgerError> {
        let item = Item::from([
            ("pk".to_owned(), s(key_pk(key))),
            ("sk".to_owned(), s(KEY_SK)),
            ("page".to_owned(), n_page(page)),
        ]);
        match stale {
            Some(old) => self.put(
                item,
                Some((
                    "attribute_not_exists(pk) OR page = :stale",
                    Item::from([(":stale".to_owned(), n_page(old))]),
                )),
            ),
            None => self.put(item, Some((NEW, Item::new()))),
        }
    }
}

pub(super) fn n_page(id: PageId) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(id.0.to_string())
}
