//! Escalation, as plain code: what a page's due step does (whom to notify, where the page
//! stands next and when), whom a stage's targets name at that instant, and the messages
//! that reach them. The engine ([`super::engine`]) reads what is due from the ledger, asks
//! this, and commits the answer in one transaction.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::oncall::file::OnCall;
use crate::oncall::model::Person;
use crate::oncall::policy::{Policy, Target};
use crate::oncall::resolve::on_duty;

use crate::domain::page::{Channel, PageId, Position};

/// What one due step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Notify a stage's targets now; the next step is `next`, after `wait`.
    Notify {
        targets: Vec<Target>,
        next: Position,
        wait: Duration,
    },
    /// The round's answer time is over and another round follows: nobody is notified now;
    /// its first stage comes after `wait` (that stage's `after`).
    NextRound { next: Position, wait: Duration },
    /// Every round was tried: the page is unanswered.
    Exhausted,
}

/// When a new page's first step is due: the policy's `wait`, then its first stage's `after`
/// (usually both `0m`: at once).
pub fn first_wait(policy: &Policy) -> Duration {
    policy.wait + round_wait(policy)
}

/// When a round's first stage comes: its `after`.
fn round_wait(policy: &Policy) -> Duration {
    policy.stages.first().map_or(Duration::ZERO, |s| s.after)
}

/// The step due at `at` under `policy`.
pub fn step(policy: &Policy, at: Position) -> Step {
    let stages = policy.stages.len() as u32;
    if at.stage < stages {
        let stage = &policy.stages[at.stage as usize];
        let wait = match policy.stages.get(at.stage as usize + 1) {
            Some(next) => next.after,
            None => policy.answer_within,
        };
        return Step::Notify {
            targets: stage.notify.clone(),
            next: Position {
                round: at.round,
                stage: at.stage + 1,
            },
            wait,
        };
    }
    if at.round < policy.repeat {
        return Step::NextRound {
            next: Position {
                round: at.round + 1,
                stage: 0,
            },
            wait: round_wait(policy),
        };
    }
    Step::Exhausted
}

/// The policy a page names: one of the file's, or `person:ID`, a page to one person (whoever
/// owns a page AWS Support is now waiting on): one stage, at once, never repeated.
pub fn policy_named(on_call: &OnCall, id: &str) -> Option<Policy> {
    if let Some(p) = on_call.policies.iter().find(|p| p.id == id) {
        return Some(p.clone());
    }
    let person = id.strip_prefix("person:")?;
    let person = on_call.people.iter().find(|p| p.id.as_str() == person)?;
    Some(Policy {
        id: id.to_owned(),
        repeat: 0,
        stages: vec![crate::oncall::policy::Stage {
            after: Duration::ZERO,
            notify: vec![Target::Person(person.id.clone())],
        }],
        answer_within: crate::oncall::policy::DEFAULT_ANSWER_WITHIN,
        wait: Duration::ZERO,
        resolve_on_ok: true,
        health_grace: Duration::ZERO,
    })
}

/// A person a stage reaches, and through which schedule (none: named directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub person: Person,
    pub schedule: Option<String>,
}

/// Whom `targets` name at `now`: each person once (the first target naming them says
/// through which schedule), and a line for each target that names nobody.
pub fn recipients(
    on_call: &OnCall,
    targets: &[Target],
    now: DateTime<Utc>,
) -> (Vec<Recipient>, Vec<String>) {
    let mut out: Vec<Recipient> = Vec::new();
    let mut problems = Vec::new();
    for target in targets {
        let (person, schedule) = match target {
            Target::Person(id) => (Some(id.clone()), None),
            Target::Schedule(id) => match on_call.schedules.iter().find(|s| &s.id == id) {
                Some(s) => match on_duty(s, now) {
                    Some(d) => (Some(d.person), Some(id.clone())),
                    None => {
                        problems.push(format!("nobody is on duty in schedule {id}"));
                        (None, None)
                    }
                },
                None => {
                    problems.push(format!("no schedule {id} in the on-duty file"));
                    (None, None)
                }
            },
        };
        let Some(id) = person else { continue };
        if out.iter().any(|r| r.person.id == id) {
            continue;
        }
        match on_call.people.iter().find(|p| p.id == id) {
            Some(p) => out.push(Recipient {
                person: p.clone(),
                schedule,
            }),
            None => problems.push(format!("no person {id} in the on-duty file")),
        }
    }
    (out, problems)
}

/// Each way a person can be reached, and the address.
pub fn contacts(person: &Person) -> Vec<(Channel, String)> {
    let mut out = Vec::new();
    if let Some(n) = &person.sms {
        out.push((Channel::Sms, n.as_str().to_owned()));
    }
    if let Some(n) = &person.voice {
        out.push((Channel::Voice, n.as_str().to_owned()));
    }
    if let Some(e) = &person.email {
        out.push((Channel::Email, e.as_str().to_owned()));
    }
    if let Some(w) = &person.webhook {
        out.push((Channel::Webhook, w.clone()));
    }
    out
}

/// A message's idempotency key: the page, round, stage, person and channel. Recorded
/// before the message is sent, so a step committed twice (a crash, two instances) sends
/// it once.
pub fn message_key(page: PageId, at: Position, person: &str, channel: Channel) -> String {
    format!(
        "{page}/{}/{}/{person}/{}",
        at.round,
        at.stage,
        channel.as_str()
    )
}

#[cfg(test)]
mod tests;
