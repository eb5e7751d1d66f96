//! Where things are kept: the backends behind the case logic's traits. `local` is the
//! embedded default; each backend provides the same three stores.

pub mod local;

use std::sync::Arc;

use crate::alarm_config::AlarmConfigStore;
use crate::case::CaseService;
use crate::cli::{BackendKind, Config};
use crate::desk::SupportDesk;
use crate::ledger::{CaseLedger, LedgerError};

/// The stores one backend provides.
#[derive(Clone)]
pub struct Backend {
    pub config: Arc<dyn AlarmConfigStore>,
    pub ledger: Arc<dyn CaseLedger>,
    pub desk: Arc<dyn SupportDesk>,
    /// Set for the local backend, whose dry-run desk can show the cases it recorded.
    pub local: Option<local::LocalBackend>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl Backend {
    pub async fn open(config: &Config) -> Result<Self, BackendError> {
        match config.backend {
            BackendKind::Local => {
                let local = local::LocalBackend::open(&config.data_dir)?;
                Ok(Self {
                    config: local.config.clone(),
                    ledger: local.ledger.clone(),
                    desk: local.desk.clone(),
                    local: Some(local),
                })
            }
        }
    }

    pub fn case_service(&self, config: &Config) -> CaseService {
        CaseService::new(
            self.config.clone(),
            self.ledger.clone(),
            self.desk.clone(),
            config.policy(),
        )
    }
}
