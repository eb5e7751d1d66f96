//! The AWS backend (`BACKEND=aws`): per-alarm settings in the original service's DynamoDB
//! table, the ledger in a second table, cases at AWS Support, counters in CloudWatch.
//! Credentials, regions and endpoints come from the SDK's standard chain, so
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SUPPORT` work as
//! users expect.

pub mod channels;
pub mod dynamo;
pub mod graph;
pub mod metrics;
pub mod readiness;
pub mod sns;
pub mod sqs;
pub mod support;
pub mod tags;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
// The smithy runtime's error types, which every SDK crate shares.
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

fn timeouts(operation: Duration, attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .operation_timeout(operation)
        .operation_attempt_timeout(attempt)
        .build()
}

/// An AWS Support client: bounded calls, with the SDK's standard retries inside the bound,
/// so a hung endpoint gives a 503 well within REQUEST_TIMEOUT rather than a stuck request
/// (CreateCase and AddCommunicationToCase turn the retries off for themselves). With a
/// role, it signs with that role's credentials (another account's cases).
pub fn support_client(
    sdk: &SdkConfig,
    settings: &AwsSettings,
    role: Option<SharedCredentialsProvider>,
) -> aws_sdk_support::Client {
    let mut conf = aws_sdk_support::config::Builder::from(sdk)
        .region(Region::new(settings.support_region.clone()))
        .retry_config(RetryConfig::standard())
        .timeout_config(timeouts(
            settings.support_timeout * 3,
            settings.support_timeout,
        ));
    if let Some(provider) = role {
        conf = conf.credentials_provider(provider);
    }
    aws_sdk_support::Client::from_conf(conf.build())
}

/// The credentials of the accounts `ACCOUNT_ROLES` maps (each an AssumeRole provider): every
/// call about such an alarm (its case, its graph, its tags) is signed with its account's.
pub type AccountCredentials =
    std::sync::Arc<std::collections::BTreeMap<String, SharedCredentialsProvider>>;

/// The CloudWatch call about an alarm where the alarm lives: in its region, and with its
/// account's credentials when `ACCOUNT_ROLES` maps it. `None`: the client's own will do.
pub fn cloudwatch_override(
    accounts: &AccountCredentials,
    region: Option<&str>,
    account: Option<&str>,
) -> Option<aws_sdk_cloudwatch::config::Builder> {
    let credentials = account.and_then(|a| accounts.get(a)).cloned();
    if region.is_none() && credentials.is_none() {
        return None;
    }
    let mut b = aws_sdk_cloudwatch::config::Builder::default();
    if let Some(r) = region {
        b = b.region(Region::new(r.to_owned()));
    }
    if let Some(c) = credentials {
        b = b.credentials_provider(c);
    }
    Some(b)
}

/// An AWS call that did not give what was needed: the call, what AWS or the SDK said (its
/// code and message, or the transport's chain: [`describe`]), and the SDK's error kept as
/// the source; or an answer without what was needed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{call}: {said}")]
    Call {
        call: String,
        said: String,
        #[source]
        source: crate::errors::BoxError,
    },
    #[error("{0}")]
    Answer(String),
}

impl AwsError {
    /// A failed call, described as the service always has.
    pub fn call<E, R>(call: impl Into<String>, e: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        Self::Call {
            call: call.into(),
            said: describe(&e),
            source: Box::new(e),
        }
    }
}

/// One line naming an SDK error (every SDK crate shares the smithy runtime's error types,
/// so any crate's re-export names them): its code and message, or its kind when it never reached
/// the service (timeout, connection refused).
pub fn describe<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(_) => format!(
            "{}: {}",
            e.code().unwrap_or("unknown error"),
            e.message().unwrap_or("")
        ),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    }
}

/// One loaded AWS configuration (the standard chain: environment, profile, instance role;
/// `AWS_ENDPOINT_URL*`; retries), shared by every client the process makes, whatever the
/// backend: the embedded default can read an SQS queue or tell an SNS topic too.
#[derive(Clone, Debug)]
pub struct AwsConfig(SdkConfig);

impl From<SdkConfig> for AwsConfig {
    /// A configuration made elsewhere (the tests point it at local stand-ins).
    fn from(sdk: SdkConfig) -> Self {
        Self(sdk)
    }
}

impl AwsConfig {
    /// Loads the chain once, in `region` (DBREGION).
    pub async fn load(region: &str) -> Self {
        Self(
            aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(region.to_owned()))
                .load()
                .await,
        )
    }

    /// The SQS queue at `url`, for `consume` and `redrive`.
    pub fn work_queue(&self, url: &str) -> std::sync::Arc<dyn crate::ports::queue::WorkQueue> {
        std::sync::Arc::new(sqs::SqsQueue::new(aws_sdk_sqs::Client::new(&self.0), url))
    }

    /// Text messages of pages, through Amazon SNS.
    pub fn sms_transport(&self) -> std::sync::Arc<dyn crate::ports::pages::Transport> {
        std::sync::Arc::new(channels::SnsSms {
            client: aws_sdk_sns::Client::new(&self.0),
        })
    }

    /// E-mail of pages, through Amazon SES, from `from` (`PAGE_EMAIL_FROM`).
    pub fn email_transport(
        &self,
        from: &str,
    ) -> std::sync::Arc<dyn crate::ports::pages::Transport> {
        std::sync::Arc::new(channels::SesEmail {
            client: aws_sdk_sesv2::Client::new(&self.0),
            from: from.to_owned(),
        })
    }

    /// Voice calls of pages, through AWS End User Messaging, from `from` (`PAGE_VOICE_FROM`).
    pub fn voice_transport(
        &self,
        from: &str,
    ) -> std::sync::Arc<dyn crate::ports::pages::Transport> {
        std::sync::Arc::new(channels::EndUserVoice {
            client: aws_sdk_pinpointsmsvoicev2::Client::new(&self.0),
            from: from.to_owned(),
        })
    }

    /// The SNS topic told what happens to cases (`NOTIFY_TOPIC_ARN`).
    pub fn notice_sink(
        &self,
        topic_arn: &str,
    ) -> std::sync::Arc<dyn crate::ports::notify::NoticeSink> {
        std::sync::Arc::new(sns::SnsSink {
            client: aws_sdk_sns::Client::new(&self.0),
            topic_arn: topic_arn.to_owned(),
        })
    }
}

/// What the AWS backend needs to know.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// Region of both DynamoDB tables (and of CloudWatch metrics).
    pub region: String,
    pub config_table: String,
    pub ledger_table: String,
    /// AWS Support has one endpoint per partition, whatever region the tables are in.
    pub support_region: String,
    pub config_cache_ttl: Duration,
    pub handled_ttl: Duration,
    /// One AWS Support call, at most.
    pub support_timeout: Duration,
}

/// The SDK clients, built from one loaded configuration.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub sdk: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub support: aws_sdk_support::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    /// The mapped accounts' credentials (`ACCOUNT_ROLES`), for the calls about their alarms.
    pub accounts: AccountCredentials,
}

/// DynamoDB's bounds: 3 s an attempt, 10 s in all.
const DYNAMODB_ATTEMPT: Duration = Duration::from_secs(3);
const DYNAMODB_OPERATION: Duration = Duration::from_secs(10);
/// The first retry's backoff ceiling for DynamoDB (full jitter below it, doubled per
/// attempt): botocore's base for DynamoDB. The SDK's default, 1 s, is a long wait inside a
/// request whose sender is waiting for its answer.
const DYNAMODB_BACKOFF: Duration = Duration::from_millis(50);

impl AwsClients {
    /// The account the service's credentials belong to (STS GetCallerIdentity), asked
    /// once at start: with no `SNS_TOPIC_ARNS`, only this account's topics are served.
    pub async fn own_account(&self) -> Result<String, AwsError> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| AwsError::call("GetCallerIdentity", e))?;
        identity
            .account()
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| AwsError::Answer("GetCallerIdentity named no 12-digit account".into()))
    }

    /// Loads credentials and endpoints from the standard chain (environment, profile,
    /// instance role) with the tables' region.
    pub async fn load(settings: &AwsSettings) -> Self {
        Self::from_sdk(AwsConfig::load(&settings.region).await.0, settings)
    }

    /// The configuration these clients were made from.
    pub fn config(&self) -> AwsConfig {
        AwsConfig(self.sdk.clone())
    }

    /// The clients of one loaded configuration, each with its service's bounds.
    pub fn from_sdk(sdk: SdkConfig, settings: &AwsSettings) -> Self {
        // Bounded calls, with the SDK's standard retries (and their retry quota) inside the
        // bound (see `support_client` for AWS Support's), so a hung endpoint gives a 503 well
        // within REQUEST_TIMEOUT rather than a stuck request.
        let support = support_client(&sdk, settings, None);
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard().with_initial_backoff(DYNAMODB_BACKOFF))
            .timeout_config(timeouts(DYNAMODB_OPERATION, DYNAMODB_ATTEMPT))
            .build();
        let sts = aws_sdk_sts::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard())
            // Asked once at start, which must not hang on an unreachable STS.
            .timeout_config(timeouts(Duration::from_secs(5), Duration::from_secs(2)))
            .build();
        Self {
            sts: aws_sdk_sts::Client::from_conf(sts),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            support,
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            sdk,
            accounts: Default::default(),
        }
    }

    /// CloudWatch's picture of an alarm's metric, drawn in the alarm's account and region
    /// (the alarm's own datapoints when CloudWatch cannot draw it).
    pub fn grapher(&self) -> std::sync::Arc<dyn crate::ports::graph::Grapher> {
        std::sync::Arc::new(graph::CloudWatchGrapher {
            client: self.cloudwatch.clone(),
            accounts: self.accounts.clone(),
        })
    }

    /// An alarm's tags from CloudWatch, cached for `ttl`.
    pub fn tags(&self, ttl: Duration) -> tags::CloudWatchTags {
        tags::CloudWatchTags::new(self.cloudwatch.clone(), ttl, self.accounts.clone())
    }

    /// The desks of the accounts `roles` maps (each through its role, STS AssumeRole, with
    /// credentials the SDK caches until they expire) beside the service's own; the same
    /// credentials read those accounts' alarm graphs and tags.
    pub async fn route_accounts(
        &mut self,
        roles: &std::collections::BTreeMap<String, String>,
        settings: &AwsSettings,
    ) -> support::AccountDesks {
        let mut by_account = std::collections::BTreeMap::new();
        let mut credentials = std::collections::BTreeMap::new();
        for (account, role) in roles {
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.clone())
                .session_name("cw-support-api")
                .configure(&self.sdk)
                .build()
                .await;
            let provider = SharedCredentialsProvider::new(provider);
            let client = support_client(&self.sdk, settings, Some(provider.clone()));
            by_account.insert(
                account.clone(),
                std::sync::Arc::new(support::AwsSupportDesk::new(client)),
            );
            credentials.insert(account.clone(), provider);
        }
        self.accounts = std::sync::Arc::new(credentials);
        support::AccountDesks {
            own: std::sync::Arc::new(support::AwsSupportDesk::new(self.support.clone())),
            by_account,
        }
    }

    /// The first four characters of the access key the chain provides (never more: the
    /// rest is not for a terminal), or why there is none.
    pub async fn access_key_prefix(
        &self,
    ) -> Result<String, aws_credential_types::provider::error::CredentialsError> {
        use aws_credential_types::provider::ProvideCredentials;
        use aws_credential_types::provider::error::CredentialsError;
        match self.sdk.credentials_provider() {
            Some(p) => p
                .provide_credentials()
                .await
                .map(|c| c.access_key_id().chars().take(4).collect()),
            None => Err(CredentialsError::not_loaded(
                "no credentials provider configured",
            )),
        }
    }
}
