//! What the service would do with one message, deciding exactly as it would and changing
//! nothing: for `process` and `redrive --dry-run`, so that they give the server's outcome for
//! every shape (an alarm, a group of alerts, an AWS Support event as AWS delivers it, news no
//! case needs).

use serde_json::{Value, json};

use crate::domain::alarm::Alarm;
use crate::domain::delivery::{Delivery, Message};

use super::support_event::Assessment;
use super::{CaseError, CaseService, Dedupe, Reading};

impl CaseService {
    /// The outcome and the plan, as JSON: `{"outcome", ...}` (a group of alerts:
    /// `{"outcome": "batch", "alarms": [...]}`). An AWS Support event is taken as AWS
    /// delivers it (through SNS or the queue).
    pub async fn preview(
        &self,
        delivery: &Delivery,
        message: &Message,
    ) -> Result<Value, CaseError> {
        Ok(match message {
            Message::Alarm(alarm) => self.preview_alarm(delivery, alarm).await?,
            // One alert is answered as one alarm, as the server answers it.
            Message::Alarms(alarms) if alarms.len() == 1 => {
                self.preview_alarm(delivery, &alarms[0]).await?
            }
            Message::Alarms(alarms) => {
                let mut each = Vec::with_capacity(alarms.len());
                for alarm in alarms {
                    each.push(self.preview_alarm(delivery, alarm).await?);
                }
                json!({"outcome": "batch", "alarms": each})
            }
            Message::Ignored { about, why } => {
                json!({"outcome": "ignored", "alarm": about, "reason": why})
            }
            Message::SmsReply(reply) => match reply.acknowledges() {
                Some(page) => json!({"outcome": "paged", "alarm": "sms reply",
                    "reason": format!("acknowledges page {page} if the page reached the sender's number")}),
                None => json!({"outcome": "ignored", "alarm": "sms reply",
                    "reason": "not ACK and a page number"}),
            },
            Message::CaseUpdate(update) => {
                let mut keys = delivery.dedupe_keys();
                keys.push(update.dedupe_key());
                match self
                    .assess_case_update(update, &keys, (self.clock)())
                    .await?
                {
                    Assessment::Duplicate { case_id } => json!({
                        "outcome": "duplicate", "caseId": case_id, "alarm": update.label(),
                        "reason": "this AWS Support event was recorded before",
                    }),
                    Assessment::Act(a) => json!({
                        "outcome": a.outcome, "caseId": update.case_id, "alarm": update.label(),
                        "reason": a.note,
                    }),
                }
            }
        })
    }

    async fn preview_alarm(&self, delivery: &Delivery, alarm: &Alarm) -> Result<Value, CaseError> {
        if let Some(refused) = self.refusal(alarm) {
            return Ok(json!({
                "outcome": "refused", "error": "account_not_served", "alarm": alarm.name,
                "reason": refused.to_string(),
            }));
        }
        let (plan, _) = self
            .plan_with(delivery, alarm, Dedupe::Check, Reading::Read)
            .await?;
        Ok(json!({
            "outcome": plan.outcome,
            "alarm": alarm.name,
            "alarmKey": alarm.key(),
            "state": alarm.state,
            "trigger": alarm.trigger,
            "caseId": plan.case_id(),
            "reason": plan.note,
            "plan": plan,
        }))
    }
}
