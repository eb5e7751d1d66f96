//! The on-duty file: people, schedules and escalation policies as TOML, so a team keeps
//! them in git and reviews them. Read as a whole: every problem is reported with its line
//! and field, and nothing is taken unless everything is right. Written back in one canonical
//! form, so `export` then `import` changes nothing.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::domain::settings::EmailAddress;
use crate::oncall::model::{
    self, ActiveWindow, Override, Person, PersonId, PhoneNumber, Rotation, Schedule, ShiftLength,
};
use crate::oncall::policy::{self, MAX_REPEAT, Policy, Stage, Target};

/// Everything the file holds, valid as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OnCall {
    pub people: Vec<Person>,
    pub schedules: Vec<Schedule>,
    pub policies: Vec<Policy>,
}

/// One problem in a file: where, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {field}: {problem}")]
pub struct Problem {
    pub line: usize,
    pub field: String,
    pub problem: String,
}

/// Why a file was refused: not TOML of this shape, or these problems (all of them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("not an on-duty file: {0}")]
    Shape(String),
    #[error("{} problem(s), nothing saved:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

type Text = Spanned<String>;

/// The largest file taken: far beyond any team's people and schedules, and well inside a
/// DynamoDB item (400 KB), where the aws backend keeps it.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    person: Vec<RawPerson>,
    #[serde(default)]
    schedule: Vec<RawSchedule>,
    #[serde(default)]
    policy: Vec<RawPolicy>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPerson {
    id: Text,
    name: Text,
    time_zone: Text,
    sms: Option<Text>,
    voice: Option<Text>,
    email: Option<Text>,
    webhook: Option<Text>,
    working_hours: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    id: Text,
    time_zone: Text,
    #[serde(default)]
    rotation: Vec<RawRotation>,
    #[serde(default, rename = "override")]
    overrides: Vec<RawOverride>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    people: Spanned<Vec<Text>>,
    start: Text,
    shift: Text,
    active: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    person: Text,
    from: Text,
    until: Text,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    id: Text,
    repeat: Option<Spanned<i64>>,
    answer_within: Option<Text>,
    wait: Option<Text>,
    resolve_on_ok: Option<bool>,
    health_grace: Option<Text>,
    #[serde(default)]
    stage: Vec<RawStage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    after: Text,
    notify: Spanned<Vec<Text>>,
}

/// Reads a file; every problem is reported, and nothing is returned unless all is right.
pub fn import(text: &str) -> Result<OnCall, FileError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(FileError::Shape(format!(
            "{} bytes; at most {MAX_FILE_BYTES}",
            text.len()
        )));
    }
    let raw: RawFile = toml::from_str(text).map_err(|e| FileError::Shape(shape(text, &e)))?;
    let mut r = Reader {
        text,
        problems: Vec::new(),
    };
    let people = r.people(&raw.person);
    let schedules = r.schedules(&raw.schedule, &people);
    let policies = r.policies(&raw.policy, &people, &schedules);
    match r.problems.is_empty() {
        true => Ok(OnCall {
            people,
            schedules,
            policies,
        }),
        false => Err(FileError::Invalid(r.problems)),
    }
}

/// toml's own message, on one line with its line number.
fn shape(text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|s| line_of(text, s.start));
    let message = e.message().trim();
    match line {
        Some(l) => format!("line {l}: {message}"),
        None => message.to_owned(),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

struct Reader<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn report(&mut self, at: usize, field: impl Into<String>, problem: impl ToString) {
        self.problems.push(Problem {
            line: line_of(self.text, at),
            field: field.into(),
            problem: problem.to_string(),
        });
    }

    /// The value read by `parse`, or `None` with its problem reported.
    fn read<T, E: ToString>(
        &mut self,
        value: &Text,
        field: String,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Option<T> {
        match parse(value.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.report(value.span().start, field, e);
                None
            }
        }
    }

    fn people(&mut self, raw: &[RawPerson]) -> Vec<Person> {
        let mut out: Vec<Person> = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let at = |f: &str| format!("person[{i}].{f}");
            let id = self.read(&p.id, at("id"), PersonId::parse);
            if let Some(id) = &id
                && out.iter().any(|o| &o.id == id)
            {
                self.report(p.id.span().start, at("id"), format!("{id} is listed twice"));
            }
            let time_zone = self.read(&p.time_zone, at("time_zone"), model::zone);
            let phone = |r: &mut Self, v: &Option<Text>, f: &str| {
                v.as_ref()
                    .and_then(|v| r.read(v, at(f), PhoneNumber::parse))
            };
            let sms = phone(self, &p.sms, "sms");
            let voice = phone(self, &p.voice, "voice");
            let email = p
                .email
                .as_ref()
                .and_then(|v| self.read(v, at("email"), EmailAddress::parse));
            let webhook = p
                .webhook
                .as_ref()
                .and_then(|v| self.read(v, at("webhook"), https_url));
            let working_hours = p
                .working_hours
                .as_ref()
                .and_then(|v| self.read(v, at("working_hours"), ActiveWindow::parse));
            if p.sms.is_none() && p.voice.is_none() && p.email.is_none() && p.webhook.is_none() {
                self.report(
                    p.id.span().start,
                    at("id"),
                    "no way to reach them: give sms, voice, email or webhook",
                );
            }
            if p.name.get_ref().trim().is_empty() {
                self.report(p.name.span().start, at("name"), "empty");
            }
            if let (Some(id), Some(time_zone)) = (id, time_zone) {
                out.push(Person {
                    id,
                    name: p.name.get_ref().trim().to_owned(),
                    time_zone,
                    sms,
                    voice,
                    email,
                    webhook,
                    working_hours,
                });
            }
        }
        out
    }

    /// A person the file lists, or `None` with the problem reported.
    fn known(&mut self, value: &Text, field: String, people: &[Person]) -> Option<PersonId> {
        let id = self.read(value, field.clone(), PersonId::parse)?;
        if people.iter().any(|p| p.id == id) {
            return Some(id);
        }
        self.report(
            value.span().start,
            field,
            format!("{id} is not a [[person]] of this file"),
        );
        None
    }

    fn schedules(&mut self, raw: &[RawSchedule], people: &[Person]) -> Vec<Schedule> {
        let mut out: Vec<Schedule> = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let at = |f: &str| format!("schedule[{i}].{f}");
            let id = self.read(&s.id, at("id"), schedule_id);
            if let Some(id) = &id
                && out.iter().any(|o| &o.id == id)
            {
                self.report(s.id.span().start, at("id"), format!("{id} is listed twice"));
            }
            let time_zone = self.read(&s.time_zone, at("time_zone"), model::zone);
            if s.rotation.is_empty() {
                self.report(
                    s.id.span().start,
                    at("rotation"),
                    "a schedule needs at least one [[schedule.rotation]]",
                );
            }
            let rotations: Vec<Option<Rotation>> = s
                .rotation
                .iter()
                .enumerate()
                .map(|(j, r)| self.rotation(r, &format!("schedule[{i}].rotation[{j}]"), people))
                .collect();
            let overrides: Vec<Option<Override>> = s
                .overrides
                .iter()
                .enumerate()
                .map(|(j, o)| self.an_override(o, &format!("schedule[{i}].override[{j}]"), people))
                .collect();
            if let (Some(id), Some(time_zone)) = (id, time_zone) {
                out.push(Schedule {
                    id,
                    time_zone,
                    rotations: rotations.into_iter().flatten().collect(),
                    overrides: overrides.into_iter().flatten().collect(),
                });
            }
        }
        out
    }

    fn rotation(&mut self, r: &RawRotation, at: &str, people: &[Person]) -> Option<Rotation> {
        let who: Vec<Option<PersonId>> = r
            .people
            .get_ref()
            .iter()
            .enumerate()
            .map(|(k, p)| self.known(p, format!("{at}.people[{k}]"), people))
            .collect();
        let start = self.read(&r.start, format!("{at}.start"), model::local_time);
        let shift = self.read(&r.shift, format!("{at}.shift"), ShiftLength::parse);
        let active = match &r.active {
            Some(w) => Some(self.read(w, format!("{at}.active"), ActiveWindow::parse)?),
            None => None,
        };
        if who.iter().any(Option::is_none) {
            return None;
        }
        let rotation = Rotation::new(who.into_iter().flatten().collect(), start?, shift?, active);
        rotation
            .map_err(|e| self.report(r.people.span().start, format!("{at}.people"), e))
            .ok()
    }

    fn an_override(&mut self, o: &RawOverride, at: &str, people: &[Person]) -> Option<Override> {
        let person = self.known(&o.person, format!("{at}.person"), people);
        let from = self.read(&o.from, format!("{at}.from"), model::local_time);
        let until = self.read(&o.until, format!("{at}.until"), model::local_time);
        Override::new(person?, from?, until?)
            .map_err(|e| self.report(o.until.span().start, format!("{at}.until"), e))
            .ok()
    }

    fn policies(
        &mut self,
        raw: &[RawPolicy],
        people: &[Person],
        schedules: &[Schedule],
    ) -> Vec<Policy> {
        let mut out: Vec<Policy> = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let at = |f: &str| format!("policy[{i}].{f}");
            let id = self.read(&p.id, at("id"), schedule_id);
            if let Some(id) = &id
                && out.iter().any(|o| &o.id == id)
            {
                self.report(p.id.span().start, at("id"), format!("{id} is listed twice"));
            }
            let repeat = self.repeat(p, &at("repeat"));
            let answer_within = self.policy_delay(
                &p.answer_within,
                at("answer_within"),
                policy::DEFAULT_ANSWER_WITHIN,
                false,
            );
            let wait = self.policy_delay(&p.wait, at("wait"), Duration::ZERO, true);
            let grace =
                self.policy_delay(&p.health_grace, at("health_grace"), Duration::ZERO, true);
            if p.stage.is_empty() {
                self.report(
                    p.id.span().start,
                    at("stage"),
                    "a policy needs at least one [[policy.stage]]",
                );
            }
            let stages: Vec<Option<Stage>> = p
                .stage
                .iter()
                .enumerate()
                .map(|(j, s)| self.stage(s, &format!("policy[{i}].stage[{j}]"), people, schedules))
                .collect();
            if let (Some(id), Some(repeat), Some(answer_within), Some(wait), Some(health_grace)) =
                (id, repeat, answer_within, wait, grace)
            {
                out.push(Policy {
                    id,
                    repeat,
                    stages: stages.into_iter().flatten().collect(),
                    answer_within,
                    wait,
                    resolve_on_ok: p.resolve_on_ok.unwrap_or(true),
                    health_grace,
                });
            }
        }
        out
    }

    fn repeat(&mut self, p: &RawPolicy, field: &str) -> Option<u32> {
        let Some(r) = &p.repeat else {
            return Some(0);
        };
        let n = u32::try_from(*r.get_ref())
            .ok()
            .filter(|n| *n <= MAX_REPEAT);
        if n.is_none() {
            self.report(
                r.span().start,
                field.to_owned(),
                format!("{} is not 0 to {MAX_REPEAT}", r.get_ref()),
            );
        }
        n
    }

    /// A policy's delay (`answer_within`, `wait`): its default when not given.
    fn policy_delay(
        &mut self,
        value: &Option<Text>,
        field: String,
        default: Duration,
        zero: bool,
    ) -> Option<Duration> {
        let Some(t) = value else {
            return Some(default);
        };
        self.read(t, field, |t| match zero {
            true => policy::delay(t).ok_or("not a delay (0m, 30s, 5m, 1h; at most a day)"),
            false => policy::delay(t)
                .filter(|d| !d.is_zero())
                .ok_or("not a delay above zero (30s, 5m, 1h; at most a day)"),
        })
    }

    fn stage(
        &mut self,
        s: &RawStage,
        at: &str,
        people: &[Person],
        schedules: &[Schedule],
    ) -> Option<Stage> {
        let after = self.read(&s.after, format!("{at}.after"), |t| {
            policy::delay(t).ok_or("not a delay (0m, 10m, 1h, 90s; at most a day)")
        });
        if s.notify.get_ref().is_empty() {
            self.report(
                s.notify.span().start,
                format!("{at}.notify"),
                "notifies nobody",
            );
        }
        let mut notify = Vec::new();
        for (k, t) in s.notify.get_ref().iter().enumerate() {
            let field = format!("{at}.notify[{k}]");
            let target = match t.get_ref().split_once(':') {
                Some(("person", id)) => PersonId::parse(id)
                    .ok()
                    .filter(|id| people.iter().any(|p| &p.id == id))
                    .map(Target::Person)
                    .ok_or(format!("{id:?} is not a [[person]] of this file")),
                Some(("schedule", id)) => schedules
                    .iter()
                    .any(|s| s.id == id)
                    .then(|| Target::Schedule(id.to_owned()))
                    .ok_or(format!("{id:?} is not a [[schedule]] of this file")),
                _ => Err("expected schedule:ID or person:ID".to_owned()),
            };
            match target {
                Ok(t) => notify.push(t),
                Err(e) => self.report(t.span().start, field, e),
            }
        }
        Some(Stage {
            after: after?,
            notify,
        })
    }
}

fn schedule_id(s: &str) -> Result<String, String> {
    PersonId::parse(s)
        .map(|id| id.to_string())
        .map_err(|_| format!("{s:?} is not an id (a-z, 0-9, - and _, at most 64)"))
}

fn https_url(s: &str) -> Result<String, String> {
    let ok = s.len() <= 2048
        && s.strip_prefix("https://")
            .is_some_and(|rest| !rest.is_empty())
        && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then(|| s.to_owned())
        .ok_or_else(|| format!("{s:?} is not an https URL"))
}

// What `export` writes: the same names, one canonical form.

mod export;
pub use export::export;

#[cfg(test)]
mod tests;
