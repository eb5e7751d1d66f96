//! An alarm's tags from CloudWatch (ListTagsForResource), read where the alarm lives.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::ports::PortError;
use crate::ports::tags::TagSource;

/// An alarm's tags as read, or why they could not be (the reason, kept in the cache).
type TagsRead = Result<Vec<(String, String)>, String>;

/// CloudWatch ListTagsForResource, cached per ARN (failures too, so a storm of one alarm
/// costs one call); bounded in time so a slow CloudWatch never delays a case for long.
pub struct CloudWatchTags {
    pub client: aws_sdk_cloudwatch::Client,
    pub ttl: Duration,
    /// The mapped accounts' credentials: an alarm's tags are read in its own account.
    pub accounts: super::AccountCredentials,
    cache: Mutex<HashMap<String, (Instant, TagsRead)>>,
}

impl CloudWatchTags {
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        ttl: Duration,
        accounts: super::AccountCredentials,
    ) -> Self {
        Self {
            client,
            ttl,
            accounts,
            cache: Mutex::new(HashMap::new()),
        }
    }
}

/// An alarm ARN's region and account: `arn:<partition>:cloudwatch:<region>:<account>:alarm:...`.
fn region_and_account(arn: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = arn.split(':').skip(3);
    let region = parts.next().filter(|r| !r.is_empty());
    let account = parts.next().filter(|a| !a.is_empty());
    (region, account)
}

impl CloudWatchTags {
    /// The ARN of this account's alarm of this name, metric or composite (DescribeAlarms),
    /// so that its tags can be read; `None` when the account has no such alarm.
    pub async fn alarm_arn(&self, name: &str) -> Result<Option<String>, super::AwsError> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let out = self
            .client
            .describe_alarms()
            .alarm_names(name)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(|e| super::AwsError::call("DescribeAlarms", e))?;
        let metric = out.metric_alarms().iter().filter_map(|a| a.alarm_arn());
        let composite = out.composite_alarms().iter().filter_map(|a| a.alarm_arn());
        Ok(metric.chain(composite).next().map(str::to_owned))
    }
}

#[async_trait]
impl TagSource for CloudWatchTags {
    async fn tags(&self, alarm_arn: &str) -> Result<Vec<(String, String)>, PortError> {
        if let Some((at, cached)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(alarm_arn)
            && at.elapsed() < self.ttl
        {
            return cached.clone().map_err(PortError::from);
        }
        // Read where the alarm lives: its region, its account's credentials.
        let (region, account) = region_and_account(alarm_arn);
        let mut call = self
            .client
            .list_tags_for_resource()
            .resource_arn(alarm_arn)
            .customize();
        if let Some(o) = super::cloudwatch_override(&self.accounts, region, account) {
            call = call.config_override(o);
        }
        let asked = call.send();
        let result = match tokio::time::timeout(Duration::from_secs(3), asked).await {
            Ok(Ok(out)) => Ok(out
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()),
            Ok(Err(e)) => Err(format!("ListTagsForResource: {}", super::describe(&e))),
            Err(_) => Err("ListTagsForResource took longer than 3 s".to_owned()),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(alarm_arn.to_owned(), (Instant::now(), result.clone()));
        result.map_err(PortError::from)
    }
}
