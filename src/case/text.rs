//! What the case says: the subject and bodies of new cases and communications, built from
//! the alarm and its settings. Plain functions with no I/O, kept apart from the decisions
//! so that the wording can change without touching the logic (and be read in one place).
//! Every body goes through [`CaseBody`], which cuts it to what AWS Support accepts.

use std::time::Duration;

use crate::domain::alarm::Alarm;
use crate::domain::settings::AlarmSettings;
use crate::ports::desk::{CaseBody, Communication, NewCase};
use crate::ports::ledger::OpenCase;

use super::CasePolicy;

/// A new case for an alarm: its settings where set, the service's defaults otherwise.
pub fn new_case(
    alarm: &Alarm,
    settings: &AlarmSettings,
    notes: &[String],
    policy: &CasePolicy,
) -> NewCase {
    NewCase {
        subject: settings
            .subject
            .clone()
            .unwrap_or_else(|| alarm.name.clone()),
        communication_body: CaseBody::new(case_body(alarm, settings, notes)),
        severity_code: settings.priority,
        service_code: settings
            .service_code
            .clone()
            .unwrap_or_else(|| policy.default_service_code.clone()),
        category_code: settings
            .category_code
            .clone()
            .unwrap_or_else(|| policy.default_category_code.clone()),
        cc_email_addresses: settings.cc.clone(),
        language: "en".into(),
        issue_type: "technical".into(),
        account: alarm.identity.account.clone(),
        account_role: alarm
            .identity
            .account
            .as_ref()
            .and_then(|a| policy.account_roles.get(a).cloned()),
        attachments: Vec::new(),
    }
}

/// The storm case, opened by the first alarm past the hour's cap.
pub fn storm_case(alarm: &Alarm, settings: &AlarmSettings, policy: &CasePolicy) -> NewCase {
    let mut case = new_case(alarm, settings, &[], policy);
    case.subject = format!(
        "Alarm storm: more than {} new alarms within an hour",
        policy.storm_cap
    );
    case.communication_body = CaseBody::new(storm_body(alarm, settings, policy.storm_cap, true));
    case
}

/// A communication to an open case, carrying the alarm's reference line and its cc list.
pub fn communication(alarm: &Alarm, settings: &AlarmSettings, body: String) -> Communication {
    Communication {
        communication_body: referenced(alarm, body),
        cc_email_addresses: settings.cc.clone(),
    }
}

/// A communication's body with a first line naming the state change it reports. An
/// AddCommunicationToCase whose outcome was uncertain is sent again only if the case does
/// not already carry that line (the desks check), so a retry never doubles the news.
pub fn referenced(alarm: &Alarm, body: String) -> CaseBody {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(alarm.event_key().as_bytes());
    let tag: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    CaseBody::new(format!("Reference: cwsu-{tag} (cw-support-api)\n{body}"))
}

/// A new case's body with its claim's reference on the first line: a case opened by an
/// instance that stopped before recording it is found by that line.
pub fn claimed(reference: &str, case: &NewCase) -> CaseBody {
    CaseBody::new(format!(
        "Reference: {reference} (cw-support-api)\n{}",
        case.communication_body
    ))
}

/// A duration as people write it: `2d`, `1h`, `30m`, `45s`, `250ms`.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_millis() != 0 {
        return format!("{}ms", d.as_millis());
    }
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

pub fn inhibited_body(alarm: &Alarm, parent: &OpenCase) -> String {
    format!(
        "{} is also in ALARM (it is inhibited by {}, whose case this is).\n\n{}",
        alarm.name,
        parent.alarm_name,
        details(alarm)
    )
}

pub fn group_body(alarm: &Alarm, group: &str) -> String {
    format!(
        "{} also in ALARM (group {group}).\n\n{}",
        alarm.name,
        details(alarm)
    )
}

pub fn flapping_body(cycles: usize, window: Duration, body: String) -> String {
    format!(
        "The alarm is flapping: {cycles} times ALARM again after a recovery within {}. \
         Further cycles are counted on this case, not sent, until it settles.\n\n{body}",
        humantime(window)
    )
}

pub fn storm_body(alarm: &Alarm, settings: &AlarmSettings, cap: usize, first: bool) -> String {
    let mut s = if first {
        format!(
            "More than {cap} alarms needed a case within an hour. To stay within AWS Support's \
             case limits, further new alarms are added to this case instead of opening their own.\n\n"
        )
    } else {
        "Another alarm in the storm:\n\n".to_owned()
    };
    s.push_str(&details(alarm));
    s.push_str("\nAction requested:\n");
    s.push_str(&settings.action.render());
    s.push('\n');
    s
}

fn details(alarm: &Alarm) -> String {
    let mut s = String::new();
    let mut line = |k: &str, v: &str| s.push_str(&format!("{k}: {v}\n"));
    line("Alarm", &alarm.name);
    line(
        "Description",
        alarm.description.as_deref().unwrap_or("(none)"),
    );
    match alarm.previous_state {
        Some(prev) => line("State", &format!("{} (was {prev})", alarm.state)),
        None => line("State", alarm.state.as_str()),
    }
    if let Some(reason) = &alarm.reason {
        line("Reason", reason);
    }
    line("Time", &alarm.state_change_time.raw);
    line(
        "Account",
        alarm.identity.account.as_deref().unwrap_or("(unknown)"),
    );
    line(
        "Region",
        alarm.identity.region.as_deref().unwrap_or("(unknown)"),
    );
    if let Some(arn) = &alarm.identity.arn {
        line("Alarm ARN", arn);
    }
    line("Trigger", &alarm.trigger);
    s
}

fn raw_json(alarm: &Alarm) -> String {
    serde_json::to_string_pretty(&alarm.raw).unwrap_or_else(|_| alarm.raw.to_string())
}

/// The body of a new case: what happened, what to do, and the alarm as received (last, so
/// that truncation eats the raw JSON before anything a person wrote).
fn case_body(alarm: &Alarm, settings: &AlarmSettings, notes: &[String]) -> String {
    let mut s = String::from("An alarm raised this case automatically (cw-support-api).\n\n");
    s.push_str(&details(alarm));
    s.push_str("\nAction requested:\n");
    s.push_str(&settings.action.render());
    s.push('\n');
    if !notes.is_empty() {
        s.push_str("\nConfiguration notes (defaults used):\n");
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s.push_str("\nRaw alarm:\n");
    s.push_str(&raw_json(alarm));
    s
}

pub fn update_body(alarm: &Alarm, open: &OpenCase) -> String {
    let mut s = format!(
        "It's happened again! The alarm {} went to ALARM at {}.\n",
        alarm.name, alarm.state_change_time.raw
    );
    if open.coalesced > 0 {
        s.push_str(&format!(
            "{} further notification(s) arrived since the last update to this case.\n",
            open.coalesced
        ));
    }
    s.push('\n');
    s.push_str(&details(alarm));
    s.push_str("\nRaw alarm:\n");
    s.push_str(&raw_json(alarm));
    s
}

pub fn recovery_body(alarm: &Alarm, resolving: bool) -> String {
    let mut s = format!(
        "Recovered: the alarm {} returned to OK at {}.\n",
        alarm.name, alarm.state_change_time.raw
    );
    if let Some(reason) = &alarm.reason {
        s.push_str(&format!("Reason: {reason}\n"));
    }
    s.push_str(if resolving {
        "This case is being resolved automatically.\n"
    } else {
        "The case stays open until you confirm the problem is solved.\n"
    });
    s
}

/// The note a new case gets when the desk refused the alarm's own codes and it was opened
/// with the defaults.
pub fn refused_codes_body(case: &NewCase, reason: &str) -> CaseBody {
    CaseBody::new(format!(
        "Note: AWS Support refused service {} / category {} ({reason}); opened with \
         the defaults.\n\n{}",
        case.service_code, case.category_code, case.communication_body
    ))
}

/// The graph attached to a new case, or why there is none.
pub fn with_graph_line(body: &CaseBody, line: &str) -> CaseBody {
    CaseBody::new(format!("{body}\n\n{line}"))
}
