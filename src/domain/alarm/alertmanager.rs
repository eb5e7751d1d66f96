//! Prometheus Alertmanager's webhook (version 4) and Grafana's alerting webhook, which is
//! built on it: one body carries a group of alerts, each of which becomes an alarm of its own
//! (firing is ALARM, resolved OK), identified by its fingerprint (or, without one, by its
//! labels), and named after its `alertname` label, so per-alarm settings apply by name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::*;

/// The most alerts one body may carry: Alertmanager sends a group at a time, and a group of
/// more than this is a storm the storm case handles anyway.
pub const MAX_ALERTS: usize = 200;

/// Whether a body is an Alertmanager-style webhook: an `alerts` array beside a group's
/// `receiver`, `groupKey` or `status`.
pub fn is_webhook(obj: &Map<String, Value>) -> bool {
    matches!(obj.get("alerts"), Some(Value::Array(_)))
        && ["receiver", "groupKey", "status"]
            .iter()
            .any(|k| obj.contains_key(*k))
}

/// Every alert of the webhook, as an alarm.
pub fn parse(obj: &Map<String, Value>) -> Result<Vec<Alarm>, PayloadError> {
    check_strings(&Value::Object(obj.clone()))?;
    let sender = if obj.contains_key("orgId") || obj.contains_key("state") {
        "Grafana"
    } else {
        "Alertmanager"
    };
    let alerts = match obj.get("alerts") {
        Some(Value::Array(a)) => a,
        _ => return Err(PayloadError::MissingField("alerts".into())),
    };
    if alerts.len() > MAX_ALERTS {
        return Err(PayloadError::invalid(
            "alerts",
            format!("more than {MAX_ALERTS} alerts in one webhook"),
        ));
    }
    if alerts.is_empty() {
        return Err(PayloadError::invalid("alerts", "no alert in the webhook"));
    }
    let external = opt_str(obj, "externalURL", "externalURL")?;
    // Older Alertmanagers put the status on the group only.
    let group_status = opt_str(obj, "status", "status")?;
    alerts
        .iter()
        .enumerate()
        .map(|(i, alert)| parse_alert(alert, i, sender, external, group_status))
        .collect()
}

/// Whether a body is Grafana's legacy alerting webhook (before unified alerting): one rule's
/// state, `ruleId`/`ruleName` and `state`.
pub fn is_legacy_grafana(obj: &Map<String, Value>) -> bool {
    obj.contains_key("ruleId") && obj.contains_key("state") && !obj.contains_key("alerts")
}

/// Grafana's legacy alerting webhook: `alerting` is ALARM, `ok` OK, anything else (no data,
/// pending, paused) INSUFFICIENT_DATA. It carries no time: the time it arrived stands for the
/// state change, so each notification is an event of its own.
pub fn parse_legacy_grafana(obj: &Map<String, Value>, raw: &Value) -> Result<Alarm, PayloadError> {
    check_strings(raw)?;
    let rule_id = text(obj.get("ruleId")).unwrap_or_else(|| "?".into());
    let name = check_name(
        opt_str(obj, "ruleName", "ruleName")?
            .or(opt_str(obj, "title", "title")?)
            .unwrap_or("grafana alert"),
        "ruleName",
    )?;
    let status = req_str(obj, "state", "state")?;
    let state = match status {
        "alerting" => AlarmState::Alarm,
        "ok" => AlarmState::Ok,
        _ => AlarmState::InsufficientData,
    };
    let matches: Vec<String> = match obj.get("evalMatches") {
        Some(Value::Array(m)) => m
            .iter()
            .take(10)
            .filter_map(|x| {
                Some(format!(
                    "{}={}",
                    text(x.get("metric"))?,
                    text(x.get("value"))?
                ))
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut trigger = format!("Grafana rule {name} ({rule_id}) is {status}");
    if !matches.is_empty() {
        trigger.push_str(&format!("; {}", matches.join(", ")));
    }
    if let Some(url) = opt_str(obj, "ruleUrl", "ruleUrl")? {
        trigger.push_str(&format!("; source: {url}"));
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(Alarm {
        identity: AlarmIdentity {
            arn: Some(format!("grafana:rule:{rule_id}")),
            account: None,
            region: None,
        },
        name,
        kind: AlarmKind::Alertmanager,
        description: bounded(
            opt_str(obj, "message", "message")?,
            MAX_DESCRIPTION_CHARS,
            "message",
        )?
        .map(str::to_owned),
        state,
        previous_state: None,
        state_change_time: StateChangeTime::new(&now),
        reason: Some(format!("Grafana state {status}")),
        trigger,
        raw: raw.clone(),
    })
}

fn labels_of(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| text(Some(v)).map(|v| (k.clone(), v)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn parse_alert(
    alert: &Value,
    i: usize,
    sender: &str,
    external: Option<&str>,
    group_status: Option<&str>,
) -> Result<Alarm, PayloadError> {
    let path = |field: &str| format!("alerts[{i}].{field}");
    let obj = alert
        .as_object()
        .ok_or_else(|| PayloadError::invalid(&format!("alerts[{i}]"), "expected an object"))?;
    let labels = labels_of(obj.get("labels"));
    let annotations = labels_of(obj.get("annotations"));
    let name = check_name(
        labels.get("alertname").map_or("alert", String::as_str),
        &path("labels.alertname"),
    )?;
    let status = match opt_str(obj, "status", &path("status"))?.or(group_status) {
        Some(s) => s,
        None => return Err(PayloadError::MissingField(path("status"))),
    };
    let (state, time_field) = match status {
        "firing" => (AlarmState::Alarm, "startsAt"),
        "resolved" => (AlarmState::Ok, "endsAt"),
        other => {
            return Err(PayloadError::invalid(
                &path("status"),
                format!("expected firing or resolved, got {other:?}"),
            ));
        }
    };
    let time = check_time(
        req_str(obj, time_field, &path(time_field))?,
        &path(time_field),
    )?;
    let fingerprint = fingerprint(obj, &labels, &path("fingerprint"))?;
    let (description, reason) = described(obj, &annotations, &path)?;
    let source = opt_str(obj, "generatorURL", &path("generatorURL"))?.or(external);
    let trigger = alert_trigger(sender, &name, &labels, obj, source);
    Ok(Alarm {
        identity: AlarmIdentity {
            arn: Some(format!("{}:{fingerprint}", sender.to_lowercase())),
            account: labels
                .get("account_id")
                .and_then(|a| check_account(Some(a), "").ok()?.map(str::to_owned)),
            region: labels
                .get("region")
                .and_then(|r| check_region(Some(r), "").ok()?.map(str::to_owned)),
        },
        name,
        kind: AlarmKind::Alertmanager,
        description: description.map(str::to_owned),
        state,
        previous_state: None,
        state_change_time: StateChangeTime::new(time),
        reason: reason.map(str::to_owned),
        trigger,
        raw: alert.clone(),
    })
}

/// The fingerprint identifies an alert across notifications; without one, its labels do.
fn fingerprint(
    obj: &Map<String, Value>,
    labels: &BTreeMap<String, String>,
    path: &str,
) -> Result<String, PayloadError> {
    Ok(match opt_str(obj, "fingerprint", path)? {
        Some(f) => bounded(Some(f), 128, path)?.unwrap_or_default().to_owned(),
        None => {
            use sha2::{Digest, Sha256};
            let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let digest = Sha256::digest(text.join("\u{1f}").as_bytes());
            digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
        }
    })
}

/// The alert's description and the reason it fired, from its annotations.
fn described<'a>(
    obj: &'a Map<String, Value>,
    annotations: &'a BTreeMap<String, String>,
    path: &impl Fn(&str) -> String,
) -> Result<(Option<&'a str>, Option<&'a str>), PayloadError> {
    let description = bounded(
        annotations
            .get("summary")
            .or(annotations.get("description"))
            .map(String::as_str),
        MAX_DESCRIPTION_CHARS,
        &path("annotations.summary"),
    )?;
    // The summary describes the alert; the description (when the summary took the first
    // place) or Grafana's value string says why it fired.
    let why = match annotations.get("summary") {
        Some(_) => annotations.get("description").map(String::as_str),
        None => None,
    }
    .or_else(|| obj.get("valueString").and_then(Value::as_str));
    let reason = bounded(why, MAX_REASON_CHARS, &path("annotations.description"))?;
    Ok((description, reason))
}

/// The alert for a reader: who sent it, its labels (but its name), its value and where it
/// came from.
fn alert_trigger(
    sender: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    obj: &Map<String, Value>,
    source: Option<&str>,
) -> String {
    let shown: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut trigger = format!("{sender} alert {name}");
    if !shown.is_empty() {
        trigger.push_str(&format!(" [{}]", shown.join(", ")));
    }
    if let Some(v) = obj.get("valueString").and_then(Value::as_str) {
        trigger.push_str(&format!("; {v}"));
    }
    if let Some(url) = source {
        trigger.push_str(&format!("; source: {url}"));
    }
    trigger
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn webhook(alerts: Vec<Value>) -> Map<String, Value> {
        json!({"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "cw",
               "externalURL": "http://alertmanager:9093", "alerts": alerts})
        .as_object()
        .cloned()
        .expect("object")
    }

    fn alert(status: &str, fingerprint: &str) -> Value {
        json!({"status": status, "labels": {"alertname": "HighLatency", "service": "api"},
               "annotations": {"summary": "p99 above 2 s", "description": "p99 is 3.1 s"},
               "startsAt": "2026-11-20T03:12:45Z", "endsAt": "2026-11-20T03:30:00Z",
               "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint})
    }

    #[test]
    fn each_alert_is_an_alarm_known_by_its_fingerprint() {
        let alarms = parse(&webhook(vec![
            alert("firing", "a1"),
            alert("resolved", "b2"),
        ]))
        .expect("parses");
        assert_eq!(alarms.len(), 2);
        assert_eq!(alarms[0].name, "HighLatency");
        assert_eq!(
            (alarms[0].state, alarms[1].state),
            (AlarmState::Alarm, AlarmState::Ok)
        );
        assert_eq!(alarms[0].key(), "alertmanager:a1");
        assert_eq!(alarms[0].description.as_deref(), Some("p99 above 2 s"));
        assert_eq!(alarms[0].reason.as_deref(), Some("p99 is 3.1 s"));
        assert!(
            alarms[0].trigger.contains("service=api"),
            "{}",
            alarms[0].trigger
        );
        // Firing is known by when it started, resolved by when it ended.
        assert_eq!(alarms[0].state_change_time.raw, "2026-11-20T03:12:45Z");
        assert_eq!(alarms[1].state_change_time.raw, "2026-11-20T03:30:00Z");
        // Alertmanager repeats a firing alert with the same start: the same event.
        let again = parse(&webhook(vec![alert("firing", "a1")])).expect("parses");
        assert_eq!(again[0].event_key(), alarms[0].event_key());
    }

    #[test]
    fn bad_webhooks_are_refused_by_field() {
        let many = (0..=MAX_ALERTS)
            .map(|i| alert("firing", &i.to_string()))
            .collect();
        let e = parse(&webhook(many)).expect_err("too many");
        assert!(matches!(e, PayloadError::InvalidField { ref field, .. } if field == "alerts"));
        assert!(parse(&webhook(Vec::new())).is_err());
        let mut odd = alert("silenced", "x");
        odd["status"] = json!("silenced");
        let e = parse(&webhook(vec![odd])).expect_err("unknown status");
        assert!(
            matches!(e, PayloadError::InvalidField { ref field, .. } if field == "alerts[0].status")
        );
        // No status on the alert: the group's.
        let mut bare = alert("firing", "y");
        bare.as_object_mut().expect("object").remove("status");
        assert_eq!(
            parse(&webhook(vec![bare])).expect("parses")[0].state,
            AlarmState::Alarm
        );
    }
}
