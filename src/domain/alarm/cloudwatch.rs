//! CloudWatch alarm notifications, as SNS delivers them (the `Message`) or as they are posted
//! directly, and the minimal three-key format that shares their field names; with the
//! readable summaries of their triggers, which EventBridge's form of the same alarm reuses.

use serde_json::{Map, Value};

use super::*;

pub(super) fn parse_cloudwatch(
    obj: &Map<String, Value>,
    raw: &Value,
) -> Result<Alarm, PayloadError> {
    let name = check_name(req_str(obj, "AlarmName", "AlarmName")?, "AlarmName")?;
    let time = check_time(
        req_str(obj, "StateChangeTime", "StateChangeTime")?,
        "StateChangeTime",
    )?;
    let description = bounded(
        opt_str(obj, "AlarmDescription", "AlarmDescription")?,
        MAX_DESCRIPTION_CHARS,
        "AlarmDescription",
    )?
    .map(str::to_owned);
    let state = opt_str(obj, "NewStateValue", "NewStateValue")?;
    let arn = alarm_arn(obj)?;
    let account = check_account(
        opt_str(obj, "AWSAccountId", "AWSAccountId")?,
        "AWSAccountId",
    )?;
    let reason = bounded(
        opt_str(obj, "NewStateReason", "NewStateReason")?,
        MAX_REASON_CHARS,
        "NewStateReason",
    )?;
    // Without an ARN, the region from CloudWatch's display name ("EU (Ireland)").
    let region = opt_str(obj, "Region", "Region")?.and_then(regions::region_code);
    let identity = identity(arn, account, region);

    // The minimal format has no state at all: the original service treated every post as an
    // alarm, and monitors written for it rely on that.
    let Some(state) = state else {
        return Ok(Alarm {
            identity,
            name,
            kind: AlarmKind::Minimal,
            description,
            state: AlarmState::Alarm,
            previous_state: None,
            state_change_time: StateChangeTime::new(time),
            reason: None,
            trigger: "reported by an external monitor (no trigger details)".into(),
            raw: raw.clone(),
        });
    };
    let state = AlarmState::parse("NewStateValue", state)?;
    let previous_state = opt_str(obj, "OldStateValue", "OldStateValue")?
        .map(|s| AlarmState::parse("OldStateValue", s))
        .transpose()?;
    let (kind, trigger) = kind_and_trigger(obj)?;
    Ok(Alarm {
        identity,
        name,
        kind,
        description,
        state,
        previous_state,
        state_change_time: StateChangeTime::new(time),
        reason: reason.map(str::to_owned),
        trigger,
        raw: raw.clone(),
    })
}

/// The alarm's ARN, when it has one: it becomes the ledger's key, so one that is not an
/// alarm ARN is refused rather than kept.
fn alarm_arn(obj: &Map<String, Value>) -> Result<Option<&str>, PayloadError> {
    let arn = opt_str(obj, "AlarmArn", "AlarmArn")?;
    if arn.is_some_and(|a| arn_parts(a).is_none()) {
        return Err(PayloadError::invalid(
            "AlarmArn",
            format!(
                "expected arn:<partition>:cloudwatch:<region>:<12-digit account>:alarm:<name>, \
                 at most {MAX_ARN_CHARS} characters"
            ),
        ));
    }
    Ok(arn)
}

/// What kind of alarm sent the notification, and its trigger summarised: a composite's rule,
/// a metric or metric-math trigger, or neither.
fn kind_and_trigger(obj: &Map<String, Value>) -> Result<(AlarmKind, String), PayloadError> {
    Ok(
        if let Some(rule) = opt_str(obj, "AlarmRule", "AlarmRule")? {
            (
                AlarmKind::Composite,
                composite_summary(rule, obj.get("TriggeringChildren")),
            )
        } else if let Some(trigger) = opt_obj(obj, "Trigger", "Trigger")? {
            trigger_summary(trigger)
        } else {
            (
                AlarmKind::Alarm,
                "no trigger details in the notification".into(),
            )
        },
    )
}

pub(super) fn dimension_list(v: Option<&Value>) -> String {
    // SNS alarms list dimensions as [{"name","value"}]; EventBridge as a {name: value} map.
    let pairs: Vec<String> = match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|d| {
                let name = text(d.get("name").or_else(|| d.get("Name")))?;
                let value = text(d.get("value").or_else(|| d.get("Value"))).unwrap_or_default();
                Some(format!("{name}={value}"))
            })
            .collect(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", text(Some(v)).unwrap_or_default()))
            .collect(),
        _ => Vec::new(),
    };
    if pairs.is_empty() {
        String::new()
    } else {
        format!(" [{}]", pairs.join(", "))
    }
}

fn trigger_summary(t: &Map<String, Value>) -> (AlarmKind, String) {
    let comparison = text(t.get("ComparisonOperator"));
    let periods = match (
        text(t.get("DatapointsToAlarm")),
        text(t.get("EvaluationPeriods")),
    ) {
        (Some(d), Some(e)) => format!(", {d} of {e} periods"),
        (None, Some(e)) => format!(", {e} periods"),
        _ => String::new(),
    };
    if let Some(Value::Array(metrics)) = t.get("Metrics") {
        let list: Vec<String> = metrics.iter().map(math_metric_summary).collect();
        let (kind, target) = match text(t.get("ThresholdMetricId")) {
            Some(id) => (AlarmKind::Anomaly, format!("band {id}")),
            None => (
                AlarmKind::MetricMath,
                text(t.get("Threshold")).unwrap_or_else(|| "?".into()),
            ),
        };
        let rule = comparison
            .map(|c| format!("; {c} {target}{periods}"))
            .unwrap_or_default();
        return (kind, format!("metrics: {}{rule}", list.join("; ")));
    }
    let metric = text(t.get("MetricName")).unwrap_or_else(|| "unknown metric".into());
    let namespace = text(t.get("Namespace"))
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let stat = text(t.get("Statistic")).or_else(|| text(t.get("ExtendedStatistic")));
    let period = text(t.get("Period")).map(|p| format!(" over {p} s"));
    let mut s = format!("{metric}{namespace}{}", dimension_list(t.get("Dimensions")));
    if let Some(stat) = stat {
        s.push_str(&format!(", {stat}{}", period.unwrap_or_default()));
    }
    if let Some(c) = comparison {
        let threshold = text(t.get("Threshold")).unwrap_or_else(|| "?".into());
        s.push_str(&format!(", {c} {threshold}"));
    }
    s.push_str(&periods);
    (AlarmKind::Metric, s)
}

pub(super) fn math_metric_summary(m: &Value) -> String {
    let id = text(m.get("Id").or_else(|| m.get("id"))).unwrap_or_else(|| "?".into());
    if let Some(expr) = text(m.get("Expression").or_else(|| m.get("expression"))) {
        return format!("{id} = {expr}");
    }
    let stat = m.get("MetricStat").or_else(|| m.get("metricStat"));
    let metric = stat.and_then(|s| s.get("Metric").or_else(|| s.get("metric")));
    let name = metric
        .and_then(|x| text(x.get("MetricName").or_else(|| x.get("name"))))
        .unwrap_or_else(|| "unknown metric".into());
    let namespace = metric
        .and_then(|x| text(x.get("Namespace").or_else(|| x.get("namespace"))))
        .map(|n| format!("{n} "))
        .unwrap_or_default();
    let dims =
        dimension_list(metric.and_then(|x| x.get("Dimensions").or_else(|| x.get("dimensions"))));
    let how = stat
        .map(|s| {
            let st = text(s.get("Stat").or_else(|| s.get("stat"))).unwrap_or_default();
            let p = text(s.get("Period").or_else(|| s.get("period")))
                .map(|p| format!(" per {p} s"))
                .unwrap_or_default();
            format!("{st}{p} ")
        })
        .unwrap_or_default();
    format!("{id} = {}{namespace}{name}{dims}", how.trim_start())
}

fn composite_summary(rule: &str, children: Option<&Value>) -> String {
    let mut s = format!("rule: {rule}");
    if let Some(Value::Array(children)) = children {
        let list: Vec<String> = children
            .iter()
            .filter_map(|c| {
                let arn = text(c.get("Arn"))?;
                let state = c.get("State").and_then(|s| text(s.get("Value")));
                Some(match state {
                    Some(st) => format!("{arn} ({st})"),
                    None => arn,
                })
            })
            .collect();
        if !list.is_empty() {
            s.push_str(&format!("; triggered by: {}", list.join(", ")));
        }
    }
    s
}
