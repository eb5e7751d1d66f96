//! CloudWatch's own picture of an alarm's metric (GetMetricWidgetImage), drawn where the
//! alarm lives.

use serde_json::Value;

use crate::backend::local::graph::{HEIGHT, WIDTH, no_single_metric, render, sanitize};
use crate::domain::alarm::{Alarm, AlarmKind};
use crate::ports::PortError;
use crate::ports::graph::{Attachment, Grapher};

/// CloudWatch's own picture (GetMetricWidgetImage): the last three hours of the alarm's
/// metric with its statistic and period, the threshold as a horizontal annotation and the
/// moment it fired as a vertical one. If CloudWatch cannot draw it, the alarm's own
/// datapoints are drawn instead, and the reason is kept in the file name's note.
pub struct CloudWatchGrapher {
    pub client: aws_sdk_cloudwatch::Client,
    /// The mapped accounts' credentials: an alarm's graph is drawn in its own account.
    pub accounts: crate::backend::aws::AccountCredentials,
}

/// The widget rows of a metric-math or anomaly alarm: every metric and expression it
/// evaluates, the ones it does not return hidden (CloudWatch draws an anomaly band itself).
fn math_rows(t: &Value) -> Option<Vec<Value>> {
    let mut rows = Vec::new();
    for m in t["Metrics"].as_array()? {
        let id = m["Id"].as_str()?;
        let visible = m["ReturnData"].as_bool().unwrap_or(true);
        if let Some(expr) = m["Expression"].as_str() {
            let mut opts = serde_json::json!({"expression": expr, "id": id, "visible": visible});
            if let Some(label) = m["Label"].as_str() {
                opts["label"] = label.into();
            }
            rows.push(Value::Array(vec![opts]));
        } else {
            let stat = &m["MetricStat"];
            let metric = &stat["Metric"];
            let mut row: Vec<Value> = vec![
                metric["Namespace"].as_str()?.into(),
                metric["MetricName"].as_str()?.into(),
            ];
            for d in metric["Dimensions"].as_array().into_iter().flatten() {
                row.push(d["name"].as_str()?.into());
                row.push(d["value"].as_str()?.into());
            }
            row.push(serde_json::json!({
                "id": id,
                "visible": visible,
                "stat": stat["Stat"].as_str().unwrap_or("Average"),
                "period": stat["Period"].as_u64().unwrap_or(60),
            }));
            rows.push(Value::Array(row));
        }
    }
    (!rows.is_empty()).then_some(rows)
}

/// The widget GetMetricWidgetImage is asked for, or why the alarm has none.
pub fn widget(alarm: &Alarm) -> Result<Value, PortError> {
    if matches!(alarm.kind, AlarmKind::MetricMath | AlarmKind::Anomaly) {
        let t = &alarm.raw["Trigger"];
        let rows = math_rows(t).ok_or("the alarm's metrics cannot be read")?;
        let mut w = serde_json::json!({
            "metrics": rows,
            "period": t["Period"].as_u64().unwrap_or(60),
            "start": "-PT3H",
            "end": "P0D",
            "title": alarm.name,
            "width": WIDTH,
            "height": HEIGHT,
        });
        if let Some(at) = alarm.state_change_time.parsed {
            w["annotations"] = serde_json::json!({"vertical": [{
                "label": "ALARM",
                "value": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }]});
        }
        return Ok(w);
    }
    if alarm.kind != AlarmKind::Metric {
        return Err(no_single_metric(alarm.kind).into());
    }
    let t = &alarm.raw["Trigger"];
    let (Some(ns), Some(metric)) = (t["Namespace"].as_str(), t["MetricName"].as_str()) else {
        return Err("the alarm names no metric".into());
    };
    let stat = match t["Statistic"].as_str().unwrap_or_default() {
        "SUM" => "Sum".to_owned(),
        "AVERAGE" => "Average".to_owned(),
        "MAXIMUM" => "Maximum".to_owned(),
        "MINIMUM" => "Minimum".to_owned(),
        "SAMPLE_COUNT" => "SampleCount".to_owned(),
        _ => t["ExtendedStatistic"]
            .as_str()
            .unwrap_or("Average")
            .to_owned(),
    };
    let mut row: Vec<Value> = vec![ns.into(), metric.into()];
    for d in t["Dimensions"].as_array().into_iter().flatten() {
        if let (Some(n), Some(v)) = (d["name"].as_str(), d["value"].as_str()) {
            row.push(n.into());
            row.push(v.into());
        }
    }
    row.push(serde_json::json!({"stat": stat}));
    let mut w = serde_json::json!({
        "metrics": [row],
        "period": t["Period"].as_u64().unwrap_or(60),
        "stat": stat,
        "start": "-PT3H",
        "end": "P0D",
        "title": alarm.name,
        "width": WIDTH,
        "height": HEIGHT,
    });
    let mut annotations = serde_json::Map::new();
    if let Some(threshold) = t["Threshold"].as_f64() {
        annotations.insert(
            "horizontal".into(),
            serde_json::json!([{"label": "threshold", "value": threshold}]),
        );
    }
    if let Some(at) = alarm.state_change_time.parsed {
        annotations.insert(
            "vertical".into(),
            serde_json::json!([{
                "label": "ALARM",
                "value": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            }]),
        );
    }
    w["annotations"] = Value::Object(annotations);
    Ok(w)
}

#[async_trait::async_trait]
impl Grapher for CloudWatchGrapher {
    async fn graph(&self, alarm: &Alarm) -> Result<Attachment, PortError> {
        let widget = widget(alarm)?;
        let mut call = self
            .client
            .get_metric_widget_image()
            .metric_widget(widget.to_string())
            .output_format("png")
            .customize();
        // Drawn where the alarm lives: its region, its account's credentials.
        if let Some(o) = crate::backend::aws::cloudwatch_override(
            &self.accounts,
            alarm.identity.region.as_deref(),
            alarm.identity.account.as_deref(),
        ) {
            call = call.config_override(o);
        }
        let asked = call.send();
        let why = match tokio::time::timeout(std::time::Duration::from_secs(5), asked).await {
            Ok(Ok(out)) => match out.metric_widget_image() {
                Some(png) if !png.as_ref().is_empty() => {
                    let metric = alarm.raw["Trigger"]["MetricName"]
                        .as_str()
                        .unwrap_or("metric");
                    return Ok(Attachment {
                        file_name: format!("{}-{metric}.png", sanitize(&alarm.name)),
                        data: png.as_ref().to_vec(),
                    });
                }
                _ => "CloudWatch answered no image".to_owned(),
            },
            Ok(Err(e)) => format!("GetMetricWidgetImage: {}", super::describe(&e)),
            Err(_) => "GetMetricWidgetImage took longer than 5 s".to_owned(),
        };
        tracing::warn!(alarm = %alarm.name, reason = %why, "CloudWatch could not draw the graph; drawing the alarm's own datapoints");
        render(alarm).map_err(|local| PortError::from(format!("{why}; and {local}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Alarm {
        let text = std::fs::read_to_string(format!(
            "{}/tests/data/payloads/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("fixture");
        Alarm::parse(serde_json::from_str(&text).expect("json")).expect("alarm")
    }

    #[test]
    fn metric_math_and_anomaly_alarms_get_a_widget_of_what_they_watch() {
        let a = fixture("metric-math-alarm.json");
        let w = widget(&a).expect("a widget");
        assert_eq!(w["metrics"][0][0], "AWS/SQS");
        assert_eq!(w["metrics"][0][1], "ApproximateAgeOfOldestMessage");
        assert_eq!(w["metrics"][0][4]["stat"], "Maximum");
        assert_eq!(
            w["metrics"][1][0]["expression"],
            "ANOMALY_DETECTION_BAND(m1, 2)"
        );
        assert_eq!(w["period"], 300);
        // Drawn locally there is nothing to draw: no datapoints in its state reason.
        assert!(render(&a).is_err());
        // A composite alarm watches alarms, not metrics.
        assert!(widget(&fixture("composite-alarm.json")).is_err());
    }
}
