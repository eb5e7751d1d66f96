//! Acknowledging by text message: "ACK 12" from a number page 12 reached (by SMS or a call)
//! acknowledges it as the person that number belongs to. A reply from any other number, or
//! naming a page that never reached it, changes nothing.

use crate::domain::page::{Channel, PageId, PageState, Via};
use crate::domain::sms_reply::SmsReply;
use crate::ports::pages::{Acted, Action};

use super::engine::{Pager, PagingError};

/// What a reply did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replied {
    Acknowledged {
        page: PageId,
        person: String,
    },
    /// The page is no longer open (acknowledged by someone, resolved, unanswered).
    Refused {
        page: PageId,
        state: PageState,
    },
    /// No page of that number reached the sender's number.
    NotReached,
    /// Not "ACK N".
    NotAnAck,
}

impl Pager {
    /// Acts on a text message reply, as AWS delivered it.
    pub async fn sms_reply(&self, reply: &SmsReply) -> Result<Replied, PagingError> {
        let Some(id) = reply.acknowledges().map(PageId) else {
            return Ok(Replied::NotAnAck);
        };
        let Some(record) = self.ledger().page(id).await? else {
            return Ok(Replied::NotReached);
        };
        let person = record
            .messages
            .iter()
            .find(|m| {
                m.stage.is_some()
                    && matches!(m.channel, Channel::Sms | Channel::Voice)
                    && m.to == reply.from
            })
            .map(|m| m.person.clone());
        let Some(person) = person else {
            return Ok(Replied::NotReached);
        };
        let action = Action::Acknowledge {
            by: person.clone(),
            via: Via::Sms,
        };
        Ok(match self.act(id, action).await? {
            Acted::Done(_) => Replied::Acknowledged { page: id, person },
            Acted::Refused(state) => Replied::Refused { page: id, state },
            Acted::NoSuchPage => Replied::NotReached,
        })
    }
}

/// AWS Support replied on a case and is waiting for the customer.
#[derive(Debug, Clone)]
pub struct AwsWaiting<'a> {
    pub case_id: &'a str,
    /// The id people know the case by (its display id when AWS gave it).
    pub shown: &'a str,
    /// The key the alarm's pages are kept under (its group's, or its own), when the case
    /// is an alarm's.
    pub page_key: Option<String>,
    pub alarm: &'a str,
    /// The EventBridge event: a redelivery pages nobody again.
    pub event: &'a str,
    /// The alarm's escalation policy, for when nobody owns its page.
    pub policy: Option<String>,
}

impl Pager {
    /// Pages whoever owns the alarm's live page (at once, one stage) or, when nobody does,
    /// the on-duty people by the alarm's policy: AWS is waiting for them. Each reply is a
    /// page of its own, idempotent by the event.
    pub async fn aws_waiting(
        &self,
        w: AwsWaiting<'_>,
    ) -> Result<super::engine::Paged, PagingError> {
        let owner = match &w.page_key {
            Some(key) => self.ledger().live(key).await?.and_then(|p| p.owner),
            None => None,
        };
        let policy = match owner {
            Some(owner) => format!("person:{owner}"),
            None => w
                .policy
                .clone()
                .or_else(|| self.default_policy().map(str::to_owned))
                .unwrap_or_default(),
        };
        let now = self.now();
        let raised = self
            .ledger()
            .raise(crate::ports::pages::NewPage {
                key: format!("case:{}:{}", w.case_id, w.event),
                alarm: w.alarm.to_owned(),
                policy,
                summary: super::text::aws_waiting(w.shown, w.alarm),
                event: format!("support:{}", w.event),
                at: now,
                first_due: now,
                description: None,
            })
            .await?;
        self.woken();
        Ok(raised.into())
    }
}
