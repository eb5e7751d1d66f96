//! Where things are kept: the backends behind the case logic's traits. `local` is the
//! embedded default; `aws` is production. Each provides the same three stores.

pub mod aws;
pub mod local;

use std::sync::Arc;

use crate::alarm_config::{AlarmConfigStore, StoreError};
use crate::case::CaseService;
use crate::cli::{BackendKind, Config, Switch};
use crate::desk::SupportDesk;
use crate::ledger::{CaseLedger, LedgerError};
use crate::metrics::{MetricsSink, NoMetrics};

/// The stores one backend provides.
#[derive(Clone)]
pub struct Backend {
    pub config: Arc<dyn AlarmConfigStore>,
    pub ledger: Arc<dyn CaseLedger>,
    pub desk: Arc<dyn SupportDesk>,
    /// Set for the local backend, whose dry-run desk can show the cases it recorded.
    pub local: Option<local::LocalBackend>,
    /// Set for the aws backend.
    pub aws: Option<aws::AwsClients>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{0} (create the tables with `cw-support-api tables create`)")]
    Config(#[from] StoreError),
    #[error("{0}")]
    Settings(String),
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
                    aws: None,
                })
            }
            BackendKind::Aws => {
                let settings = config.aws();
                let clients = aws::AwsClients::load(&settings).await;
                let mut backend = Self::aws(clients, &settings).await?;
                let roles = config.account_roles().map_err(BackendError::Settings)?;
                if !roles.is_empty() {
                    backend.route_accounts(&roles, &settings).await;
                }
                Ok(backend)
            }
        }
    }

    /// The aws backend on given clients (tests point them at local stand-ins).
    pub async fn aws(
        clients: aws::AwsClients,
        settings: &aws::AwsSettings,
    ) -> Result<Self, BackendError> {
        let store = aws::dynamo::DynamoConfigStore::open(
            clients.dynamodb.clone(),
            &settings.config_table,
            settings.config_cache_ttl,
        )
        .await?;
        let ledger = aws::dynamo::DynamoLedger::new(
            clients.dynamodb.clone(),
            &settings.ledger_table,
            settings.handled_ttl,
        );
        Ok(Self {
            config: Arc::new(store),
            ledger: Arc::new(ledger),
            desk: Arc::new(aws::support::AwsSupportDesk::new(clients.support.clone())),
            local: None,
            aws: Some(clients),
        })
    }

    /// Cases of the accounts in `roles` are opened in those accounts, with the role's
    /// credentials (STS AssumeRole, cached until they expire); the others in the service's.
    pub async fn route_accounts(
        &mut self,
        roles: &std::collections::BTreeMap<String, String>,
        settings: &aws::AwsSettings,
    ) {
        let Some(clients) = &self.aws else {
            return;
        };
        let mut by_account = std::collections::BTreeMap::new();
        for (account, role) in roles {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("cw-support-api")
                .configure(&clients.sdk)
                .build()
                .await;
            let support = aws::support_client(&clients.sdk, settings, Some(provider));
            by_account.insert(
                account.clone(),
                Arc::new(aws::support::AwsSupportDesk::new(support)),
            );
        }
        self.desk = Arc::new(aws::support::AccountDesks {
            own: Arc::new(aws::support::AwsSupportDesk::new(clients.support.clone())),
            by_account,
        });
    }

    pub fn case_service(&self, config: &Config) -> CaseService {
        let service = CaseService::new(
            self.config.clone(),
            self.ledger.clone(),
            self.desk.clone(),
            config.policy(),
        );
        use crate::cli::Graphs;
        let grapher: Arc<dyn crate::graph::Grapher> = match (config.graphs, &self.aws) {
            (Graphs::Off, _) => Arc::new(crate::graph::NoGrapher),
            (Graphs::Auto | Graphs::Cloudwatch, Some(clients)) => {
                Arc::new(crate::graph::CloudWatchGrapher {
                    client: clients.cloudwatch.clone(),
                })
            }
            _ => Arc::new(crate::graph::LocalGrapher),
        };
        let service = service.with_grapher(grapher);
        match (config.tags, &self.aws) {
            (Switch::On, Some(clients)) => {
                service.with_tags(Arc::new(crate::tags::CloudWatchTags::new(
                    clients.cloudwatch.clone(),
                    config.config_cache_ttl,
                )))
            }
            _ => service,
        }
    }

    /// Where the server's counters go: CloudWatch on the aws backend unless `METRICS=off`.
    /// The publisher, when there is one, must be closed after the server stops.
    pub fn metrics(
        &self,
        config: &Config,
    ) -> (
        Arc<dyn MetricsSink>,
        Option<Arc<aws::metrics::CloudWatchMetrics>>,
    ) {
        match (&self.aws, config.metrics) {
            (Some(clients), Switch::On) => {
                let publisher = Arc::new(aws::metrics::CloudWatchMetrics::start(
                    clients.cloudwatch.clone(),
                    config.metrics_interval,
                ));
                (publisher.clone(), Some(publisher))
            }
            _ => (Arc::new(NoMetrics), None),
        }
    }
}
