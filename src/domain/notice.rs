//! What the team is told about a case: opened, AWS replied, resolved, could not become a
//! case, folded into the storm case; and the one short message each becomes, escaped for
//! where it goes.

use serde::{Deserialize, Serialize};

/// One thing to tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Notice {
    Opened {
        case_id: String,
        subject: String,
        severity: String,
        alarm: String,
    },
    Replied {
        case_id: String,
        display_id: Option<String>,
        /// The first lines of AWS's communication, when the desk can say.
        excerpt: Option<String>,
    },
    Resolved {
        case_id: String,
        alarm: String,
    },
    Failed {
        alarm: String,
        reason: String,
    },
    /// A page went through every stage of its policy and nobody acknowledged it.
    Unanswered {
        page: u64,
        alarm: String,
        summary: String,
    },
    Folded {
        case_id: String,
        alarm: String,
    },
    /// Several `Folded` notices about one storm case, told as one message: made when they are
    /// sent together, never queued. A storm of thousands of alarms is a few messages, not
    /// thousands (a Slack webhook takes about one a second).
    Storm {
        case_id: String,
        /// The first [`STORM_NAMES`] alarms, in the order they were folded.
        alarms: Vec<String>,
        /// How many more were folded in the same message.
        more: usize,
    },
}

/// Alarm names a storm message lists before "and N more".
pub const STORM_NAMES: usize = 20;

/// Where a case is seen in the AWS Support Center.
pub fn case_link(case_id: &str, display_id: Option<&str>) -> String {
    match display_id {
        Some(d) => format!(
            "https://support.console.aws.amazon.com/support/home#/case/?displayId={d}&language=en"
        ),
        None => {
            format!("https://support.console.aws.amazon.com/support/home#/case/?caseId={case_id}")
        }
    }
}

impl Notice {
    /// The case it is about, if any.
    pub fn case_id(&self) -> Option<&str> {
        match self {
            Self::Opened { case_id, .. }
            | Self::Replied { case_id, .. }
            | Self::Resolved { case_id, .. }
            | Self::Folded { case_id, .. }
            | Self::Storm { case_id, .. } => Some(case_id),
            Self::Failed { .. } | Self::Unanswered { .. } => None,
        }
    }

    /// One short message, the same for every sink, as plain text (control characters in the
    /// payload's parts removed).
    pub fn text(&self) -> String {
        self.render(&|s| crate::escape::printable(s).into_owned())
    }

    /// The message for a Slack-compatible webhook: the payload's parts (and the link's `&`)
    /// escaped for mrkdwn, the message's own formatting (the quote's `>`) kept.
    pub fn slack_text(&self) -> String {
        self.render(&crate::escape::slack)
    }

    /// The message, with every part that comes from outside (names, subjects, AWS's reply,
    /// reasons, ids, links) passed through `esc`.
    fn render(&self, esc: &dyn Fn(&str) -> String) -> String {
        let link = |case_id: &str, display_id: Option<&str>| esc(&case_link(case_id, display_id));
        match self {
            Self::Opened {
                case_id,
                subject,
                severity,
                alarm,
            } => format!(
                "AWS Support case opened for alarm {}: \"{}\" (severity {}). {}",
                esc(alarm),
                esc(subject),
                esc(severity),
                link(case_id, None)
            ),
            Self::Replied {
                case_id,
                display_id,
                excerpt,
            } => {
                let mut t = format!(
                    "AWS Support replied on case {}. {}",
                    esc(display_id.as_deref().unwrap_or(case_id)),
                    link(case_id, display_id.as_deref())
                );
                if let Some(e) = excerpt {
                    t.push_str("\n> ");
                    t.push_str(&esc(e).replace('\n', "\n> "));
                }
                t
            }
            Self::Resolved { case_id, alarm } => format!(
                "AWS Support case {} (alarm {}) was resolved; the next alarm opens a new case. {}",
                esc(case_id),
                esc(alarm),
                link(case_id, None)
            ),
            Self::Failed { alarm, reason } => format!(
                "Alarm {} could not become an AWS Support case: {}. The message stays \
                 in the dead-letter queue until redriven.",
                esc(alarm),
                esc(reason)
            ),
            Self::Unanswered {
                page,
                alarm,
                summary,
            } => format!(
                "Nobody acknowledged page {page} for alarm {} ({}): every stage of its \
                 policy was tried. Someone must look at it now: cw-support-api pages show {page}",
                esc(alarm),
                esc(summary)
            ),
            Self::Folded { case_id, alarm } => format!(
                "Alarm storm: {} was added to the storm case {} instead of opening its own. {}",
                esc(alarm),
                esc(case_id),
                link(case_id, None)
            ),
            Self::Storm {
                case_id,
                alarms,
                more,
            } => {
                let names: Vec<String> = alarms.iter().map(|a| esc(a)).collect();
                let tail = match more {
                    0 => String::new(),
                    n => format!(" and {n} more"),
                };
                format!(
                    "Alarm storm: {} alarms were added to the storm case {} instead of opening \
                     their own: {}{tail}. {}",
                    alarms.len() + more,
                    esc(case_id),
                    names.join(", "),
                    link(case_id, None)
                )
            }
        }
    }
}

/// The first few lines of a communication, for a notice.
pub fn excerpt(body: &str) -> String {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    let mut text = lines.join("\n");
    if text.chars().count() > 300 {
        text = text.chars().take(300).collect::<String>() + "…";
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_say_what_happened_with_a_link() {
        let n = Notice::Opened {
            case_id: "case-1".into(),
            subject: "prod-db-cpu".into(),
            severity: "high".into(),
            alarm: "prod-db-cpu".into(),
        };
        assert_eq!(
            n.text(),
            "AWS Support case opened for alarm prod-db-cpu: \"prod-db-cpu\" (severity high). \
             https://support.console.aws.amazon.com/support/home#/case/?caseId=case-1"
        );
        let r = Notice::Replied {
            case_id: "case-1".into(),
            display_id: Some("1234563851".into()),
            excerpt: Some(excerpt("Hello,\n\nwe are looking into it.\nline 3\nline 4")),
        };
        assert!(r.text().contains("displayId=1234563851"), "{}", r.text());
        assert!(
            r.text()
                .ends_with("> Hello,\n> we are looking into it.\n> line 3"),
            "{}",
            r.text()
        );
    }
}
