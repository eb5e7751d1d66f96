//! cw-support-api: turns CloudWatch alarms into AWS Support cases, exactly once per problem.
//!
//! A request travels `server` (HTTP edge) → `delivery` (who sent what) → `sns` (signatures)
//! → `alarm` (one validated model) → `case` (the decision) → the backends behind
//! `alarm_config`, `ledger` and `desk`. See docs/architecture.md.

pub mod alarm;
pub mod alarm_config;
pub mod backend;
pub mod case;
pub mod case_event;
pub mod cli;
pub mod commands;
pub mod consumer;
pub mod delivery;
pub mod desk;
pub mod errors;
pub mod escape;
pub mod gate;
pub mod graph;
pub mod ledger;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod outcome;
pub mod server;
pub mod sns;
pub mod startup;
pub mod tags;
pub mod telemetry;

pub use server::{AppState, app};
