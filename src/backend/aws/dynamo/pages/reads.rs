//! The reads of the page ledger: single items by key, and Queries of one partition (a
//! page's, the live pages', the queue's, a month's callouts), all consistent so that a
//! write is decided on what the last write left. No Scan: every list is one partition.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::items::{
    COUNTER_PK, COUNTER_SK, EVENT_SK, KEY_SK, MessageRow, PAGE_SK, PageRow, QUEUE_PK, callout_from,
    callout_sk_at, callouts_pk, event_pk, key_pk, lines_from, message_sk, padded, page_of, page_pk,
    queue_sk,
};
use crate::backend::aws::dynamo::ledger::requests::ledger_error;
use crate::backend::aws::dynamo::{DynamoLedger, Item, get_n, get_s, s};
use crate::domain::page::PageId;
use crate::ports::ledger::LedgerError;
use crate::ports::pages::{Callout, PageRecord, TimelineEntry};

/// Who holds a key's live page.
pub(super) enum KeyHolder {
    None,
    Live(Box<PageRow>),
    /// The key's item names a page that is not live (left so by hand): a new page may
    /// replace it.
    Stale(PageId),
}

impl DynamoLedger {
    pub(in crate::backend::aws::dynamo) async fn get(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<Item>, LedgerError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| ledger_error("GetItem (pages)", e))?;
        Ok(out.item().cloned())
    }

    /// Every item a Query answers, page after page, up to `limit` items.
    pub(in crate::backend::aws::dynamo) async fn query_items(
        &self,
        q: QueryFluentBuilder,
        limit: usize,
    ) -> Result<Vec<Item>, LedgerError> {
        let mut items = q.consistent_read(true).into_paginator().items().send();
        let mut out = Vec::new();
        while out.len() < limit
            && let Some(item) = items
                .try_next()
                .await
                .map_err(|e| ledger_error("Query (pages)", e))?
        {
            out.push(item);
        }
        Ok(out)
    }

    /// A Query of every item of partition `pk`.
    pub(super) fn query_partition(&self, pk: String) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
    }

    /// A Query of the items of partition `pk` whose sort keys begin with `prefix`.
    pub(super) fn query_prefix(&self, pk: String, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
    }

    pub(super) async fn page_row(&self, id: PageId) -> Result<Option<PageRow>, LedgerError> {
        self.get(page_pk(id), PAGE_SK)
            .await?
            .as_ref()
            .map(PageRow::from_item)
            .transpose()
    }

    /// The page an event raised, if it was raised before.
    pub(super) async fn event_page(&self, event: &str) -> Result<Option<PageId>, LedgerError> {
        self.get(event_pk(event), EVENT_SK)
            .await?
            .map(|item| page_of(&item, "page"))
            .transpose()
    }

    pub(super) async fn key_holder(&self, key: &str) -> Result<KeyHolder, LedgerError> {
        let Some(item) = self.get(key_pk(key), KEY_SK).await? else {
            return Ok(KeyHolder::None);
        };
        let id = page_of(&item, "page")?;
        Ok(match self.page_row(id).await? {
            Some(row) if row.summary.state.is_live() => KeyHolder::Live(Box::new(row)),
            _ => KeyHolder::Stale(id),
        })
    }

    /// The number of the last page opened: pages are numbered from 1.
    pub(super) async fn last_page_id(&self) -> Result<u64, LedgerError> {
        Ok(self
            .get(COUNTER_PK.to_owned(), COUNTER_SK)
            .await?
            .and_then(|item| get_n(&item, "n"))
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0))
    }

    /// A message by its place in its page: queued, or else done.
    pub(super) async fn message_row(
        &self,
        page: PageId,
        idx: i64,
    ) -> Result<Option<(MessageRow, bool)>, LedgerError> {
        if let Some(item) = self.get(QUEUE_PK.to_owned(), &queue_sk(page, idx)).await? {
            return Ok(Some((MessageRow::from_item(&item)?, true)));
        }
        match self.get(page_pk(page), &message_sk(idx)).await? {
            Some(item) => Ok(Some((MessageRow::from_item(&item)?, false))),
            None => Ok(None),
        }
    }

    /// A page's messages in the order they were queued, and its timeline in order. The
    /// queued ones are read first: a message done meanwhile is then read twice (its done
    /// copy wins), never missed.
    pub(super) async fn page_contents(
        &self,
        id: PageId,
    ) -> Result<(Vec<MessageRow>, Vec<TimelineEntry>), LedgerError> {
        let queued = self
            .query_items(
                self.query_prefix(QUEUE_PK.to_owned(), &format!("{}#", padded(id))),
                usize::MAX,
            )
            .await?;
        let mut messages = BTreeMap::new();
        for item in &queued {
            let m = MessageRow::from_item(item)?;
            messages.insert(m.idx, m);
        }
        let mut timeline = Vec::new();
        for item in self
            .query_items(self.query_partition(page_pk(id)), usize::MAX)
            .await?
        {
            match get_s(&item, "sk") {
                Some(sk) if sk.starts_with("line#") => timeline.extend(lines_from(&item)?),
                Some(sk) if sk.starts_with("msg#") => {
                    let m = MessageRow::from_item(&item)?;
                    messages.insert(m.idx, m);
                }
                _ => {}
            }
        }
        Ok((messages.into_values().collect(), timeline))
    }

    pub(super) async fn page_record(&self, id: PageId) -> Result<Option<PageRecord>, LedgerError> {
        let Some(row) = self.page_row(id).await? else {
            return Ok(None);
        };
        let (messages, timeline) = self.page_contents(id).await?;
        Ok(Some(PageRecord {
            page: row.summary,
            messages: messages.iter().map(MessageRow::record).collect(),
            timeline,
        }))
    }

    /// Callouts in `[from, until)`: a range of sort keys in each month they span, ordered by
    /// time, then person.
    pub(super) async fn callouts_between(
        &self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Callout>, LedgerError> {
        let mut all = Vec::new();
        if until <= from {
            return Ok(all);
        }
        // From the first microsecond of `from` to the last before `until`: `~` sorts after
        // the `#` that follows the time in every key of that microsecond.
        let low = callout_sk_at(from.timestamp_micros());
        let high = format!(
            "{}~",
            callout_sk_at(until.timestamp_micros().saturating_sub(1))
        );
        let month_start = |m: NaiveDate| m.and_time(chrono::NaiveTime::MIN).and_utc();
        let mut month = NaiveDate::from_ymd_opt(from.year(), from.month(), 1);
        while let Some(m) = month.filter(|m| month_start(*m) < until) {
            let q = self
                .query_partition(callouts_pk(month_start(m)))
                .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                .expression_attribute_values(":low", s(low.clone()))
                .expression_attribute_values(":high", s(high.clone()));
            for item in self.query_items(q, usize::MAX).await? {
                all.push(callout_from(&item)?);
            }
            month = m.checked_add_months(chrono::Months::new(1));
        }
        all.sort_by(|a, b| (a.at, &a.person).cmp(&(b.at, &b.person)));
        Ok(all)
    }
}
