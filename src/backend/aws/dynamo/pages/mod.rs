//! The page ledger in the ledger table: the items below join the ledger's layout (see
//! `ledger`), in the same table, with no index of their own, so `tables create` and the
//! CloudFormation template are unchanged.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | the last page number (an atomic counter) | `pages` | `counter` |
//! | a page: state, owner, position, next step, revision, message keys, people called | `page#<id>` | `page` |
//! | a live page's copy, with its step's lease (for `due` and live lists) | `pages#live` | `<id, 20 digits>` |
//! | a key's live page | `pagekey#<key>` | `live` |
//! | an event that raised a page | `pageevent#<event>` | `-` |
//! | the timeline lines of one write, in order | `page#<id>` | `line#<seq, 10 digits>` |
//! | a queued message, with its lease | `pagemsgs#queued` | `<id, 20 digits>#<n, 6 digits>` |
//! | a message sent or given up | `page#<id>` | `msg#<n, 6 digits>` |
//! | a callout | `callouts#<YYYY-MM of at>` | `<at µs, 20 digits>#<id, 20 digits>#<person>` |
//! | a step's notices | `outbox` | as the notice outbox writes them |
//!
//! Every write of a page is one TransactWriteItems that includes the page item, written
//! only if its revision (`page_rev`) is still the one read; so each write is decided on
//! the page as it is (where it stands, the message keys it queued, the people it called
//! out, its timeline and message counters), and one that lost a race is decided again on
//! a fresh read. Conditional puts keep an event, a key's live page, a message and a
//! callout from being written twice even so. A message's id is its page's number times a
//! million plus `n`, so the id finds its item. Times are microseconds since the epoch.
//!
//! This file holds the [`PageLedger`] methods; `items` the items' shapes, `reads` the
//! reads, `writes` what every page transaction is made of, `steps` raising and stepping,
//! `actions` what people do and what became of a message, `leases` the due work.

mod actions;
mod items;
mod leases;
mod reads;
mod steps;
mod writes;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::DynamoLedger;
use crate::domain::page::PageId;
use crate::ports::ledger::LedgerError;
use crate::ports::pages::{
    Acted, Action, Advance, Callout, DuePage, NewPage, OutMessage, PageLedger, PageRecord,
    PageSummary, Raised, Tell,
};
use items::{LIVE_PK, PAGE_SK, PageRow, page_pk, summary_from};
use reads::KeyHolder;

/// Page items read per BatchGetItem when listing every page (its most).
const BATCH: u64 = 100;
/// How far apart two instances' clocks may be: a page numbered after another may say it was
/// opened this much earlier.
const CLOCK_MARGIN: chrono::Duration = chrono::Duration::minutes(5);

impl DynamoLedger {
    /// Every page (opened since `since`, if given), newest first: by number down from the
    /// last, in batches (numbers a lost race skipped are simply not found). Numbers rise with
    /// time, give or take the instances' clocks: the reading stops at a batch opened wholly
    /// before `since`, less [`CLOCK_MARGIN`].
    async fn all_pages(
        &self,
        limit: usize,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<PageSummary>, LedgerError> {
        let mut found = Vec::new();
        let mut top = self.last_page_id().await?;
        while top > 0 && found.len() < limit {
            let low = top.saturating_sub(BATCH);
            let wanted = (low + 1..=top)
                .map(|id| items_key(page_pk(PageId(id))))
                .collect();
            let mut batch = self
                .batch_get(wanted)
                .await?
                .iter()
                .map(|item| PageRow::from_item(item).map(|r| r.summary))
                .collect::<Result<Vec<_>, _>>()?;
            batch.sort_by_key(|p| std::cmp::Reverse(p.id));
            let done =
                since.is_some_and(|since| batch.iter().all(|p| p.opened_at < since - CLOCK_MARGIN));
            found.extend(
                batch
                    .into_iter()
                    .filter(|p| since.is_none_or(|since| p.opened_at >= since)),
            );
            top = low;
            if done {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    async fn live_pages(&self, limit: usize) -> Result<Vec<PageSummary>, LedgerError> {
        let q = self
            .query_partition(LIVE_PK.to_owned())
            .scan_index_forward(false);
        self.query_items(q, limit)
            .await?
            .iter()
            .map(summary_from)
            .collect()
    }
}

fn items_key(pk: String) -> super::Item {
    super::Item::from([
        ("pk".to_owned(), super::s(pk)),
        ("sk".to_owned(), super::s(PAGE_SK)),
    ])
}

#[async_trait]
impl PageLedger for DynamoLedger {
    async fn raise(&self, page: NewPage) -> Result<Raised, LedgerError> {
        self.raise_page(&page).await
    }

    async fn live(&self, key: &str) -> Result<Option<PageSummary>, LedgerError> {
        Ok(match self.key_holder(key).await? {
            KeyHolder::Live(row) => Some(row.summary),
            KeyHolder::None | KeyHolder::Stale(_) => None,
        })
    }

    async fn due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DuePage>, LedgerError> {
        self.take_due(now, until, limit).await
    }

    async fn advance(&self, step: Advance, now: DateTime<Utc>) -> Result<bool, LedgerError> {
        self.advance_page(&step, now).await
    }

    async fn act(
        &self,
        page: PageId,
        action: Action,
        tell: Option<Tell>,
        now: DateTime<Utc>,
    ) -> Result<Acted, LedgerError> {
        self.act_on(page, &action, tell.as_ref(), now).await
    }

    async fn pages(&self, live_only: bool, limit: usize) -> Result<Vec<PageSummary>, LedgerError> {
        match live_only {
            true => self.live_pages(limit).await,
            false => self.all_pages(limit, None).await,
        }
    }

    async fn pages_since(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<PageSummary>, LedgerError> {
        self.all_pages(limit, Some(since)).await
    }

    async fn page(&self, id: PageId) -> Result<Option<PageRecord>, LedgerError> {
        self.page_record(id).await
    }

    async fn take_messages(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutMessage>, LedgerError> {
        self.take_queued(now, until, limit).await
    }

    async fn message_done(
        &self,
        id: i64,
        result: Result<(), String>,
        retry: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        self.finish_message(id, &result, retry, now).await
    }

    async fn callouts(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Callout>, LedgerError> {
        self.callouts_between(from, until).await
    }
}
