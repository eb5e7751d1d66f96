//! The AWS backend (`BACKEND=aws`): per-alarm settings in the original service's DynamoDB
//! table, the ledger in a second table, cases at AWS Support, counters in CloudWatch.
//! Credentials, regions and endpoints come from the SDK's standard chain, so
//! `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SUPPORT` work as
//! users expect.

pub mod dynamo;
pub mod metrics;
pub mod support;
pub mod wire;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;

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

/// The SDK clients, built from one loaded configuration, and the `wire` clients of the hot
/// calls on the same endpoints and credentials.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub sdk: SdkConfig,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub support: aws_sdk_support::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    /// The ledger's TransactWriteItems.
    pub dynamodb_wire: wire::Service,
    /// CreateCase.
    pub support_wire: wire::Service,
    /// The mapped accounts' credentials (`ACCOUNT_ROLES`), for the calls about their alarms.
    pub accounts: AccountCredentials,
}

/// DynamoDB's bounds: 3 s an attempt, 10 s in all, the SDK's standard 3 attempts.
pub const DYNAMODB_TIMEOUTS: wire::Timeouts = wire::Timeouts {
    attempt: Duration::from_secs(3),
    operation: Duration::from_secs(10),
    max_attempts: 3,
};

/// AWS Support's: one call at most `support_timeout` (CreateCase is never retried).
pub fn support_timeouts(settings: &AwsSettings) -> wire::Timeouts {
    wire::Timeouts {
        attempt: settings.support_timeout,
        operation: settings.support_timeout * 3,
        max_attempts: 3,
    }
}

/// Credentials for `wire` clients: the SDK configuration's (none configured: every call
/// fails with a clear error, as the SDK's would).
pub fn credentials_of(sdk: &SdkConfig) -> SharedCredentialsProvider {
    sdk.credentials_provider()
        .unwrap_or_else(|| SharedCredentialsProvider::new(wire::NoCredentials))
}

/// A service's endpoint for the region by its SDK crate's own endpoint rules (partition,
/// FIPS, dual stack), as its client would reach it with no endpoint configured. A macro:
/// each SDK crate has its own `Params` and resolver types, with no trait between them.
macro_rules! default_endpoint {
    ($krate:ident, $name:literal, $sdk:expr, $region:expr) => {{
        use $krate::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
        let (sdk, region): (&SdkConfig, &str) = ($sdk, $region);
        let failed = |e: &dyn std::fmt::Display| format!("{} endpoint for {region}: {e}", $name);
        let params = Params::builder()
            .region(region)
            .use_fips(sdk.use_fips().unwrap_or(false))
            .use_dual_stack(sdk.use_dual_stack().unwrap_or(false))
            .build()
            .map_err(|e| failed(&e))?;
        DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .map(|e| e.url().to_owned())
            .map_err(|e| failed(&e))?
    }};
}

impl AwsClients {
    /// The account the service's credentials belong to (STS GetCallerIdentity), asked
    /// once at start: with no `SNS_TOPIC_ARNS`, only this account's topics are served.
    pub async fn own_account(&self) -> Result<String, String> {
        let identity = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| crate::errors::describe(&e))?;
        identity
            .account()
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .map(str::to_owned)
            .ok_or_else(|| "GetCallerIdentity named no 12-digit account".to_owned())
    }

    /// Loads credentials and endpoints from the standard chain (environment, profile,
    /// instance role) with the tables' region.
    pub async fn load(settings: &AwsSettings) -> Result<Self, String> {
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .load()
            .await;
        Self::from_sdk(sdk, settings).await
    }

    pub async fn from_sdk(sdk: SdkConfig, settings: &AwsSettings) -> Result<Self, String> {
        // Bounded calls, with the SDK's standard retries inside the bound (see
        // `support_client` for AWS Support's), so a hung endpoint gives a 503 well within
        // REQUEST_TIMEOUT rather than a stuck request.
        let support = support_client(&sdk, settings, None);
        let t = DYNAMODB_TIMEOUTS;
        let dynamodb = aws_sdk_dynamodb::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard())
            .timeout_config(timeouts(t.operation, t.attempt))
            .build();
        let sts = aws_sdk_sts::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard())
            // Asked once at start, which must not hang on an unreachable STS.
            .timeout_config(timeouts(Duration::from_secs(5), Duration::from_secs(2)))
            .build();
        let http = wire::Http::new();
        let dynamodb_url = match wire::endpoint_url(&sdk, wire::DYNAMODB) {
            Some(url) => url,
            None => default_endpoint!(aws_sdk_dynamodb, "DynamoDB", &sdk, &settings.region),
        };
        let support_url = match wire::endpoint_url(&sdk, wire::SUPPORT) {
            Some(url) => url,
            None => default_endpoint!(
                aws_sdk_support,
                "AWS Support",
                &sdk,
                &settings.support_region
            ),
        };
        let dynamodb_wire = wire::Service::new(
            http.clone(),
            wire::DYNAMODB,
            &dynamodb_url,
            &settings.region,
            credentials_of(&sdk),
            DYNAMODB_TIMEOUTS,
        )?;
        let support_wire = wire::Service::new(
            http,
            wire::SUPPORT,
            &support_url,
            &settings.support_region,
            credentials_of(&sdk),
            support_timeouts(settings),
        )?;
        Ok(Self {
            sts: aws_sdk_sts::Client::from_conf(sts),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
            support,
            cloudwatch: aws_sdk_cloudwatch::Client::new(&sdk),
            sdk,
            dynamodb_wire,
            support_wire,
            accounts: Default::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AwsSettings {
        AwsSettings {
            region: "eu-west-1".into(),
            config_table: "c".into(),
            ledger_table: "l".into(),
            support_region: "us-east-1".into(),
            config_cache_ttl: Duration::from_secs(60),
            handled_ttl: Duration::from_secs(60),
            support_timeout: Duration::from_secs(30),
        }
    }

    /// The hot calls' own client goes where the SDK's clients go: the SDK's endpoint rules
    /// for the region, or the configured endpoint.
    #[tokio::test]
    async fn the_own_clients_endpoints_are_the_sdks() {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .build();
        let c = AwsClients::from_sdk(sdk, &settings()).await.unwrap();
        assert_eq!(
            c.dynamodb_wire.endpoint(),
            "https://dynamodb.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            c.support_wire.endpoint(),
            "https://support.us-east-1.amazonaws.com/"
        );

        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("http://localhost:4566")
            .build();
        let c = AwsClients::from_sdk(sdk, &settings()).await.unwrap();
        assert_eq!(c.dynamodb_wire.endpoint(), "http://localhost:4566/");
        assert_eq!(c.support_wire.endpoint(), "http://localhost:4566/");

        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-1"))
            .endpoint_url("localhost:4566")
            .build();
        let e = AwsClients::from_sdk(sdk, &settings()).await.unwrap_err();
        assert!(e.contains("is not an http(s) URL"), "{e}");
    }
}
