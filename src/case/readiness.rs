//! `check --alarms`: whether the account's CloudWatch alarms are ready to be served (issue
//! 29). Plain code over what AWS said (DescribeAlarms, ListSubscriptionsByTopic) and the
//! stored settings: each alarm that routes to this service, and each setting, is held to
//! what a case needs, and every defect comes with its fix.
//!
//! An alarm routes to this service when one of its alarm actions (actions enabled) is a topic
//! with a confirmed subscription to it. An alarm is meant for it when it routes to it, has
//! settings, or sends to a topic `SNS_TOPIC_ARNS` names; one meant for it that does not route
//! to it is a defect.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// An alarm as DescribeAlarms gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmDefinition {
    pub name: String,
    pub composite: bool,
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
    pub ok_actions: Vec<String>,
    /// A composite alarm's rule, naming its children.
    pub rule: Option<String>,
}

/// A topic named in an alarm's actions, and what its subscriptions say of this service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// A confirmed subscription delivers to this service.
    Yes,
    /// One waits for confirmation: nothing is delivered yet.
    Pending,
    No,
    /// Its subscriptions could not be read (another account's topic, no permission).
    Unknown,
}

/// What the check was given.
pub struct Facts<'a> {
    pub alarms: &'a [AlarmDefinition],
    pub topics: &'a BTreeMap<String, Subscribed>,
    /// `SNS_TOPIC_ARNS`: topics this service hears from, subscribed or not.
    pub allowed_topics: &'a [String],
    /// The alarm names that have settings.
    pub settings: &'a [String],
    /// Where a subscription to this service delivers (the fix names it); none when the
    /// service does not know its own endpoint.
    pub endpoint: Option<&'a Endpoint>,
}

/// Where SNS delivers to this service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https`, `http` or `sqs`.
    pub protocol: String,
    /// The URL of `/serviceme`, or the queue's ARN.
    pub endpoint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    /// Routes here with no OK action here: its case never hears of the recovery.
    NoOkAction,
    /// Routes here with no settings: its cases open with the defaults.
    NoSettings,
    /// Settings for an alarm the account does not have.
    DeadSettings,
    /// Meant for this service, but none of its topics delivers here.
    NoSubscription,
    /// A composite alarm's child pages here on its own as well.
    ChildPages,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub alarm: String,
    pub defect: Defect,
    pub detail: String,
    pub fix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// Alarms DescribeAlarms returned.
    pub alarms: usize,
    /// Those that route to this service.
    pub routed: Vec<String>,
    /// Routed alarms with no defect.
    pub ready: Vec<String>,
    pub findings: Vec<Finding>,
}

/// AWS Health events are served by their event type code, which no alarm is named: their
/// settings are never dead.
fn is_health_code(name: &str) -> bool {
    name.starts_with("AWS_")
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn is_topic(action: &str) -> bool {
    action.starts_with("arn:") && action.split(':').nth(2) == Some("sns")
}

/// The children a composite alarm's rule names: `ALARM(x)`, `OK("x")`,
/// `INSUFFICIENT_DATA(arn:...:alarm:x)`, by name.
pub fn children(rule: &str) -> Vec<String> {
    let mut out = Vec::new();
    for function in ["ALARM(", "OK(", "INSUFFICIENT_DATA("] {
        let mut rest = rule;
        while let Some(at) = rest.find(function) {
            // `OK(` inside `...BACK(` or an alarm name is not a function: it follows the
            // start, a space or an opening parenthesis.
            let boundary = at == 0 || matches!(rest.as_bytes()[at - 1], b' ' | b'(' | b'\t');
            rest = &rest[at + function.len()..];
            let (name, after) = match rest.strip_prefix('"') {
                Some(quoted) => match quoted.find('"') {
                    Some(end) => (&quoted[..end], &quoted[end + 1..]),
                    None => break,
                },
                None => match rest.find(')') {
                    Some(end) => (rest[..end].trim(), &rest[end..]),
                    None => break,
                },
            };
            rest = after;
            if boundary && !name.is_empty() {
                let name = match name.split_once(":alarm:") {
                    Some((_, n)) if name.starts_with("arn:") => n,
                    _ => name,
                };
                out.push(name.to_owned());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

impl Facts<'_> {
    /// A topic that delivers here, or that this service is told to hear from.
    fn ours_or_allowed(&self, topic: &str) -> bool {
        self.allowed_topics.iter().any(|t| t == topic)
            || self.topics.get(topic) == Some(&Subscribed::Yes)
    }

    /// The topics among `actions` that deliver here or are allowed.
    fn ours<'b>(&self, actions: &'b [String]) -> Vec<&'b str> {
        actions
            .iter()
            .map(String::as_str)
            .filter(|a| self.ours_or_allowed(a))
            .collect()
    }

    /// Whether the alarm's ALARM reaches this service.
    fn routes(&self, a: &AlarmDefinition) -> bool {
        a.actions_enabled
            && a.alarm_actions
                .iter()
                .any(|t| self.topics.get(t) == Some(&Subscribed::Yes))
    }

    /// Whether the alarm is one this service serves, or should: it routes here or sends to
    /// a topic `SNS_TOPIC_ARNS` names.
    fn candidate(&self, a: &AlarmDefinition) -> bool {
        self.routes(a)
            || a.alarm_actions
                .iter()
                .any(|t| self.allowed_topics.contains(t))
    }

    fn subscribe_fix(&self, topic: &str) -> String {
        match self.endpoint {
            Some(e) => format!(
                "aws sns subscribe --topic-arn {topic} --protocol {} --notification-endpoint {}",
                e.protocol, e.endpoint
            ),
            None => format!("subscribe this service to {topic} (its /serviceme URL, or its queue)"),
        }
    }

    fn put_command(a: &AlarmDefinition) -> &'static str {
        match a.composite {
            true => "put-composite-alarm",
            false => "put-metric-alarm",
        }
    }
}

fn finding(alarm: &str, defect: Defect, detail: String, fix: String) -> Finding {
    Finding {
        alarm: alarm.to_owned(),
        defect,
        detail,
        fix,
    }
}

/// What an alarm this service serves (or should) lacks: an OK action here, settings, and
/// (composite) children that keep quiet.
fn served_defects(
    facts: &Facts<'_>,
    a: &AlarmDefinition,
    by_name: &BTreeMap<&str, &AlarmDefinition>,
    settings: &BTreeSet<&str>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let ours = facts.ours(&a.alarm_actions);
    if let (true, Some(topic)) = (facts.ours(&a.ok_actions).is_empty(), ours.first()) {
        out.push(finding(
            &a.name,
            Defect::NoOkAction,
            "no OK action to this service: its case is never told the alarm recovered".into(),
            format!(
                "add {topic} to its OK actions (aws cloudwatch {} ... --ok-actions {topic})",
                Facts::put_command(a),
            ),
        ));
    }
    if !settings.contains(a.name.as_str()) {
        out.push(finding(
            &a.name,
            Defect::NoSettings,
            "no settings: its cases open with the defaults (severity, service, category, no runbook)".into(),
            format!("cw-support-api alarms put {:?} --priority normal --action 'what to do'", a.name),
        ));
    }
    let children = match a.composite {
        true => a.rule.as_deref().map(children).unwrap_or_default(),
        false => Vec::new(),
    };
    for child in children {
        if let Some(c) = by_name.get(child.as_str()).filter(|c| facts.routes(c)) {
            out.push(finding(
                &a.name,
                Defect::ChildPages,
                format!("its child {:?} also sends to this service: one incident, two cases", c.name),
                format!(
                    "remove this service's topics from {:?}'s alarm actions, or set the composite's ActionsSuppressor to it",
                    c.name
                ),
            ));
        }
    }
    out
}

/// An alarm meant for this service whose ALARM does not reach it: why, and the fix.
fn undelivered(facts: &Facts<'_>, a: &AlarmDefinition) -> Finding {
    let topics: Vec<&str> = a
        .alarm_actions
        .iter()
        .map(String::as_str)
        .filter(|t| is_topic(t))
        .collect();
    let (detail, fix) = match (a.actions_enabled, topics.first()) {
        (false, _) => (
            "its actions are disabled: nothing reaches this service".into(),
            format!(
                "aws cloudwatch enable-alarm-actions --alarm-names {:?}",
                a.name
            ),
        ),
        (true, None) => (
            "no alarm action sends to an SNS topic".into(),
            format!(
                "add this service's topic to its alarm and OK actions (aws cloudwatch {} ... --alarm-actions TOPIC --ok-actions TOPIC)",
                Facts::put_command(a)
            ),
        ),
        (true, Some(first)) => {
            let said: Vec<String> = topics
                .iter()
                .map(|t| match facts.topics.get(*t) {
                    Some(Subscribed::Pending) => format!("{t} (subscription pending confirmation)"),
                    Some(Subscribed::Unknown) => format!("{t} (subscriptions unreadable)"),
                    _ => format!("{t} (no subscription to this service)"),
                })
                .collect();
            (
                format!(
                    "its topics do not deliver to this service: {}",
                    said.join(", ")
                ),
                facts.subscribe_fix(first),
            )
        }
    };
    finding(&a.name, Defect::NoSubscription, detail, fix)
}

/// Every defect of the alarms and settings, one per alarm and kind, sorted.
pub fn check(facts: &Facts<'_>) -> Readiness {
    let by_name: BTreeMap<&str, &AlarmDefinition> =
        facts.alarms.iter().map(|a| (a.name.as_str(), a)).collect();
    let settings: BTreeSet<&str> = facts.settings.iter().map(String::as_str).collect();
    let mut findings: Vec<Finding> = facts
        .alarms
        .iter()
        .filter(|a| facts.candidate(a))
        .flat_map(|a| served_defects(facts, a, &by_name, &settings))
        .collect();
    findings.extend(
        settings
            .iter()
            .filter(|name| !by_name.contains_key(*name) && !is_health_code(name))
            .map(|name| {
                finding(
                    name,
                    Defect::DeadSettings,
                    "settings for an alarm this account does not have (renamed or deleted)".into(),
                    format!("cw-support-api alarms delete {name:?} (or rename the settings to the alarm's new name)"),
                )
            }),
    );
    // Meant for this service (settings, or an action to a topic it allows) yet not delivered.
    findings.extend(
        facts
            .alarms
            .iter()
            .filter(|a| !facts.routes(a))
            .filter(|a| settings.contains(a.name.as_str()) || facts.candidate(a))
            .map(|a| undelivered(facts, a)),
    );
    findings.sort_by(|a, b| (&a.alarm, a.defect).cmp(&(&b.alarm, b.defect)));
    let mut routed: Vec<String> = facts
        .alarms
        .iter()
        .filter(|a| facts.routes(a))
        .map(|a| a.name.clone())
        .collect();
    routed.sort();
    let troubled: BTreeSet<&str> = findings.iter().map(|f| f.alarm.as_str()).collect();
    let ready = routed
        .iter()
        .filter(|a| !troubled.contains(a.as_str()))
        .cloned()
        .collect();
    Readiness {
        alarms: facts.alarms.len(),
        routed,
        ready,
        findings,
    }
}

#[cfg(test)]
mod tests;
