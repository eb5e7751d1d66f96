//! The graph drawn from the alarm itself: its own datapoints, as CloudWatch lists them in
//! the state reason, its threshold, and the moment it fired (the embedded default's dry-run
//! desk keeps the PNG it would attach, so a newcomer sees the picture; the aws backend falls
//! back to it when CloudWatch cannot draw).

use chrono::NaiveDateTime;
use plotters::prelude::*;

use crate::domain::alarm::{Alarm, AlarmKind};
use crate::errors::BoxError;
use crate::ports::PortError;
use crate::ports::graph::{Attachment, Grapher};

/// The picture's size, the same as CloudWatch's widget.
pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 300;

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
pub(crate) fn no_single_metric(kind: AlarmKind) -> String {
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
pub fn render(alarm: &Alarm) -> Result<Attachment, PortError> {
    if alarm.kind != AlarmKind::Metric {
        return Err(no_single_metric(alarm.kind).into());
    }
    let raw = &alarm.raw;
    let threshold = raw["Trigger"]["Threshold"].as_f64();
    let reason = raw["NewStateReason"].as_str().unwrap_or_default();
    let points = datapoints(reason);
    if points.is_empty() {
        return Err("the state reason lists no datapoints to draw".into());
    }
    let png = draw(&points, threshold)
        .map_err(|e| PortError::caused(format!("drawing failed: {e}"), e))?;
    let metric = raw["Trigger"]["MetricName"].as_str().unwrap_or("metric");
    Ok(Attachment {
        file_name: format!("{}-{metric}.png", sanitize(&alarm.name)),
        data: png,
    })
}

pub(crate) fn sanitize(name: &str) -> String {
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

fn draw(points: &[(NaiveDateTime, f64)], threshold: Option<f64>) -> Result<Vec<u8>, BoxError> {
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
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(24)
            .build_cartesian_2d(-x_max * 0.05..x_max * 1.05, y0..y1)?;
        // Axes, drawn as lines: no fonts are needed (and none are bundled).
        let axis = BLACK.mix(0.6);
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(-x_max * 0.05, y0), (x_max * 1.05, y0)],
            axis,
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(-x_max * 0.05, y0), (-x_max * 0.05, y1)],
            axis,
        )))?;
        if let Some(t) = threshold {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(-x_max * 0.05, t), (x_max * 1.05, t)],
                RED.stroke_width(2),
            )))?;
        }
        // The moment it fired: the newest datapoint, which crossed the threshold.
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x_max, y0), (x_max, y1)],
            RGBColor(255, 140, 0).stroke_width(2),
        )))?;
        chart.draw_series(LineSeries::new(
            points.iter().map(|(t, v)| (secs(t), *v)),
            BLUE.stroke_width(3),
        ))?;
        chart.draw_series(
            points
                .iter()
                .map(|(t, v)| Circle::new((secs(t), *v), 4, BLUE.filled())),
        )?;
        root.present()?;
    }
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&buf)?;
    }
    Ok(png)
}

/// Draws from the alarm itself ([`render`]).
pub struct LocalGrapher;

#[async_trait::async_trait]
impl Grapher for LocalGrapher {
    async fn graph(&self, alarm: &Alarm) -> Result<Attachment, PortError> {
        render(alarm)
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
    fn other_alarms_say_why_there_is_no_graph() {
        let e = render(&fixture("composite-alarm.json")).expect_err("no graph");
        assert_eq!(
            e.to_string(),
            "a composite alarm has no single metric to draw"
        );
        let e = render(&fixture("minimal.json")).expect_err("no graph");
        assert_eq!(
            e.to_string(),
            "a three-key alarm has no single metric to draw"
        );
    }
}
