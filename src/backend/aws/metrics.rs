//! CloudWatch metrics, published off the request path: `record` only bumps a counter and
//! `observe` folds a duration into its interval's statistic set; a background task sends
//! them with PutMetricData once a minute and when the service stops. A failed publish is
//! logged and dropped, never retried into a growing backlog.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit, StatisticSet};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::backend::aws::describe;
use crate::ports::metrics::{Event, Measure, MetricsSink};

/// The original service's namespace.
pub const NAMESPACE: &str = "Support";

/// One interval's occurrences of a measure: as CloudWatch takes them in one datum.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stat {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Stat {
    fn add(this: Option<Self>, x: f64) -> Self {
        match this {
            None => Self {
                count: 1,
                sum: x,
                min: x,
                max: x,
            },
            Some(s) => Self {
                count: s.count + 1,
                sum: s.sum + x,
                min: s.min.min(x),
                max: s.max.max(x),
            },
        }
    }
}

/// What waits to be published.
#[derive(Default)]
struct Batch {
    counts: BTreeMap<Event, u64>,
    measures: BTreeMap<Measure, Stat>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.measures.is_empty()
    }
}

pub struct CloudWatchMetrics {
    counts: Arc<Mutex<Batch>>,
    stop: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl CloudWatchMetrics {
    pub fn start(client: Client, every: Duration) -> Self {
        let counts: Arc<Mutex<Batch>> = Arc::default();
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(publish_loop(client, counts.clone(), stop.clone(), every));
        Self {
            counts,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Publishes what is left and stops the background task.
    pub async fn close(&self) {
        self.stop.notify_one();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl MetricsSink for CloudWatchMetrics {
    fn record(&self, event: Event) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counts
            .entry(event)
            .or_default() += 1;
    }

    fn observe(&self, measure: Measure, seconds: f64) {
        if !seconds.is_finite() {
            return;
        }
        let mut batch = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let stat = Stat::add(batch.measures.get(&measure).copied(), seconds.max(0.0));
        batch.measures.insert(measure, stat);
    }
}

async fn publish_loop(
    client: Client,
    counts: Arc<Mutex<Batch>>,
    stop: Arc<Notify>,
    every: Duration,
) {
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.notified() => true,
        };
        let batch = std::mem::take(&mut *counts.lock().unwrap_or_else(|p| p.into_inner()));
        if !batch.is_empty() {
            publish(&client, batch).await;
        }
        if stopping {
            return;
        }
    }
}

async fn publish(client: &Client, batch: Batch) {
    let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
    let mut data: Vec<MetricDatum> = batch
        .counts
        .into_iter()
        .map(|(event, count)| {
            MetricDatum::builder()
                .metric_name(event.metric_name())
                .value(count as f64)
                .unit(StandardUnit::Count)
                .timestamp(now)
                .build()
        })
        .collect();
    data.extend(batch.measures.into_iter().map(|(measure, s)| {
        MetricDatum::builder()
            .metric_name(measure.metric_name())
            .statistic_values(
                StatisticSet::builder()
                    .sample_count(s.count as f64)
                    .sum(s.sum)
                    .minimum(s.min)
                    .maximum(s.max)
                    .build(),
            )
            .unit(StandardUnit::Seconds)
            .timestamp(now)
            .build()
    }));
    let n = data.len();
    if let Err(e) = client
        .put_metric_data()
        .namespace(NAMESPACE)
        .set_metric_data(Some(data))
        .send()
        .await
    {
        warn!(metrics = n, error = %describe(&e), "could not publish CloudWatch metrics; dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::Stat;

    #[test]
    fn a_statistic_set_keeps_count_sum_and_extremes() {
        let s = [60.0, 5.0, 300.0]
            .into_iter()
            .fold(None, |s, x| Some(Stat::add(s, x)));
        assert_eq!(
            s,
            Some(Stat {
                count: 3,
                sum: 365.0,
                min: 5.0,
                max: 300.0
            })
        );
    }
}
