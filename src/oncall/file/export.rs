//! Writing the on-duty file back in one canonical form, so `export` then `import` is the
//! identity: every field in a fixed order, defaults left out.

use serde::Serialize;

use super::OnCall;
use crate::oncall::model::{self, ActiveWindow, Person, Schedule};
use crate::oncall::policy::{self, Policy};

#[derive(Serialize)]
struct OutFile {
    person: Vec<OutPerson>,
    schedule: Vec<OutSchedule>,
    policy: Vec<OutPolicy>,
}

#[derive(Serialize)]
struct OutPerson {
    id: String,
    name: String,
    time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sms: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    voice: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    working_hours: Option<String>,
}

#[derive(Serialize)]
struct OutSchedule {
    id: String,
    time_zone: String,
    rotation: Vec<OutRotation>,
    #[serde(rename = "override", skip_serializing_if = "Vec::is_empty")]
    overrides: Vec<OutOverride>,
}

#[derive(Serialize)]
struct OutRotation {
    people: Vec<String>,
    start: String,
    shift: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<String>,
}

#[derive(Serialize)]
struct OutOverride {
    person: String,
    from: String,
    until: String,
}

#[derive(Serialize)]
struct OutPolicy {
    id: String,
    repeat: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    answer_within: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolve_on_ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_grace: Option<String>,
    stage: Vec<OutStage>,
}

#[derive(Serialize)]
struct OutStage {
    after: String,
    notify: Vec<String>,
}

/// Writes the canonical file: what [`import`] reads back as the same thing.
pub fn export(on_call: &OnCall) -> Result<String, toml::ser::Error> {
    let out = OutFile {
        person: on_call.people.iter().map(out_person).collect(),
        schedule: on_call.schedules.iter().map(out_schedule).collect(),
        policy: on_call.policies.iter().map(out_policy).collect(),
    };
    toml::to_string(&out)
}

fn out_person(p: &Person) -> OutPerson {
    OutPerson {
        id: p.id.to_string(),
        name: p.name.clone(),
        time_zone: p.time_zone.name().to_owned(),
        sms: p.sms.as_ref().map(|n| n.as_str().to_owned()),
        voice: p.voice.as_ref().map(|n| n.as_str().to_owned()),
        email: p.email.as_ref().map(|e| e.as_str().to_owned()),
        webhook: p.webhook.clone(),
        working_hours: p.working_hours.as_ref().map(ActiveWindow::text),
    }
}

fn out_schedule(s: &Schedule) -> OutSchedule {
    OutSchedule {
        id: s.id.clone(),
        time_zone: s.time_zone.name().to_owned(),
        rotation: s
            .rotations
            .iter()
            .map(|r| OutRotation {
                people: r.people().iter().map(ToString::to_string).collect(),
                start: model::local_time_text(r.start),
                shift: r.shift.text(),
                active: r.active.as_ref().map(ActiveWindow::text),
            })
            .collect(),
        overrides: s
            .overrides
            .iter()
            .map(|o| OutOverride {
                person: o.person.to_string(),
                from: model::local_time_text(o.from),
                until: model::local_time_text(o.until),
            })
            .collect(),
    }
}

fn out_policy(p: &Policy) -> OutPolicy {
    OutPolicy {
        id: p.id.clone(),
        repeat: p.repeat,
        answer_within: (p.answer_within != policy::DEFAULT_ANSWER_WITHIN)
            .then(|| policy::delay_text(p.answer_within)),
        wait: (!p.wait.is_zero()).then(|| policy::delay_text(p.wait)),
        resolve_on_ok: (!p.resolve_on_ok).then_some(false),
        health_grace: (!p.health_grace.is_zero()).then(|| policy::delay_text(p.health_grace)),
        stage: p
            .stages
            .iter()
            .map(|s| OutStage {
                after: policy::delay_text(s.after),
                notify: s.notify.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    }
}
