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
