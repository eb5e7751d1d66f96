//! Telling people what happened, and getting hold of them: the team's notices (an SNS
//! topic, a Slack-compatible webhook) sent from a durable outbox, and pages (issue 27) that
//! call the person on duty and escalate by policy until someone owns the problem.

pub mod escalation;
pub mod notices;
pub mod page;
pub mod webhook;
