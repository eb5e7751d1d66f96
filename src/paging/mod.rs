//! Telling people what happened, and getting hold of them: the team's notices (an SNS
//! topic, a Slack-compatible webhook) sent from a durable outbox, and pages (issue 27) that
//! call the person on duty and escalate by policy until someone owns the problem.
//!
//! The vocabulary is [`crate::domain::page`]; `escalation` decides each step as plain code, `engine` runs
//! them over the page ledger ([`crate::ports::pages`]), `text` says what messages say, and
//! `callouts` turns the record of who was called into the month's report.

pub mod callouts;
pub mod engine;
pub mod escalation;
pub mod links;
pub mod notices;
pub mod replies;
pub mod text;
pub mod transport;
pub mod twilio;
pub mod webhook;
