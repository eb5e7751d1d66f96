//! Evidence for the support engineer: the graph of what a metric alarm watched, attached to
//! the case. The case logic holds a [`Grapher`]; the embedded default draws the alarm's own
//! datapoints (`backend::local::graph`), the aws backend asks CloudWatch for the real metric
//! (`backend::aws::graph`). Only a CloudWatch metric alarm carries what is needed; for any
//! other alarm the reason there is no graph is said instead (and written into the case).

use crate::domain::alarm::Alarm;
use crate::ports::PortError;

/// A file to attach to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub data: Vec<u8>,
}

/// Draws an alarm's graph: the trait the case logic holds, so the aws backend can ask
/// CloudWatch for the real metric while the embedded default draws the alarm's own data.
#[async_trait::async_trait]
pub trait Grapher: Send + Sync {
    /// The graph, or why there is none. Never blocks a case: the caller writes the reason
    /// into the case instead.
    async fn graph(&self, alarm: &Alarm) -> Result<Attachment, PortError>;
}

/// Draws nothing (`GRAPHS=off`).
pub struct NoGrapher;

#[async_trait::async_trait]
impl Grapher for NoGrapher {
    async fn graph(&self, _alarm: &Alarm) -> Result<Attachment, PortError> {
        Err("graphs are off (GRAPHS=off)".into())
    }
}
