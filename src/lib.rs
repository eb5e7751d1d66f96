//! cw-support-api: turns CloudWatch alarms into AWS Support cases, exactly once per problem.
//!
//! The folders are the architecture (docs/architecture.md): a request comes in through
//! `inbound` (HTTP, the queue consumer, who sent what, SNS signatures), is parsed into the
//! `domain`'s validated types, is decided and carried out by `case`, through the traits of
//! `ports`, which `backend::local` (the embedded default) and `backend::aws` implement;
//! `paging` tells people what happened; `cli` is the command line and the wiring.

pub mod backend;
pub mod case;
pub mod cli;
pub mod console;
pub mod domain;
pub mod errors;
pub mod escape;
pub mod inbound;
pub mod oncall;
pub mod paging;
pub mod ports;
pub mod retry;

pub use inbound::http::{AppState, app};
