//! The AWS case told who owns the alarm's page: a page's message on the `case` channel is
//! a communication added to the case (`to` is the case id), sent from the page's durable,
//! leased queue like any other message, so it survives a crash and is on the page's
//! timeline if AWS Support refuses it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::page::Channel;
use crate::ports::PortError;
use crate::ports::desk::{CaseBody, Communication, SupportDesk};
use crate::ports::pages::{OutMessage, Transport};

pub struct DeskTransport {
    desk: Arc<dyn SupportDesk>,
}

impl DeskTransport {
    pub fn new(desk: Arc<dyn SupportDesk>) -> Self {
        Self { desk }
    }
}

#[async_trait]
impl Transport for DeskTransport {
    async fn send(&self, m: &OutMessage) -> Result<(), PortError> {
        debug_assert_eq!(m.channel, Channel::Case);
        let comm = Communication {
            communication_body: CaseBody::new(m.text.clone()),
            cc_email_addresses: Vec::new(),
        };
        self.desk
            .add_communication(&m.to, &comm)
            .await
            .map_err(|e| PortError::caused(format!("the support desk refused it: {e}"), e))
    }
}
