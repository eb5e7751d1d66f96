//! Telling people what happened: today the team's notices (an SNS topic, a Slack-compatible
//! webhook), sent from a durable outbox.

pub mod notices;
pub mod webhook;
