//! Where an alarm's tags come from (`domain::tags` reads the settings they give).

use async_trait::async_trait;

use crate::ports::PortError;

/// Where tags come from.
#[async_trait]
pub trait TagSource: Send + Sync {
    /// The alarm's tags (all of them; the caller keeps the `cw-support:` ones).
    async fn tags(&self, alarm_arn: &str) -> Result<Vec<(String, String)>, PortError>;
}

/// No tags (the embedded default, or `TAGS=off`).
pub struct NoTags;

#[async_trait]
impl TagSource for NoTags {
    async fn tags(&self, _alarm_arn: &str) -> Result<Vec<(String, String)>, PortError> {
        Ok(Vec::new())
    }
}
