//! Evidence for the support engineer: the graph of what a metric alarm watched, attached to
//! the case. This module draws it locally (the embedded default's dry-run desk keeps the PNG
//! it would attach, so a newcomer sees the picture): the alarm's own datapoints, as CloudWatch
//! lists them in the state reason, its threshold, and the moment it fired.
//!
//! Only a CloudWatch metric alarm carries what is needed; for any other alarm the reason
//! there is no graph is said instead (and written into the case).

use chrono::NaiveDateTime;
use plotters::prelude::*;
use serde_json::Value;

use crate::domain::alarm::{Alarm, AlarmKind};

/// A file to attach to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub data: Vec<u8>,
}

const WIDTH: u32 = 800;
const HEIGHT: u32 = 300;

/// The datapoints CloudWatch lists in a state reason: `[7.2 (20/11/26 03:11:00), ...]`.
pub fn datapoints(reason: &str) -> Vec<(NaiveDateTime, f64)> {
    let Some(list) = reason
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(inside, _)| inside)
    else {
        return Vec::new();
    };
    let mut points: Vec<(NaiveDateTime, f64)> = list
        .split("),")
        .filter_map(|item| {
            let (value, time) = item.trim().split_once('(')?;
            let value: f64 = value.trim().parse().ok()?;
            let time = time.trim().trim_end_matches(')');
            let t = NaiveDateTime::parse_from_str(time, "%d/%m/%y %H:%M:%S").ok()?;
            value.is_finite().then_some((t, value))
        })
        .collect();
    points.sort_by_key(|(t, _)| *t);
    points
}

/// Why an alarm that is not a single-metric alarm gets no graph, in words.
fn no_single_metric(kind: AlarmKind) -> String {
    let what = match kind {
        AlarmKind::Metric => "a metric alarm",
        AlarmKind::MetricMath => "a metric-math alarm",
        AlarmKind::Anomaly => "an anomaly-detection alarm",
        AlarmKind::Composite => "a composite alarm",
        AlarmKind::Alarm => "an alarm notification without a trigger",
        AlarmKind::Minimal => "a three-key alarm",
        AlarmKind::Health => "an AWS Health event",
        AlarmKind::TrustedAdvisor => "a Trusted Advisor check",
        AlarmKind::Alertmanager => "an Alertmanager or Grafana alert",
    };
    format!("{what} has no single metric to draw")
}

/// The graph of a metric alarm, or why there is none.
pub fn render(alarm: &Alarm) -> Result<Attachment, String> {
    if alarm.kind != AlarmKind::Metric {
        return Err(no_single_metric(alarm.kind));
    }
    let raw = &alarm.raw;
    let threshold = raw["Trigger"]["Threshold"].as_f64();
    let reason = raw["NewStateReason"].as_str().unwrap_or_default();
    let points = datapoints(reason);
    if points.is_empty() {
        return Err("the state reason lists no datapoints to draw".into());
    }
    let png = draw(&points, threshold).map_err(|e| format!("drawing failed: {e}"))?;
    let metric = raw["Trigger"]["MetricName"].as_str().unwrap_or("metric");
    Ok(Attachment {
        file_name: format!("{}-{metric}.png", sanitize(&alarm.name)),
        data: png,
    })
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect()
}

fn draw(points: &[(NaiveDateTime, f64)], threshold: Option<f64>) -> Result<Vec<u8>, String> {
    let t0 = points[0].0;
    let secs = |t: &NaiveDateTime| (*t - t0).num_seconds() as f64;
    let x_max = secs(&points[points.len() - 1].0).max(60.0);
    let values = points.iter().map(|(_, v)| *v).chain(threshold);
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((hi - lo) * 0.15).max(1.0);
    let (y0, y1) = ((lo - pad).min(0.0_f64.max(lo - pad)), hi + pad);

    let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin(24)
            .build_cartesian_2d(-x_max * 0.05..x_max * 1.05, y0..y1)
            .map_err(|e| e.to_string())?;
        // Axes, drawn as lines: no fonts are needed (and none are bundled).
        let axis = BLACK.mix(0.6);
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-x_max * 0.05, y0), (x_max * 1.05, y0)],
                axis,
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(-x_max * 0.05, y0), (-x_max * 0.05, y1)],
                axis,
            )))
            .map_err(|e| e.to_string())?;
        if let Some(t) = threshold {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(-x_max * 0.05, t), (x_max * 1.05, t)],
                    RED.stroke_width(2),
                )))
                .map_err(|e| e.to_string())?;
        }
        // The moment it fired: the newest datapoint, which crossed the threshold.
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_max, y0), (x_max, y1)],
                RGBColor(255, 140, 0).stroke_width(2),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|(t, v)| (secs(t), *v)),
                BLUE.stroke_width(3),
            ))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(t, v)| Circle::new((secs(t), *v), 4, BLUE.filled())),
            )
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&buf).map_err(|e| e.to_string())?;
    }
    Ok(png)
}

/// Draws an alarm's graph: the trait the case logic holds, so the aws backend can ask
/// CloudWatch for the real metric while the embedded default draws the alarm's own data.
#[async_trait::async_trait]
pub trait Grapher: Send + Sync {
    /// The graph, or why there is none. Never blocks a case: the caller writes the reason
    /// into the case instead.
    async fn graph(&self, alarm: &Alarm) -> Result<Attachment, String>;
}

/// Draws nothing (`GRAPHS=off`).
pub struct NoGrapher;

#[async_trait::async_trait]
impl Grapher for NoGrapher {
    async fn graph(&self, _alarm: &Alarm) -> Result<Attachment, String> {
        Err("graphs are off (GRAPHS=off)".into())
    }
}

/// Draws from the alarm itself ([`render`]).
pub struct LocalGrapher;

#[async_trait::async_trait]
impl Grapher for LocalGrapher {
    async fn graph(&self, alarm: &Alarm) -> Result<Attachment, String> {
        render(alarm)
    }
}

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
pub fn widget(alarm: &Alarm) -> Result<Value, String> {
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
        return Err(no_single_metric(alarm.kind));
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
    async fn graph(&self, alarm: &Alarm) -> Result<Attachment, String> {
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
            Ok(Err(e)) => format!("GetMetricWidgetImage: {}", crate::errors::describe(&e)),
            Err(_) => "GetMetricWidgetImage took longer than 5 s".to_owned(),
        };
        tracing::warn!(alarm = %alarm.name, reason = %why, "CloudWatch could not draw the graph; drawing the alarm's own datapoints");
        render(alarm).map_err(|local| format!("{why}; and {local}"))
    }
}

/// The alarm's metric as CloudWatch names it, for the case text.
pub fn metric_label(raw: &Value) -> Option<String> {
    let t = &raw["Trigger"];
    Some(format!(
        "{} {} ({} over {} s)",
        t["Namespace"].as_str()?,
        t["MetricName"].as_str()?,
        t["Statistic"].as_str().unwrap_or("?"),
        t["Period"].as_u64().unwrap_or(0)
    ))
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
    fn datapoints_are_read_from_the_state_reason() {
        let a = fixture("metric-alarm.json");
        let points = datapoints(a.raw["NewStateReason"].as_str().expect("reason"));
        assert_eq!(points.len(), 5);
        assert_eq!(points[0].1, 6.0, "oldest first");
        assert_eq!(points[4].1, 7.2);
        assert!(datapoints("Threshold Crossed: no datapoints were received").is_empty());
    }

    #[test]
    fn a_metric_alarm_is_drawn_as_a_png_a_decoder_reads() {
        let a = fixture("metric-alarm.json");
        let png = render(&a).expect("drawn");
        assert!(
            png.file_name.ends_with("HTTPCode_Target_5XX_Count.png"),
            "{}",
            png.file_name
        );
        let decoder = png::Decoder::new(std::io::Cursor::new(&png.data));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).expect("frame");
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        // Not a blank image: the threshold (red) and the series (blue) are in it.
        let rgb: Vec<&[u8]> = pixels.chunks(3).collect();
        assert!(
            rgb.iter().any(|p| p[0] > 200 && p[1] < 60 && p[2] < 60),
            "red threshold"
        );
        assert!(
            rgb.iter().any(|p| p[2] > 200 && p[0] < 60 && p[1] < 60),
            "blue series"
        );
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

    #[test]
    fn other_alarms_say_why_there_is_no_graph() {
        let e = render(&fixture("composite-alarm.json")).expect_err("no graph");
        assert_eq!(e, "a composite alarm has no single metric to draw");
        let e = render(&fixture("minimal.json")).expect_err("no graph");
        assert_eq!(e, "a three-key alarm has no single metric to draw");
    }
}
