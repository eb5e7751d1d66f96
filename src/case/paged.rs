//! Alarms routed to people (`route` = `page` or `both`): the pager opens the page (or the
//! alarm joins the live one, or OK resolves it) before the case logic runs, idempotently by
//! the alarm event, so a retry after a failure on either side repeats nothing. An alarm
//! routed to people only is then recorded as `paged` with its handled keys, so a redelivery
//! is a duplicate like any other.

use std::sync::Arc;

use crate::domain::alarm::Alarm;
use crate::domain::delivery::Delivery;
use crate::domain::outcome::Outcome;
use crate::paging::engine::{Paged, Pager};
use crate::paging::replies::Replied;
use crate::ports::ledger::{Commit, Decision};

use super::recent::Earlier;
use super::records::handled_keys;
use super::{CaseError, CaseService, Handled};

impl CaseService {
    /// Pages the people on duty for alarms whose settings route them there.
    pub fn with_pager(mut self, pager: Arc<Pager>) -> Self {
        self.pager = Some(pager);
        self
    }

    pub fn pager(&self) -> Option<&Arc<Pager>> {
        self.pager.as_ref()
    }

    /// Pages for an alarm routed to people. `Some`: its route is people only, and this is
    /// the answer; `None`: the case logic goes on (its route includes a case).
    pub(super) async fn page(
        &self,
        delivery: &Delivery,
        alarm: &Alarm,
    ) -> Result<Option<Handled>, CaseError> {
        let Some(pager) = &self.pager else {
            return Ok(None);
        };
        let (settings, _) = self.settings(alarm).await?;
        if !settings.route.pages() {
            return Ok(None);
        }
        // One delivery of an alarm at a time in this process, as for its case.
        let _guard = self.locks.stripe(alarm.key()).lock().await;
        let keys = handled_keys(delivery, alarm);
        if !settings.route.cases()
            && let Some(first) = self.ledger.find_handled(&keys).await?
        {
            let earlier = Earlier::of(&first);
            self.recent.remember(&keys, earlier.clone());
            return Ok(Some(self.duplicate(delivery, alarm, &earlier).await));
        }
        let paged = pager.on_alarm(alarm, &settings).await?;
        if settings.route.cases() {
            return Ok(None);
        }
        let (outcome, note) = match paged {
            Paged::Opened(p) => (Outcome::Paged, format!("page {p} opened")),
            Paged::Attached(p) => (Outcome::Paged, format!("joined the live page {p}")),
            Paged::Again(p) => (Outcome::Paged, format!("already on page {p}")),
            Paged::Resolved(p) => (Outcome::Paged, format!("page {p} resolved")),
            Paged::Nothing => (Outcome::Ignored, "no live page".to_owned()),
        };
        let decision =
            Decision::about(delivery, alarm, outcome, (self.clock)()).noted(note.clone());
        let seq = self
            .commit_retrying(Commit::record(keys.clone(), decision))
            .await?;
        self.recent.remember(
            &keys,
            Earlier {
                seq,
                outcome,
                case_id: None,
                about: None,
            },
        );
        Ok(Some(Handled {
            outcome,
            case_id: None,
            alarm: alarm.name.clone(),
            reason: Some(note),
        }))
    }

    /// A text message reply ("ACK 12"), as AWS delivered it: acknowledges the page as the
    /// person whose number it reached; anything else is recorded as ignored, with why.
    pub async fn sms_reply(
        &self,
        delivery: &Delivery,
        reply: &crate::domain::sms_reply::SmsReply,
    ) -> Result<Handled, CaseError> {
        let about = "sms reply";
        let Some(pager) = &self.pager else {
            return self
                .ignore(delivery, about, "this backend keeps no pages".into())
                .await;
        };
        let keys = delivery.dedupe_keys();
        if let Some(first) = self.ledger.find_handled(&keys).await? {
            let earlier = Earlier::of(&first);
            return Ok(Handled {
                outcome: Outcome::Duplicate,
                case_id: None,
                alarm: about.into(),
                reason: Some(format!("first handled as #{}", earlier.seq)),
            });
        }
        let (outcome, why) = match pager.sms_reply(reply).await? {
            Replied::Acknowledged { page, person } => (
                Outcome::Paged,
                format!("page {page} acknowledged by {person} (sms)"),
            ),
            Replied::Refused { page, state } => (
                Outcome::Ignored,
                format!("page {page} is {}: nothing to acknowledge", state.as_str()),
            ),
            Replied::NotReached => (
                Outcome::Ignored,
                "a reply from a number that page never reached".into(),
            ),
            Replied::NotAnAck => (Outcome::Ignored, "not ACK and a page number".into()),
        };
        let decision =
            Decision::new(delivery, about, about, outcome, (self.clock)()).noted(why.clone());
        self.commit_retrying(Commit::record(keys, decision)).await?;
        Ok(Handled {
            outcome,
            case_id: None,
            alarm: about.into(),
            reason: Some(why),
        })
    }

    /// AWS Support replied and waits for the customer: the owner of the alarm's live page
    /// is paged, or, when nobody owns it, the on-duty people by the alarm's policy, if the
    /// team pages at all (the alarm routes to people, or `PAGE_POLICY` is set). Before the
    /// decision is recorded, and idempotent by the event, as an alarm's page is.
    pub(super) async fn page_aws_reply(
        &self,
        update: &crate::domain::case_event::CaseUpdate,
        alarm: Option<&(String, String)>,
    ) -> Result<(), CaseError> {
        let (Some(pager), Some(case_id)) = (&self.pager, update.case_id.as_deref()) else {
            return Ok(());
        };
        let (page_key, name, settings) = match alarm {
            Some((key, name)) => {
                let group = self.ledger.open_case(key).await?.and_then(|c| c.group);
                let record = self
                    .config
                    .get(name)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let (settings, _) = crate::domain::settings::AlarmSettings::from_record(&record);
                let page_key = group.map_or_else(|| key.clone(), |g| format!("group:{g}"));
                (Some(page_key), name.clone(), Some(settings))
            }
            None => (None, update.label(), None),
        };
        let owned = match &page_key {
            Some(k) => pager
                .ledger()
                .live(k)
                .await?
                .and_then(|p| p.owner)
                .is_some(),
            None => false,
        };
        let routed = settings.as_ref().is_some_and(|s| s.route.pages());
        if !(owned || routed || pager.has_default_policy()) {
            return Ok(());
        }
        pager
            .aws_waiting(crate::paging::replies::AwsWaiting {
                case_id,
                shown: update.shown_id(),
                page_key,
                alarm: &name,
                event: &update.event_id,
                policy: settings.and_then(|s| s.policy),
            })
            .await?;
        Ok(())
    }
}
