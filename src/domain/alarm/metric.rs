//! What an alarm watched, in words, for the case text.

use serde_json::Value;

use super::Alarm;

impl Alarm {
    /// The alarm's metric as CloudWatch names it (`AWS/ApplicationELB HTTPCode_Target_5XX_Count
    /// (Sum over 60 s)`), when the alarm carries a single-metric trigger.
    pub fn metric_label(&self) -> Option<String> {
        metric_label(&self.raw)
    }
}

fn metric_label(raw: &Value) -> Option<String> {
    let t = &raw["Trigger"];
    Some(format!(
        "{} {} ({} over {} s)",
        t["Namespace"].as_str()?,
        t["MetricName"].as_str()?,
        t["Statistic"].as_str().unwrap_or("?"),
        t["Period"].as_u64().unwrap_or(0)
    ))
}
