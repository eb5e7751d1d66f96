//! Raising a page (open, attach, or the same event again) and committing a due step: each
//! one TransactWriteItems decided on a consistent read, decided again when it lost a race.

use std::collections::BTreeSet;

use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::items::{COUNTER_PK, COUNTER_SK, PageRow, callout_item};
use super::reads::KeyHolder;
use super::writes::{ATTEMPTS, NEW, busy, pause};
use crate::backend::aws::dynamo::ledger::requests::ledger_error;
use crate::backend::aws::dynamo::outbox::notice_item;
use crate::backend::aws::dynamo::{DynamoLedger, Item, get_n, n, s};
use crate::domain::page::{PageId, PageState, Position};
use crate::ports::ledger::LedgerError;
use crate::ports::pages::{Advance, NewPage, PageSummary, Raised};

impl DynamoLedger {
    /// Raises a page: the event seen before answers `Again`; a live page of the key gets a
    /// line; otherwise a new page, whose key item (written only if none is there) keeps two
    /// instances from opening two live pages for one key: the loser attaches.
    pub(super) async fn raise_page(&self, p: &NewPage) -> Result<Raised, LedgerError> {
        for attempt in 0..ATTEMPTS {
            if let Some(page) = self.event_page(&p.event).await? {
                return Ok(Raised::Again(page));
            }
            let done = match self.key_holder(&p.key).await? {
                KeyHolder::Live(row) => self.attach(*row, p).await?.map(Raised::Attached),
                KeyHolder::None => self.open(p, None).await?.map(Raised::Opened),
                KeyHolder::Stale(old) => self.open(p, Some(old)).await?.map(Raised::Opened),
            };
            if let Some(raised) = done {
                return Ok(raised);
            }
            pause(attempt).await;
        }
        Err(busy("raise"))
    }

    async fn attach(&self, mut row: PageRow, p: &NewPage) -> Result<Option<PageId>, LedgerError> {
        let id = row.summary.id;
        let read = row.rev;
        let line = format!("{} fired again: {}", p.alarm, p.summary);
        let mut items = vec![self.event_put(&p.event, id)?];
        items.extend(self.line_put(&mut row, p.at, &[line])?);
        items.push(self.page_put(&mut row, Some(read))?);
        Ok(self.page_tx("raise (attach)", &items).await?.then_some(id))
    }

    async fn open(
        &self,
        p: &NewPage,
        stale: Option<PageId>,
    ) -> Result<Option<PageId>, LedgerError> {
        let id = self.next_page_id().await?;
        let mut row = PageRow {
            summary: PageSummary {
                id,
                alarm: p.alarm.clone(),
                key: p.key.clone(),
                state: PageState::Open,
                policy: p.policy.clone(),
                summary: p.summary.clone(),
                opened_at: p.at,
                owner: None,
                position: Position::START,
                next_at: Some(p.first_due),
                acknowledged_at: None,
                resolved_at: None,
            },
            rev: 0,
            line_seq: 0,
            msg_seq: 0,
            msg_keys: BTreeSet::new(),
            called: BTreeSet::new(),
        };
        let line = p.opened_line();
        let mut items = vec![
            self.event_put(&p.event, id)?,
            self.key_put(&p.key, id, stale)?,
        ];
        items.extend(self.line_put(&mut row, p.at, &[line])?);
        items.push(self.page_put(&mut row, None)?);
        items.extend(self.live_writes(&row, p.at)?);
        // A number taken by a raise that then lost its race is not used again: page
        // numbers may skip one, never repeat.
        Ok(self.page_tx("raise (open)", &items).await?.then_some(id))
    }

    /// A new page number: one atomic counter, so numbers stay small (people type them).
    async fn next_page_id(&self) -> Result<PageId, LedgerError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(COUNTER_PK))
            .key("sk", s(COUNTER_SK))
            .update_expression("ADD n :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| ledger_error("UpdateItem (page number)", e))?;
        out.attributes()
            .and_then(|a| get_n(a, "n"))
            .and_then(|v| u64::try_from(v).ok())
            .map(PageId)
            .ok_or_else(|| LedgerError::corrupt_said("the page counter answered no number"))
    }

    /// Commits a step if the page is still open where it was taken.
    pub(super) async fn advance_page(
        &self,
        step: &Advance,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        for attempt in 0..ATTEMPTS {
            let Some(row) = self.page_row(step.page).await? else {
                return Ok(false);
            };
            if row.summary.state != PageState::Open || row.summary.position != step.from {
                return Ok(false);
            }
            let items = self.advance_items(row, step, now)?;
            if self.page_tx("advance", &items).await? {
                return Ok(true);
            }
            pause(attempt).await;
        }
        Err(busy("advance"))
    }

    /// The step's transaction: the page where it stands next, its live copy (or, once
    /// unanswered, none), the messages and callouts not made before, the timeline, the
    /// notices for the outbox.
    fn advance_items(
        &self,
        mut row: PageRow,
        step: &Advance,
        now: DateTime<Utc>,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let read = row.rev;
        let p = &mut row.summary;
        (p.state, p.next_at) = match step.next {
            Some((_, at)) => (PageState::Open, Some(at)),
            None => (PageState::Unanswered, None),
        };
        p.position = step.next.map_or(step.from, |(pos, _)| pos);
        let mut items = self.queue_new(&mut row, &step.messages, now)?;
        for c in &step.callouts {
            // One callout per page and person: the first stage that reached them.
            if row.called.insert(c.person.clone()) {
                let item = callout_item(step.page, c);
                items.push(self.put(item, Some((NEW, Item::new())))?);
            }
        }
        items.extend(self.line_put(&mut row, now, &step.timeline)?);
        for notice in &step.notices {
            items.push(self.put(notice_item(notice, Utc::now())?, None)?);
        }
        items.push(self.page_put(&mut row, Some(read))?);
        items.extend(self.live_writes(&row, now)?);
        Ok(items)
    }
}
