//! The alarm side of the pager: an alarm event opens, joins or resolves a page; the case
//! an acknowledgement tells, and what AWS Health reports, are looked up for it.

use std::time::Duration;

use super::*;
use crate::domain::alarm::{Alarm, AlarmState};
use crate::domain::page::Via;
use crate::domain::settings::AlarmSettings;

impl Pager {
    /// What a page is kept apart by: the alarm's group, so its members share one page.
    pub fn key(alarm: &Alarm, settings: &AlarmSettings) -> String {
        match &settings.group {
            Some(g) => format!("group:{g}"),
            None => alarm.key().to_owned(),
        }
    }

    /// An alarm event whose route includes people: ALARM opens a page (or attaches to the
    /// live one); OK resolves the live one and tells the people it reached. Idempotent by
    /// the event: a redelivery changes nothing.
    pub async fn on_alarm(
        &self,
        alarm: &Alarm,
        settings: &AlarmSettings,
    ) -> Result<Paged, PagingError> {
        if !settings.route.pages() {
            return Ok(Paged::Nothing);
        }
        let key = Self::key(alarm, settings);
        match alarm.state {
            AlarmState::Alarm => self.raise_for(alarm, settings, key).await,
            AlarmState::Ok => self.resolve_for(alarm, &key).await,
            AlarmState::InsufficientData => Ok(Paged::Nothing),
        }
    }

    /// ALARM: a page opened, or the alarm put on its live page.
    async fn raise_for(
        &self,
        alarm: &Alarm,
        settings: &AlarmSettings,
        key: String,
    ) -> Result<Paged, PagingError> {
        let now = self.now();
        let policy = settings
            .policy
            .clone()
            .or_else(|| self.default_policy.clone())
            .unwrap_or_default();
        let on_call = self.on_call().await?;
        let named = escalation::policy_named(&on_call, &policy);
        let health = self.health_issue(alarm).await;
        let grace = match (&health, &named) {
            (Some(_), Some(p)) => p.health_grace,
            _ => Duration::ZERO,
        };
        let first = named
            .as_ref()
            .map_or(Duration::ZERO, escalation::first_wait)
            + grace;
        let summary = match &health {
            Some(h) => text::with_health(&text::summary(alarm), h),
            None => text::summary(alarm),
        };
        let raised = self
            .pages
            .raise(NewPage {
                key,
                alarm: alarm.name.clone(),
                policy,
                summary,
                event: alarm.event_key(),
                at: now,
                first_due: now + first,
                description: alarm.description.clone(),
            })
            .await?;
        if let Raised::Opened(_) = raised {
            self.metrics.record(Event::PageOpened);
            self.wake.notify_one();
        }
        Ok(raised.into())
    }

    /// OK: the live page resolved and everyone it reached told, unless its policy keeps it
    /// for the people once anyone was called (during its `wait`, an OK always ends it).
    async fn resolve_for(&self, alarm: &Alarm, key: &str) -> Result<Paged, PagingError> {
        let Some(live) = self.pages.live(key).await? else {
            return Ok(Paged::Nothing);
        };
        let called = live.position != crate::domain::page::Position::START;
        let on_call = self.on_call().await?;
        let keep =
            escalation::policy_named(&on_call, &live.policy).is_some_and(|p| !p.resolve_on_ok);
        if called && keep {
            return Ok(Paged::Nothing);
        }
        let tell = Tell {
            text: text::resolved(live.id, &alarm.name, live.owner.as_deref()),
            except: None,
            also: Vec::new(),
        };
        let resolve = Action::Resolve {
            by: None,
            via: Via::Alarm,
        };
        let acted = self
            .pages
            .act(live.id, resolve, Some(tell), self.now())
            .await?;
        self.wake.notify_one();
        Ok(match acted {
            Acted::Done(_) => Paged::Resolved(live.id),
            _ => Paged::Nothing,
        })
    }

    /// The message to the alarm's open AWS case saying who has the page (none when no case
    /// is open for it, or the case ledger cannot say).
    pub(super) async fn case_told(&self, page: &PageSummary, by: &str) -> Vec<NewMessage> {
        let Some(ledger) = &self.cases else {
            return Vec::new();
        };
        let case = match page.key.strip_prefix("group:") {
            Some(group) => ledger.open_cases().await.map(|open| {
                open.into_iter()
                    .find(|c| c.group.as_deref() == Some(group))
                    .map(|c| c.case_id)
            }),
            None => ledger
                .open_case(&page.key)
                .await
                .map(|c| c.map(|c| c.case_id)),
        };
        let case = match case {
            Ok(Some(case)) if !case.is_empty() => case,
            Ok(_) => return Vec::new(),
            Err(e) => {
                tracing::warn!(page = %page.id, error = %crate::errors::Chain(&e), "the page's case could not be looked up; it is not told who owns the page");
                return Vec::new();
            }
        };
        let name = match self.on_call().await {
            Ok(on_call) => on_call
                .people
                .iter()
                .find(|p| p.id.as_str() == by)
                .map(|p| p.name.clone()),
            Err(_) => None,
        };
        let now = self.now();
        vec![NewMessage {
            key: format!("{}/case@{}", page.id, now.timestamp_micros()),
            person: by.to_owned(),
            channel: crate::domain::page::Channel::Case,
            to: case,
            text: text::case_owner(page.id, by, name.as_deref(), now),
            stage: None,
            round: None,
        }]
    }

    /// What AWS Health says while it reports an open issue with the alarm's service in the
    /// alarm's region (an open case of a Health event names both in its ARN).
    async fn health_issue(&self, alarm: &Alarm) -> Option<String> {
        let (ledger, service) = (self.cases.as_ref()?, alarm.aws_service()?);
        let region = alarm.identity.region.clone()?;
        let open = match ledger.open_cases().await {
            Ok(open) => open,
            Err(e) => {
                tracing::warn!(error = %crate::errors::Chain(&e), "AWS Health's open issues could not be read; the page does not wait for them");
                return None;
            }
        };
        open.iter()
            .filter_map(|c| crate::domain::alarm::service::health_issue(&c.alarm_key))
            .find(|(s, r)| *s == service && (*r == region || r == "global"))
            .map(|(s, r)| format!("AWS reports an issue with {s} in {r}"))
    }
}
