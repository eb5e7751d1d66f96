//! Settings from the alarm's own tags, for teams that define alarms in CloudFormation or
//! Terraform and want the case settings beside them: `cw-support:priority`, `cw-support:cc`,
//! `cw-support:service-code`, `cw-support:category-code`, `cw-support:group`,
//! `cw-support:enabled`, `cw-support:route`, `cw-support:policy`. Read through a [`TagSource`](crate::ports::tags::TagSource) (on
//! AWS, CloudWatch ListTagsForResource, cached per alarm ARN); a failure to read them never
//! blocks a case (the stored settings and defaults apply).
//!
//! Precedence, each field on its own: stored settings, then tags, then the defaults.

use std::collections::BTreeMap;

use crate::domain::settings::{AlarmConfigRecord, CcField};

pub const TAG_PREFIX: &str = "cw-support:";

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
            "route" => r.route = Some(value.to_lowercase()),
            "policy" => r.policy = Some(value),
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
        route: pick(&mut sources, "route", &stored.route, &tagged.route),
        policy: pick(&mut sources, "policy", &stored.policy, &tagged.policy),
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
