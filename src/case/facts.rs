//! Reading what a decision needs: the alarm's settings (stored, from its tags, checked
//! against the codes the desk knows) and the ledger's facts, in the order [`decide`] looks
//! at them and no further, so a redelivery costs one lookup and a new alarm a few (none on
//! DynamoDB, whose claim checks what a new alarm's decision assumes).
//!
//! [`decide`]: super::plan::decide

use crate::domain::alarm::{Alarm, AlarmState};
use crate::domain::delivery::Delivery;
use crate::domain::maintenance::{self, MaintenanceWindow};
use crate::domain::settings::{AlarmSettings, StoreError};
use crate::ports::desk::CodeProblem;
use crate::ports::ledger::Lookup;

use super::plan::Facts;
use super::records::handled_keys;
use super::{CaseError, CaseService, STORM_KEY};

/// How a decision learns what the ledger knows about the event.
#[derive(Clone, PartialEq)]
pub(super) enum Reading {
    /// Read it first (one request on DynamoDB).
    Read,
    /// For a new ALARM on a ledger whose claim checks it ([`CaseLedger::checks_at_claim`]):
    /// assume the common case, an event not handled and no case open for the alarm, and
    /// let the claim's conditions check that. Only a plan to open a counted case is carried
    /// out on the assumption; any other plan is read and decided again at once, and so is
    /// one whose claim finds the assumption wrong.
    Assume,
    /// What a failed claim found (the alarm's open case): as good as a read.
    Found(Box<crate::ports::ledger::Lookup>),
}

/// Whether a plan looks for an earlier decision on the same keys.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dedupe {
    Check,
    /// Raising an alarm held during maintenance: its event was recorded as suppressed.
    Skip,
}

impl CaseService {
    /// What is known about this alarm event now, read from the stores.
    pub(super) async fn facts(
        &self,
        delivery: &Delivery,
        alarm: &Alarm,
        dedupe: Dedupe,
        reading: Reading,
    ) -> Result<(Facts, Reading), CaseError> {
        let now = (self.clock)();
        let (mut settings, mut notes) = self.settings(alarm).await?;
        self.check_codes(&mut settings, &mut notes).await;
        // Assumed only where the claim can check all of it: a new ALARM, not routed by its
        // settings to other alarms' cases (those are read in any case).
        let reading = match reading {
            Reading::Assume
                if dedupe == Dedupe::Check
                    && alarm.state == AlarmState::Alarm
                    && self.ledger.checks_at_claim()
                    && !Facts::needs_others(alarm, &settings, None) =>
            {
                Reading::Assume
            }
            Reading::Found(found) => Reading::Found(found),
            _ => Reading::Read,
        };
        let mut facts = Facts {
            now,
            settings,
            notes,
            earlier: None,
            window: None,
            open: None,
            others: Vec::new(),
            slots_taken: 0,
            storm: None,
        };
        // One read of the ledger (on DynamoDB, one request) for what deciding needs from it;
        // none when the claim is to check a new alarm's assumed facts (`Reading::Assume`).
        let keys = match dedupe {
            Dedupe::Check => handled_keys(delivery, alarm),
            Dedupe::Skip => Vec::new(),
        };
        let lookup = match &reading {
            Reading::Assume => Lookup::default(),
            Reading::Found(found) => (**found).clone(),
            Reading::Read => self.ledger.lookup(&keys, alarm.key(), now).await?,
        };
        facts.earlier = lookup.earlier;
        // Durable, as the ledger said: the next redelivery is answered from memory.
        if let Some(d) = &facts.earlier {
            self.recent.remember(&keys, super::recent::Earlier::of(d));
        }
        if facts.settled_early(alarm, &self.policy) {
            return Ok((facts, reading));
        }
        let windows = self.windows().await?;
        facts.window = maintenance::covering(&windows, &alarm.name, now)
            .map(|(window, until)| (window.clone(), until));
        if facts.window.is_some() {
            return Ok((facts, reading));
        }
        facts.open = lookup.open;
        // The open cases of other alarms are read once, and only when the alarm's settings
        // (inhibition, groups) or its group's recovery ask for them.
        if Facts::needs_others(alarm, &facts.settings, facts.open.as_ref()) {
            facts.others = self.ledger.open_cases().await?;
        }
        if alarm.state == AlarmState::Alarm && facts.open.is_none() {
            facts.slots_taken = lookup.slots_taken;
            if facts.slots_taken >= self.policy.storm_cap {
                facts.storm = self.ledger.open_case(STORM_KEY).await?;
            }
        }
        Ok((facts, reading))
    }

    /// The maintenance windows: a store that cannot be read at all (a hand-edited file
    /// with a typo) applies none, since a case during maintenance beats no case at all.
    async fn windows(&self) -> Result<Vec<MaintenanceWindow>, CaseError> {
        match self.config.windows().await {
            Ok(w) => Ok(w),
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::error!(error = %crate::errors::Chain(&e), "maintenance windows unreadable; none applied");
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The settings to use: a store that cannot be read at all (a hand-edited file with a
    /// typo) gives the defaults with a note, rather than no case at 3 a.m.
    pub(super) async fn settings(
        &self,
        alarm: &Alarm,
    ) -> Result<(AlarmSettings, Vec<String>), CaseError> {
        let record = match self.config.get(&alarm.name).await {
            Ok(r) => r.unwrap_or_default(),
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::error!(error = %crate::errors::Chain(&e), "per-alarm settings unreadable; using the defaults");
                let (s, _) = AlarmSettings::from_record(&Default::default());
                return Ok((
                    s,
                    vec![format!(
                        "settings unreadable ({}); defaults used",
                        crate::errors::Chain(&e)
                    )],
                ));
            }
            Err(e) => return Err(e.into()),
        };
        // The alarm's own tags fill what the stored settings leave open; reading them
        // never blocks a case.
        let mut tag_notes = Vec::new();
        let record = match alarm
            .identity
            .arn
            .as_deref()
            .filter(|a| crate::domain::tags::is_alarm_arn(a))
        {
            Some(arn) => match self.tags.tags(arn).await {
                Ok(tags) => {
                    crate::domain::tags::merge(
                        &record,
                        &crate::domain::tags::record_from_tags(&tags),
                    )
                    .0
                }
                Err(e) => {
                    tracing::warn!(alarm = %alarm.name, error = %e, "alarm tags not read; stored settings and defaults used");
                    tag_notes.push(format!("the alarm's tags could not be read ({e})"));
                    record
                }
            },
            None => record,
        };
        let (settings, mut notes) = AlarmSettings::from_record(&record);
        notes.extend(tag_notes);
        for note in &notes {
            tracing::warn!(alarm = %alarm.name, note = %note, "malformed per-alarm setting");
        }
        Ok((settings, notes))
    }

    /// A stored service or category code AWS Support does not know would get the whole case
    /// refused: the default is used instead, and the case says so. When the desk cannot
    /// say which codes it knows, nothing is changed (CreateCase decides).
    async fn check_codes(&self, settings: &mut AlarmSettings, notes: &mut Vec<String>) {
        if settings.service_code.is_none() && settings.category_code.is_none() {
            return;
        }
        let catalog = match self.desk.services().await {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %crate::errors::Chain(&e), "could not list the support desk's service codes");
                return;
            }
        };
        let service = settings
            .service_code
            .clone()
            .unwrap_or_else(|| self.policy.default_service_code.clone());
        match catalog.check(&service, settings.category_code.as_deref()) {
            Ok(()) => {}
            Err(problem @ CodeProblem::UnknownService { .. }) => {
                notes.push(format!(
                    "{problem}; the default service {} / category {} was used",
                    self.policy.default_service_code, self.policy.default_category_code
                ));
                settings.service_code = None;
                settings.category_code = None;
            }
            Err(problem @ CodeProblem::UnknownCategory { .. }) => {
                notes.push(format!(
                    "{problem}; the default category {} was used",
                    self.policy.default_category_code
                ));
                settings.category_code = None;
                if catalog
                    .check(&service, Some(&self.policy.default_category_code))
                    .is_err()
                {
                    settings.service_code = None;
                }
            }
        }
    }
}
