//! The traits the case logic works through, and what crosses them: the ledger, the support
//! desk, per-alarm settings, graphs, metrics. `backend::local` and `backend::aws` implement
//! them.

pub mod desk;
pub mod graph;
pub mod ledger;
pub mod metrics;
pub mod notify;
pub mod queue;
pub mod tags;
