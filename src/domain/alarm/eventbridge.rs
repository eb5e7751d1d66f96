//! EventBridge events: CloudWatch's `CloudWatch Alarm State Change` and AWS Health's
//! `AWS Health Event`, parsed into the same [`Alarm`] as the SNS formats.

use serde_json::{Map, Value};

use super::cloudwatch::{dimension_list, math_metric_summary};
use super::*;

// ---- EventBridge events ---------------------------------------------------------------------

pub(super) fn parse_event(obj: &Map<String, Value>, raw: &Value) -> Result<Alarm, PayloadError> {
    let detail_type = req_str(obj, "detail-type", "detail-type")?;
    match detail_type {
        "CloudWatch Alarm State Change" => parse_alarm_event(obj, raw),
        "AWS Health Event" | "AWS Health Abuse Event" => parse_health_event(obj, raw),
        "Trusted Advisor Check Item Refresh Notification" => parse_trusted_advisor(obj, raw),
        other => Err(PayloadError::UnsupportedEvent(format!(
            "EventBridge detail-type {other:?}; expected \"CloudWatch Alarm State Change\", \
             \"AWS Health Event\", \"AWS Health Abuse Event\" or \"Trusted Advisor Check Item \
             Refresh Notification\""
        ))),
    }
}

/// EventBridge events that are CloudWatch's news but no alarm's state: accepted and
/// ignored, with the reason (an EventBridge rule on `aws.cloudwatch` sends them with the
/// alarms, and a 4xx would send them to the dead-letter queue for nothing).
pub fn ignorable(obj: &Map<String, Value>) -> Option<String> {
    let kind = obj.get("detail-type")?.as_str()?;
    let why = match kind {
        "CloudWatch Alarm Configuration Change" => "an alarm's configuration changed",
        "CloudWatch Alarm Contributor State Change" => {
            "a Contributor Insights contributor changed state (its alarm's own state change is the event that counts)"
        }
        _ => return None,
    };
    Some(format!("{kind}: {why}; nothing to tell AWS Support"))
}

/// CloudWatch's payload for a Lambda alarm action (`source: aws.cloudwatch`, `alarmData`):
/// the same alarm as the EventBridge event, arranged differently.
pub(super) fn parse_lambda_action(
    obj: &Map<String, Value>,
    raw: &Value,
) -> Result<Alarm, PayloadError> {
    let mut event = Map::new();
    event.insert(
        "detail".into(),
        obj.get("alarmData")
            .cloned()
            .ok_or_else(|| PayloadError::MissingField("alarmData".into()))?,
    );
    if let Some(arn) = opt_str(obj, "alarmArn", "alarmArn")? {
        event.insert(
            "resources".into(),
            Value::Array(vec![Value::String(arn.into())]),
        );
    }
    for (from, to) in [("accountId", "account"), ("region", "region")] {
        if let Some(v) = opt_str(obj, from, from)? {
            event.insert(to.into(), Value::String(v.into()));
        }
    }
    parse_alarm_event(&event, raw)
}

/// A Trusted Advisor check item's refresh (`aws.trustedadvisor`): an alarm named after the
/// check, one per check item (its resource), ERROR and WARN in ALARM, OK recovered.
fn parse_trusted_advisor(obj: &Map<String, Value>, raw: &Value) -> Result<Alarm, PayloadError> {
    let detail = req_detail(obj)?;
    let check = check_name(
        req_str(detail, "check-name", "detail.check-name")?,
        "detail.check-name",
    )?;
    let status = req_str(detail, "status", "detail.status")?;
    let state = match status {
        "ERROR" | "WARN" => AlarmState::Alarm,
        "OK" => AlarmState::Ok,
        _ => AlarmState::InsufficientData,
    };
    let item = bounded(
        opt_str(detail, "resource_id", "detail.resource_id")?.or(opt_str(
            detail,
            "uuid",
            "detail.uuid",
        )?),
        MAX_ARN_CHARS,
        "detail.resource_id",
    )?;
    let account = check_account(opt_str(obj, "account", "account")?, "account")?;
    let region = check_region(opt_str(obj, "region", "region")?, "region")?;
    let time = check_time(req_str(obj, "time", "time")?, "time")?;
    let details: Vec<String> = match detail.get("check-item-detail") {
        Some(Value::Object(d)) => d
            .iter()
            .filter_map(|(k, v)| text(Some(v)).map(|v| format!("{k}: {v}")))
            .collect(),
        _ => Vec::new(),
    };
    let mut trigger = format!("Trusted Advisor check \"{check}\" is {status}");
    if let Some(item) = item {
        trigger.push_str(&format!(" for {item}"));
    }
    if !details.is_empty() {
        trigger.push_str(&format!("; {}", details.join("; ")));
    }
    Ok(Alarm {
        identity: AlarmIdentity {
            // One record per check item and account: the key the ledger groups events by.
            arn: Some(format!(
                "trustedadvisor:{}:{check}:{}",
                account.unwrap_or("-"),
                item.unwrap_or("-")
            )),
            account: account.map(str::to_owned),
            region: region.map(str::to_owned),
        },
        name: check,
        kind: AlarmKind::TrustedAdvisor,
        description: None,
        state,
        previous_state: None,
        state_change_time: StateChangeTime::new(time),
        reason: Some(format!("Trusted Advisor status {status}")),
        trigger,
        raw: raw.clone(),
    })
}

fn req_detail(obj: &Map<String, Value>) -> Result<&Map<String, Value>, PayloadError> {
    opt_obj(obj, "detail", "detail")?.ok_or_else(|| PayloadError::MissingField("detail".into()))
}

fn parse_alarm_event(obj: &Map<String, Value>, raw: &Value) -> Result<Alarm, PayloadError> {
    let detail = req_detail(obj)?;
    let name = check_name(
        req_str(detail, "alarmName", "detail.alarmName")?,
        "detail.alarmName",
    )?;
    let state_obj = opt_obj(detail, "state", "detail.state")?
        .ok_or_else(|| PayloadError::MissingField("detail.state".into()))?;
    let state = AlarmState::parse(
        "detail.state.value",
        req_str(state_obj, "value", "detail.state.value")?,
    )?;
    let time = check_time(
        req_str(state_obj, "timestamp", "detail.state.timestamp")?,
        "detail.state.timestamp",
    )?;
    let previous_state = match opt_obj(detail, "previousState", "detail.previousState")? {
        Some(p) => opt_str(p, "value", "detail.previousState.value")?
            .map(|s| AlarmState::parse("detail.previousState.value", s))
            .transpose()?,
        None => None,
    };
    // The alarm ARN is the event's only resource; anything else there is not an alarm ARN.
    let arn = match obj.get("resources") {
        Some(Value::Array(r)) => r
            .iter()
            .filter_map(Value::as_str)
            .find(|a| arn_parts(a).is_some()),
        _ => None,
    };
    let config = opt_obj(detail, "configuration", "detail.configuration")?;
    let description = match config {
        Some(c) => bounded(
            opt_str(c, "description", "detail.configuration.description")?,
            MAX_DESCRIPTION_CHARS,
            "detail.configuration.description",
        )?,
        None => None,
    };
    let (kind, trigger) = event_trigger(config, state_obj);
    Ok(Alarm {
        identity: identity(
            arn,
            check_account(opt_str(obj, "account", "account")?, "account")?,
            check_region(opt_str(obj, "region", "region")?, "region")?,
        ),
        name,
        kind,
        description: description.map(str::to_owned),
        state,
        previous_state,
        state_change_time: StateChangeTime::new(time),
        reason: bounded(
            opt_str(state_obj, "reason", "detail.state.reason")?,
            MAX_REASON_CHARS,
            "detail.state.reason",
        )?
        .map(str::to_owned),
        trigger,
        raw: raw.clone(),
    })
}

/// What kind of alarm the event is about, and its trigger summarised from the alarm's
/// configuration and the state's reason data; a surprise there is never fatal.
fn event_trigger(
    config: Option<&Map<String, Value>>,
    state_obj: &Map<String, Value>,
) -> (AlarmKind, String) {
    // What CloudWatch measured, as JSON in a string: the threshold, the triggering alarms.
    let reason_data: Value = state_obj
        .get("reasonData")
        .and_then(Value::as_str)
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    match config {
        Some(c) if c.get("alarmRule").is_some() => (
            AlarmKind::Composite,
            composite_event_summary(c, state_obj, &reason_data),
        ),
        Some(c) => match c.get("metrics") {
            Some(Value::Array(m)) if m.len() == 1 && m[0].get("expression").is_none() => (
                AlarmKind::Metric,
                single_metric_summary(&m[0], &reason_data),
            ),
            Some(Value::Array(m)) => (
                AlarmKind::MetricMath,
                format!(
                    "metrics: {}",
                    m.iter()
                        .map(math_metric_summary)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            _ => (AlarmKind::Alarm, "no trigger details in the event".into()),
        },
        None => (AlarmKind::Alarm, "no trigger details in the event".into()),
    }
}

/// A composite alarm's rule, the alarms that triggered it (twenty at most) and what
/// suppressed its actions.
fn composite_event_summary(
    config: &Map<String, Value>,
    state_obj: &Map<String, Value>,
    reason_data: &Value,
) -> String {
    let mut t = format!(
        "rule: {}",
        text(config.get("alarmRule")).unwrap_or_else(|| "?".into())
    );
    if let Some(Value::Array(alarms)) = reason_data.get("triggeringAlarms") {
        let list: Vec<String> = alarms
            .iter()
            .take(20)
            .filter_map(|a| {
                let arn = text(a.get("arn"))?;
                Some(match a.get("state").and_then(|s| text(s.get("value"))) {
                    Some(st) => format!("{arn} ({st})"),
                    None => arn,
                })
            })
            .collect();
        if !list.is_empty() {
            t.push_str(&format!("; triggered by: {}", list.join(", ")));
        }
    }
    if let Some(by) = text(state_obj.get("actionsSuppressedBy")) {
        let suppressor = text(config.get("actionsSuppressor"))
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        t.push_str(&format!("; actions suppressed by {by}{suppressor}"));
    }
    t
}

/// One metric as EventBridge describes it, as the SNS form's trigger reads: the metric, its
/// statistic and period, and the threshold from the state's reason data (EventBridge's
/// metric id is a generated one, which tells a reader nothing).
fn single_metric_summary(m: &Value, reason_data: &Value) -> String {
    let stat = m.get("metricStat");
    let metric = stat.and_then(|s| s.get("metric"));
    let name = metric
        .and_then(|x| text(x.get("name")))
        .unwrap_or_else(|| "unknown metric".into());
    let namespace = metric
        .and_then(|x| text(x.get("namespace")))
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let dims = dimension_list(metric.and_then(|x| x.get("dimensions")));
    let mut s = format!("{name}{namespace}{dims}");
    if let Some(st) = stat.and_then(|s| text(s.get("stat"))) {
        s.push_str(&format!(", {st}"));
        if let Some(p) = stat.and_then(|s| text(s.get("period"))) {
            s.push_str(&format!(" over {p} s"));
        }
    }
    if let Some(t) = text(reason_data.get("threshold")) {
        s.push_str(&format!(", threshold {t}"));
    }
    s
}

/// AWS Health events become alarms named after their event type code, so that per-alarm
/// settings can be given per kind of event; `open` is ALARM, `closed` OK, and `upcoming`
/// (scheduled changes) INSUFFICIENT_DATA, which raises nothing.
fn parse_health_event(obj: &Map<String, Value>, raw: &Value) -> Result<Alarm, PayloadError> {
    let detail = req_detail(obj)?;
    let event_arn = req_str(detail, "eventArn", "detail.eventArn")?;
    bounded(Some(event_arn), MAX_ARN_CHARS, "detail.eventArn")?;
    let code = check_name(
        req_str(detail, "eventTypeCode", "detail.eventTypeCode")?,
        "detail.eventTypeCode",
    )?;
    let (status, state) = health_status(detail)?;
    let time = match opt_str(detail, "lastUpdatedTime", "detail.lastUpdatedTime")? {
        Some(t) => check_time(t, "detail.lastUpdatedTime")?,
        None => check_time(
            req_str(detail, "startTime", "detail.startTime")?,
            "detail.startTime",
        )?,
    };
    let description = health_description(detail)?;
    let region = check_region(
        opt_str(detail, "eventRegion", "detail.eventRegion")?,
        "detail.eventRegion",
    )?
    .or(check_region(opt_str(obj, "region", "region")?, "region")?);
    let trigger = health_trigger(detail, region);
    let account = check_account(
        opt_str(detail, "affectedAccount", "detail.affectedAccount")?,
        "detail.affectedAccount",
    )?
    .or(check_account(
        opt_str(obj, "account", "account")?,
        "account",
    )?);
    Ok(Alarm {
        identity: AlarmIdentity {
            // Public Health events share one ARN across accounts: the account is part of
            // what makes the problem ours.
            arn: Some(match account {
                Some(a) => format!("{event_arn}#{a}"),
                None => event_arn.to_owned(),
            }),
            account: account.map(str::to_owned),
            region: region.map(str::to_owned),
        },
        name: code,
        kind: AlarmKind::Health,
        description,
        state,
        previous_state: None,
        state_change_time: StateChangeTime::new(time),
        reason: Some(format!("AWS Health event status {status}")),
        trigger,
        raw: raw.clone(),
    })
}

/// The event's status and the state it stands for.
fn health_status(detail: &Map<String, Value>) -> Result<(&str, AlarmState), PayloadError> {
    // AWS's own published samples leave `statusCode` out in places: an event with an end
    // time is over, one without is under way.
    let status = match opt_str(detail, "statusCode", "detail.statusCode")? {
        Some(s) => s,
        None if opt_str(detail, "endTime", "detail.endTime")?.is_some() => "closed",
        None => "open",
    };
    let state = match status {
        "open" => AlarmState::Alarm,
        "closed" => AlarmState::Ok,
        "upcoming" => AlarmState::InsufficientData,
        other => {
            return Err(PayloadError::invalid(
                "detail.statusCode",
                format!("expected open, closed or upcoming, got {other:?}"),
            ));
        }
    };
    Ok((status, state))
}

/// The event's latest description, in English when AWS gives one.
fn health_description(detail: &Map<String, Value>) -> Result<Option<String>, PayloadError> {
    let description = match detail.get("eventDescription") {
        Some(Value::Array(d)) => d
            .iter()
            .find(|x| text(x.get("language")).is_some_and(|l| l.starts_with("en")))
            .or_else(|| d.first())
            .and_then(|x| text(x.get("latestDescription"))),
        _ => None,
    };
    bounded(
        description.as_deref(),
        MAX_HEALTH_DESCRIPTION_CHARS,
        "detail.eventDescription.latestDescription",
    )?;
    Ok(description)
}

/// What the event is about: its category, service, region and the entities it affects.
fn health_trigger(detail: &Map<String, Value>, region: Option<&str>) -> String {
    let entities: Vec<String> = match detail.get("affectedEntities") {
        Some(Value::Array(e)) => e
            .iter()
            .filter_map(|x| text(x.get("entityValue")))
            .collect(),
        _ => Vec::new(),
    };
    let service = text(detail.get("service")).unwrap_or_else(|| "?".into());
    let category = text(detail.get("eventTypeCategory")).unwrap_or_else(|| "?".into());
    let mut trigger = format!("AWS Health {category} event for {service}");
    if let Some(r) = region {
        trigger.push_str(&format!(" in {r}"));
    }
    if !entities.is_empty() {
        trigger.push_str(&format!("; affected: {}", entities.join(", ")));
    }
    trigger
}
