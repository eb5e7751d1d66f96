//! Which AWS service an alarm watches, and which service and region an AWS Health issue is
//! about, so a page can say "AWS reports an issue with EC2 in eu-west-1" while one is open.

use serde_json::Value;

use super::Alarm;

/// CloudWatch namespaces whose AWS Health service code differs from their name.
const HEALTH_CODES: &[(&str, &str)] = &[
    ("APPLICATIONELB", "ELASTICLOADBALANCING"),
    ("NETWORKELB", "ELASTICLOADBALANCING"),
    ("ELB", "ELASTICLOADBALANCING"),
    ("APIGATEWAY", "APIGATEWAY"),
    ("DOCDB", "DOCDB"),
];

fn namespaces(raw: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let trigger = &raw["Trigger"];
    if let Some(n) = trigger["Namespace"].as_str() {
        out.push(n);
    }
    for m in trigger["Metrics"].as_array().into_iter().flatten() {
        if let Some(n) = m["MetricStat"]["Metric"]["Namespace"].as_str() {
            out.push(n);
        }
    }
    let metrics = &raw["detail"]["configuration"]["metrics"];
    for m in metrics.as_array().into_iter().flatten() {
        if let Some(n) = m["metricStat"]["metric"]["namespace"].as_str() {
            out.push(n);
        }
    }
    out
}

impl Alarm {
    /// The AWS service the alarm's metric belongs to, as AWS Health names it (`EC2`,
    /// `RDS`, `ELASTICLOADBALANCING`); none for other namespaces and alarms without one.
    pub fn aws_service(&self) -> Option<String> {
        let ns = namespaces(&self.raw)
            .into_iter()
            .find_map(|n| n.strip_prefix("AWS/"))?;
        let upper = ns.to_ascii_uppercase();
        Some(
            HEALTH_CODES
                .iter()
                .find(|(from, _)| *from == upper)
                .map_or(upper, |(_, to)| (*to).to_owned()),
        )
    }
}

/// The service and region of an AWS Health event, from its ARN
/// (`arn:aws:health:eu-west-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/...`, perhaps followed
/// by `#account`, as the ledger keys them).
pub fn health_issue(key: &str) -> Option<(String, String)> {
    let arn = key.split('#').next()?;
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service, region, _account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn_ != "arn" || service != "health" {
        return None;
    }
    let mut r = resource.split('/');
    (r.next()? == "event").then_some(())?;
    let svc = r.next().filter(|s| !s.is_empty())?;
    let region = match region {
        "" => "global",
        r => r,
    };
    Some((svc.to_ascii_uppercase(), region.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_arns_name_their_service_and_region() {
        assert_eq!(
            health_issue(
                "arn:aws:health:eu-west-1::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_7f35c8ae#123456789012"
            ),
            Some(("EC2".into(), "eu-west-1".into()))
        );
        assert_eq!(
            health_issue("arn:aws:health:global::event/IAM/AWS_IAM_OPERATIONAL_ISSUE/x"),
            Some(("IAM".into(), "global".into()))
        );
        for not in [
            "arn:aws:cloudwatch:eu-west-1:1:alarm:x",
            "prod-db",
            "arn:aws:health:eu-west-1::other/EC2",
            "",
        ] {
            assert_eq!(health_issue(not), None, "{not}");
        }
    }

    #[test]
    fn an_alarm_names_the_service_of_its_metric() {
        let parse = |v: Value| Alarm::parse(v).expect("alarm");
        let sns = parse(serde_json::json!({
            "AlarmName": "a", "NewStateValue": "ALARM", "StateChangeTime": "2026-11-20T03:12:45.118+0000",
            "Trigger": {"MetricName": "CPUUtilization", "Namespace": "AWS/EC2"}
        }));
        assert_eq!(sns.aws_service().as_deref(), Some("EC2"));
        let alb = parse(serde_json::json!({
            "AlarmName": "a", "NewStateValue": "ALARM", "StateChangeTime": "2026-11-20T03:12:45.118+0000",
            "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB"}
        }));
        assert_eq!(alb.aws_service().as_deref(), Some("ELASTICLOADBALANCING"));
        let own = parse(serde_json::json!({
            "AlarmName": "a", "NewStateValue": "ALARM", "StateChangeTime": "2026-11-20T03:12:45.118+0000",
            "Trigger": {"MetricName": "Orders", "Namespace": "Shop"}
        }));
        assert_eq!(own.aws_service(), None);
    }
}
