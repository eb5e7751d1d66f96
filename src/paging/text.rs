//! What pages say: the one-line summary of an alarm, each message, and the timeline's
//! lines. Alarm names and reasons come from outside: control characters are removed and
//! the length bounded before they go into a text message, a call or an e-mail.

use crate::domain::alarm::Alarm;
use crate::escape::printable;
use crate::ports::pages::DuePage;

use super::escalation::Recipient;
use crate::domain::page::{Channel, PageId, Position};

/// The most characters of an alarm's summary a message carries: a text message stays a
/// few segments long.
const SUMMARY_CHARS: usize = 160;

fn bounded(s: &str, n: usize) -> String {
    let clean = printable(s);
    match clean.chars().count() > n {
        true => clean.chars().take(n).collect::<String>() + "…",
        false => clean.into_owned(),
    }
}

/// The full stop after a summary, unless it ends with one (or is cut short).
fn stop(s: &str) -> &'static str {
    match s.ends_with(['.', '…', '!', '?']) {
        true => "",
        false => ".",
    }
}

/// One line saying what is wrong: the alarm's name and, when it says, why.
pub fn summary(alarm: &Alarm) -> String {
    let text = match alarm
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        Some(reason) => format!("{} is in ALARM: {reason}", alarm.name),
        None => format!("{} is in ALARM", alarm.name),
    };
    bounded(&text, SUMMARY_CHARS)
}

/// A summary with what AWS Health reports first (so a bounded message never cuts it off).
pub fn with_health(summary: &str, health: &str) -> String {
    format!("{health}. {summary}")
}

/// The message a stage sends, with its acknowledgement link where the channel shows one.
pub fn page_message(page: &DuePage, channel: Channel, link: Option<&str>) -> String {
    let summary = bounded(&page.summary, SUMMARY_CHARS);
    let id = page.id;
    match channel {
        // Spoken slowly: the number digit by digit.
        Channel::Voice => format!(
            "This is the on-duty pager. {summary}{} Page number {}.",
            stop(&summary),
            id.to_string()
                .chars()
                .map(String::from)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        _ => match link {
            Some(link) => format!(
                "Page {id}: {summary}{} Reply ACK {id} if you have it, or open {link}",
                stop(&summary)
            ),
            None => format!(
                "Page {id}: {summary}{} Reply ACK {id} if you have it \
                 (or: cw-support-api pages ack {id} --by YOU).",
                stop(&summary)
            ),
        },
    }
}

pub fn acknowledged(page: PageId, alarm: &str, by: &str) -> String {
    format!(
        "Page {page} ({}): {} has it. Nobody else is called.",
        bounded(alarm, SUMMARY_CHARS),
        bounded(by, 64)
    )
}

/// What the AWS case is told when someone acknowledges its alarm's page.
pub fn case_owner(
    page: PageId,
    by: &str,
    name: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> String {
    let who = match name {
        Some(n) => format!("{} ({})", bounded(n, 64), bounded(by, 64)),
        None => bounded(by, 64),
    };
    format!(
        "{who} acknowledged the on-duty page {page} at {} and is working on this alarm; \
         nobody else is being called.",
        at.format("%Y-%m-%d %H:%M UTC")
    )
}

/// What a page says when AWS Support waits for the customer.
pub fn aws_waiting(shown: &str, alarm: &str) -> String {
    bounded(
        &format!("AWS Support replied on case {shown} ({alarm}) and is waiting for you"),
        SUMMARY_CHARS,
    )
}

pub fn resolved(page: PageId, alarm: &str, owner: Option<&str>) -> String {
    let owner = owner
        .map(|o| format!(" (owner: {})", bounded(o, 64)))
        .unwrap_or_default();
    format!(
        "Page {page} ({}) is resolved{owner}.",
        bounded(alarm, SUMMARY_CHARS)
    )
}

pub fn no_policy(policy: &str) -> String {
    match policy {
        "" => "no escalation policy: set PAGE_POLICY, or `alarms put NAME --policy ID`; \
               nobody can be paged: unanswered"
            .into(),
        p => format!(
            "no policy {} in the on-duty file: nobody can be paged: unanswered",
            bounded(p, 64)
        ),
    }
}

/// The timeline's line for a stage: whom it reached, and how.
pub fn stage_line(at: Position, reached: &[Recipient]) -> String {
    let whom: Vec<String> = reached
        .iter()
        .map(|r| {
            let via: Vec<&str> = super::escalation::contacts(&r.person)
                .iter()
                .map(|(c, _)| c.as_str())
                .collect();
            match &r.schedule {
                Some(s) => format!("{} (on duty in {s}) by {}", r.person.id, via.join(", ")),
                None => format!("{} by {}", r.person.id, via.join(", ")),
            }
        })
        .collect();
    let who = match whom.is_empty() {
        true => "nobody".to_owned(),
        false => whom.join("; "),
    };
    format!(
        "stage {} of round {}: paging {who}",
        at.stage + 1,
        at.round + 1
    )
}
