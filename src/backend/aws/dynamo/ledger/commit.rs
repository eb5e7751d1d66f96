//! A decision's transaction: every item it writes, each with the condition that keeps two
//! instances from recording the same event twice or opening a second case.

use aws_sdk_dynamodb::types::TransactWriteItem;
use chrono::Utc;

use super::items::{NOT_HANDLED, decision_json, history};
use super::{DynamoLedger, HELD_PK, OPEN_SK, STATE_CLAIMED, STATE_OPEN};
use crate::backend::aws::dynamo::outbox::notice_item;
use crate::backend::aws::dynamo::{Item, TTL_ATTRIBUTE, n, s};
use crate::ports::ledger::{Claim, Commit, HoldChange, LedgerError, OpenCase, OpenCaseChange};

impl DynamoLedger {
    /// The items of a decision's transaction (its `seq` already set): handled keys
    /// (conditional: not yet handled), the decision's history copies, the open-case
    /// changes, the notices for the outbox and the hold change.
    pub(super) fn commit_items(
        &self,
        commit: &Commit,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let json = decision_json(&commit.decision)?;
        let mut items = self.handled_puts(&commit.handled_keys, &json)?;
        for item in history(&commit.decision, &json) {
            items.push(self.put(item, None)?);
        }
        for change in &commit.open_cases {
            items.push(self.open_case_write(change, commit.claim.as_ref())?);
        }
        for notice in &commit.notices {
            items.push(self.put(notice_item(notice, Utc::now())?, None)?);
        }
        if let Some(hold) = &commit.hold {
            items.push(self.hold_write(hold)?);
        }
        Ok(items)
    }

    /// The handled keys, each holding the decision until its TTL, and each written only if
    /// not yet handled (or expired), so a redelivery racing this one cannot be recorded twice.
    fn handled_puts(
        &self,
        keys: &[String],
        json: &str,
    ) -> Result<Vec<TransactWriteItem>, LedgerError> {
        let now = Utc::now().timestamp();
        let expires = now + i64::try_from(self.handled_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        keys.iter()
            .map(|key| {
                let item = Item::from([
                    ("pk".to_owned(), s(format!("handled#{key}"))),
                    ("sk".to_owned(), s("-")),
                    ("decision".to_owned(), s(json.to_owned())),
                    (TTL_ATTRIBUTE.to_owned(), n(expires)),
                ]);
                let values = Item::from([(":now".to_owned(), n(now))]);
                self.put(item, Some((NOT_HANDLED, values)))
            })
            .collect()
    }

    fn open_case_write(
        &self,
        change: &OpenCaseChange,
        claim: Option<&Claim>,
    ) -> Result<TransactWriteItem, LedgerError> {
        match change {
            OpenCaseChange::Put(open) => self.open_case_put(open, claim),
            OpenCaseChange::Remove { alarm_key } => {
                self.delete(format!("alarm#{alarm_key}"), OPEN_SK)
            }
        }
    }

    /// The alarm's open case; when the case was opened under `claim`, the item it replaces
    /// must still be that claim (a claim taken over after it expired fails the commit).
    fn open_case_put(
        &self,
        open: &OpenCase,
        claim: Option<&Claim>,
    ) -> Result<TransactWriteItem, LedgerError> {
        let record =
            serde_json::to_string(open).map_err(|e| LedgerError::corrupt("a ledger record", e))?;
        let item = Item::from([
            ("pk".to_owned(), s(format!("alarm#{}", open.alarm_key))),
            ("sk".to_owned(), s(OPEN_SK)),
            ("state".to_owned(), s(STATE_OPEN)),
            ("case_id".to_owned(), s(open.case_id.clone())),
            ("record".to_owned(), s(record)),
        ]);
        let condition = claim.filter(|c| c.alarm_key == open.alarm_key).map(|c| {
            (
                "#state = :claimed AND claim_token = :token",
                Item::from([
                    (":claimed".to_owned(), s(STATE_CLAIMED)),
                    (":token".to_owned(), s(c.token.clone())),
                ]),
            )
        });
        self.put(item, condition)
    }

    fn hold_write(&self, hold: &HoldChange) -> Result<TransactWriteItem, LedgerError> {
        match hold {
            HoldChange::Put(held) => {
                let record = serde_json::to_string(held)
                    .map_err(|e| LedgerError::corrupt("a ledger record", e))?;
                let item = Item::from([
                    ("pk".to_owned(), s(HELD_PK)),
                    ("sk".to_owned(), s(held.alarm_key.clone())),
                    ("record".to_owned(), s(record)),
                ]);
                self.put(item, None)
            }
            HoldChange::Remove { alarm_key } => self.delete(HELD_PK.to_owned(), alarm_key),
        }
    }
}
