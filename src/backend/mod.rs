//! Where things are kept: the backends behind the case logic's traits. `local` is the
//! embedded default; `aws` is production. Each provides the same three stores. A backend
//! is opened from its own [`BackendSettings`]; assembling the application around it is
//! `startup`'s job.

pub mod aws;
pub mod local;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::domain::settings::{AlarmConfigStore, StoreError};
use crate::ports::desk::SupportDesk;
use crate::ports::ledger::{CaseLedger, LedgerError};

/// Which backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Embedded: a settings file, a SQLite ledger and a dry-run support desk in DATA_DIR.
    Local,
    /// Production: DynamoDB (DBTABLE, LEDGER_TABLE), AWS Support and CloudWatch.
    Aws,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Aws => "aws",
        }
    }
}

/// What opening a backend needs to know.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    pub kind: BackendKind,
    /// The local backend's directory.
    pub data_dir: PathBuf,
    pub aws: aws::AwsSettings,
    /// Account id → the role assumed to open that account's cases (aws backend).
    pub account_roles: BTreeMap<String, String>,
}

/// The stores one backend provides, and the backend they come from.
#[derive(Clone)]
pub struct Backend {
    pub config: Arc<dyn AlarmConfigStore>,
    pub ledger: Arc<dyn CaseLedger>,
    /// The notices waiting to be sent, in the ledger's own store.
    pub outbox: Arc<dyn crate::ports::notify::Outbox>,
    pub desk: Arc<dyn SupportDesk>,
    /// Pages, in the ledger's store; `None` where the backend keeps no pages yet. (Where
    /// their messages go is the wiring's choice: `startup`.)
    pub pages: Option<Arc<dyn crate::ports::pages::PageLedger>>,
    /// The console's sessions and audit log, in the ledger's store.
    pub console: Arc<dyn crate::ports::console::ConsoleStore>,
    pub origin: Origin,
}

/// The backend behind the stores, for what only it offers (the dry-run desk's records, the
/// AWS clients).
#[derive(Clone)]
pub enum Origin {
    Local(local::LocalBackend),
    Aws(Box<aws::AwsClients>),
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0} (create the tables with `cw-support-api tables create`)")]
    Config(#[from] StoreError),
}

impl From<local::LocalBackend> for Backend {
    fn from(local: local::LocalBackend) -> Self {
        Self {
            config: local.config.clone(),
            ledger: local.ledger.clone(),
            outbox: local.ledger.clone(),
            desk: local.desk.clone(),
            pages: Some(local.ledger.clone()),
            console: local.ledger.clone(),
            origin: Origin::Local(local),
        }
    }
}

impl Backend {
    pub async fn open(settings: &BackendSettings) -> Result<Self, BackendError> {
        match settings.kind {
            BackendKind::Local => Ok(local::LocalBackend::open(&settings.data_dir)?.into()),
            BackendKind::Aws => {
                let clients = aws::AwsClients::load(&settings.aws).await;
                let mut backend = Self::on_aws(clients, &settings.aws).await?;
                if !settings.account_roles.is_empty() {
                    backend
                        .route_accounts(&settings.account_roles, &settings.aws)
                        .await;
                }
                Ok(backend)
            }
        }
    }

    /// The aws backend on given clients (tests point them at local stand-ins).
    pub async fn on_aws(
        clients: aws::AwsClients,
        settings: &aws::AwsSettings,
    ) -> Result<Self, BackendError> {
        let store = aws::dynamo::DynamoConfigStore::open(
            clients.dynamodb.clone(),
            &settings.config_table,
            settings.config_cache_ttl,
        )
        .await?;
        let ledger = Arc::new(aws::dynamo::DynamoLedger::on(&clients, settings));
        Ok(Self {
            config: Arc::new(store),
            ledger: ledger.clone(),
            outbox: ledger.clone(),
            desk: Arc::new(aws::support::AwsSupportDesk::new(clients.support.clone())),
            pages: Some(ledger.clone()),
            console: ledger.clone(),
            origin: Origin::Aws(Box::new(clients)),
        })
    }

    /// The local backend, when this is it.
    pub fn local(&self) -> Option<&local::LocalBackend> {
        match &self.origin {
            Origin::Local(l) => Some(l),
            Origin::Aws(_) => None,
        }
    }

    /// The AWS clients, on the aws backend.
    pub fn aws(&self) -> Option<&aws::AwsClients> {
        match &self.origin {
            Origin::Aws(c) => Some(c),
            Origin::Local(_) => None,
        }
    }

    /// Cases of the accounts in `roles` are opened in those accounts, with the role's
    /// credentials (STS AssumeRole, cached until they expire); the others in the service's.
    pub async fn route_accounts(
        &mut self,
        roles: &BTreeMap<String, String>,
        settings: &aws::AwsSettings,
    ) {
        let Origin::Aws(clients) = &mut self.origin else {
            return;
        };
        self.desk = Arc::new(clients.route_accounts(roles, settings).await);
    }
}
