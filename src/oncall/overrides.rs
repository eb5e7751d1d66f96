//! Adding an override to the on-duty file: "this person is on duty in this schedule from
//! then until then" (local times in the schedule's zone). For `oncall override` and the
//! console's override form; every mistake is said, and nothing is changed by one.

use super::file::OnCall;
use super::model::{self, ModelError, Override, PersonId};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("no person {0} (see `oncall export`)")]
    NoPerson(String),
    #[error("no schedule {0:?} (see `oncall export`)")]
    NoSchedule(String),
}

impl OnCall {
    pub fn add_override(
        &mut self,
        schedule: &str,
        person: &str,
        from: &str,
        until: &str,
    ) -> Result<(), OverrideError> {
        let person = PersonId::parse(person)?;
        if !self.people.iter().any(|p| p.id == person) {
            return Err(OverrideError::NoPerson(person.to_string()));
        }
        let o = Override::new(person, model::local_time(from)?, model::local_time(until)?)?;
        let Some(s) = self.schedules.iter_mut().find(|s| s.id == schedule) else {
            return Err(OverrideError::NoSchedule(
                schedule.chars().take(80).collect(),
            ));
        };
        s.overrides.push(o);
        Ok(())
    }
}
