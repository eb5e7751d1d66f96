//! Settings from the alarm's own tags, for teams that define alarms in CloudFormation or
//! Terraform and want the case settings beside them: `cw-support:priority`, `cw-support:cc`,
//! `cw-support:service-code`, `cw-support:category-code`, `cw-support:group`,
//! `cw-support:enabled`. Read with CloudWatch ListTagsForResource, cached per alarm ARN; a
//! failure to read them never blocks a case (the stored settings and defaults apply).
//!
//! Precedence, each field on its own: stored settings, then tags, then the defaults.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::domain::settings::{AlarmConfigRecord, CcField};

pub const TAG_PREFIX: &str = "cw-support:";

/// An alarm's tags as read, or why they could not be.
type TagsRead = Result<Vec<(String, String)>, String>;

/// Where tags come from.
#[async_trait]
pub trait TagSource: Send + Sync {
    /// The alarm's tags (all of them; the caller keeps the `cw-support:` ones).
    async fn tags(&self, alarm_arn: &str) -> Result<Vec<(String, String)>, String>;
}

/// No tags (the embedded default, or `TAGS=off`).
pub struct NoTags;

#[async_trait]
impl TagSource for NoTags {
    async fn tags(&self, _alarm_arn: &str) -> Result<Vec<(String, String)>, String> {
        Ok(Vec::new())
    }
}

/// CloudWatch ListTagsForResource, cached per ARN (failures too, so a storm of one alarm
/// costs one call); bounded in time so a slow CloudWatch never delays a case for long.
pub struct CloudWatchTags {
    pub client: aws_sdk_cloudwatch::Client,
    pub ttl: Duration,
    /// The mapped accounts' credentials: an alarm's tags are read in its own account.
    pub accounts: crate::backend::aws::AccountCredentials,
    cache: Mutex<HashMap<String, (Instant, TagsRead)>>,
}

impl CloudWatchTags {
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        ttl: Duration,
        accounts: crate::backend::aws::AccountCredentials,
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
    pub async fn alarm_arn(&self, name: &str) -> Result<Option<String>, String> {
        use aws_sdk_cloudwatch::types::AlarmType;
        let out = self
            .client
            .describe_alarms()
            .alarm_names(name)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(|e| format!("DescribeAlarms: {}", crate::errors::describe(&e)))?;
        let metric = out.metric_alarms().iter().filter_map(|a| a.alarm_arn());
        let composite = out.composite_alarms().iter().filter_map(|a| a.alarm_arn());
        Ok(metric.chain(composite).next().map(str::to_owned))
    }
}

#[async_trait]
impl TagSource for CloudWatchTags {
    async fn tags(&self, alarm_arn: &str) -> Result<Vec<(String, String)>, String> {
        if let Some((at, cached)) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(alarm_arn)
            && at.elapsed() < self.ttl
        {
            return cached.clone();
        }
        // Read where the alarm lives: its region, its account's credentials.
        let (region, account) = region_and_account(alarm_arn);
        let mut call = self
            .client
            .list_tags_for_resource()
            .resource_arn(alarm_arn)
            .customize();
        if let Some(o) = crate::backend::aws::cloudwatch_override(&self.accounts, region, account) {
            call = call.config_override(o);
        }
        let asked = call.send();
        let result = match tokio::time::timeout(Duration::from_secs(3), asked).await {
            Ok(Ok(out)) => Ok(out
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect()),
            Ok(Err(e)) => Err(format!(
                "ListTagsForResource: {}",
                crate::errors::describe(&e)
            )),
            Err(_) => Err("ListTagsForResource took longer than 3 s".to_owned()),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(alarm_arn.to_owned(), (Instant::now(), result.clone()));
        result
    }
}

/// The settings the `cw-support:` tags give.
pub fn record_from_tags(tags: &[(String, String)]) -> AlarmConfigRecord {
    let mut r = AlarmConfigRecord::default();
    for (key, value) in tags {
        let Some(field) = key.strip_prefix(TAG_PREFIX) else {
            continue;
        };
        let value = value.trim().to_owned();
        match field {
            "priority" => r.priority = Some(value.to_lowercase()),
            // Tag values cannot hold commas everywhere: spaces separate addresses too.
            "cc" => {
                let many: Vec<String> = value
                    .split([',', ' ', ';'])
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect();
                r.ccemail = Some(CcField::Many(many));
            }
            "service-code" => r.service_code = Some(value),
            "category-code" => r.category_code = Some(value),
            "group" => r.group = Some(value),
            "enabled" => r.enabled = Some(!matches!(value.as_str(), "false" | "0" | "no" | "off")),
            _ => {}
        }
    }
    r
}

/// Stored settings, then tags, then defaults, each field on its own; and where each field
/// came from (`stored`, `tag` or `default`).
pub fn merge(
    stored: &AlarmConfigRecord,
    tagged: &AlarmConfigRecord,
) -> (AlarmConfigRecord, BTreeMap<&'static str, &'static str>) {
    let mut sources = BTreeMap::new();
    fn pick<T: Clone>(
        sources: &mut BTreeMap<&'static str, &'static str>,
        name: &'static str,
        stored: &Option<T>,
        tagged: &Option<T>,
    ) -> Option<T> {
        let (value, from) = match (stored, tagged) {
            (Some(v), _) => (Some(v.clone()), "stored"),
            (None, Some(v)) => (Some(v.clone()), "tag"),
            (None, None) => (None, "default"),
        };
        sources.insert(name, from);
        value
    }
    let merged = AlarmConfigRecord {
        priority: pick(&mut sources, "priority", &stored.priority, &tagged.priority),
        action: pick(&mut sources, "action", &stored.action, &tagged.action),
        ccemail: pick(&mut sources, "ccemail", &stored.ccemail, &tagged.ccemail),
        subject: pick(&mut sources, "subject", &stored.subject, &tagged.subject),
        service_code: pick(
            &mut sources,
            "service_code",
            &stored.service_code,
            &tagged.service_code,
        ),
        category_code: pick(
            &mut sources,
            "category_code",
            &stored.category_code,
            &tagged.category_code,
        ),
        enabled: pick(&mut sources, "enabled", &stored.enabled, &tagged.enabled),
        inhibited_by: pick(
            &mut sources,
            "inhibited_by",
            &stored.inhibited_by,
            &tagged.inhibited_by,
        ),
        group: pick(&mut sources, "group", &stored.group, &tagged.group),
    };
    (merged, sources)
}

/// Whether an ARN is a CloudWatch alarm's (only those have tags to read).
pub fn is_alarm_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    parts.len() == 7 && parts[0] == "arn" && parts[2] == "cloudwatch" && parts[5] == "alarm"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    #[test]
    fn stored_settings_then_tags_then_defaults_field_by_field() {
        let tags = record_from_tags(&[
            t("cw-support:priority", "Urgent"),
            t("cw-support:cc", "a@example.com b@example.com"),
            t("cw-support:group", "database"),
            t("team", "db"),
        ]);
        assert_eq!(tags.priority.as_deref(), Some("urgent"));
        assert_eq!(
            tags.ccemail,
            Some(CcField::Many(vec![
                "a@example.com".into(),
                "b@example.com".into()
            ]))
        );
        let stored = AlarmConfigRecord {
            priority: Some("normal".into()),
            ..Default::default()
        };
        let (merged, from) = merge(&stored, &tags);
        assert_eq!(merged.priority.as_deref(), Some("normal"));
        assert_eq!(merged.group.as_deref(), Some("database"));
        assert_eq!(from["priority"], "stored");
        assert_eq!(from["group"], "tag");
        assert_eq!(from["ccemail"], "tag");
        assert_eq!(from["action"], "default");
    }

    #[test]
    fn only_alarm_arns_have_tags() {
        assert!(is_alarm_arn(
            "arn:aws:cloudwatch:us-east-1:123456789012:alarm:prod-db-cpu"
        ));
        assert!(!is_alarm_arn(
            "arn:aws:health:us-east-1::event/EC2/X/Y#123456789012"
        ));
        assert!(!is_alarm_arn("prod-db-cpu"));
    }
}
