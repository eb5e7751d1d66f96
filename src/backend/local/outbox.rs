//! Where a page's messages go on the embedded default: nowhere outside. Each message's own
//! record in the ledger is the local outbox (`pages show` prints every message, to whom,
//! by which channel, with its text), so a newcomer sees the whole escalation without an
//! account; handing it over is marking it sent.

use async_trait::async_trait;

use crate::ports::PortError;
use crate::ports::pages::{OutMessage, Transport};

pub struct LocalOutbox;

#[async_trait]
impl Transport for LocalOutbox {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        tracing::info!(page = %m.page, person = %m.person, channel = m.channel.as_str(), "page message put in the local outbox (pages show)");
        Ok(())
    }
}
