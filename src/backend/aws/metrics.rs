//! CloudWatch metrics, published off the request path: `record` only bumps a counter; a
//! background task sends the counts with PutMetricData once a minute and when the service
//! stops. A failed publish is logged and dropped, never retried into a growing backlog.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::backend::aws::describe;
use crate::ports::metrics::{Event, MetricsSink};

/// The original service's namespace.
pub const NAMESPACE: &str = "Support";

pub struct CloudWatchMetrics {
    counts: Arc<Mutex<BTreeMap<Event, u64>>>,
    stop: Arc<Notify>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl CloudWatchMetrics {
    pub fn start(client: Client, every: Duration) -> Self {
        let counts: Arc<Mutex<BTreeMap<Event, u64>>> = Arc::default();
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
            .entry(event)
            .or_default() += 1;
    }
}

async fn publish_loop(
    client: Client,
    counts: Arc<Mutex<BTreeMap<Event, u64>>>,
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

async fn publish(client: &Client, batch: BTreeMap<Event, u64>) {
    let now = aws_sdk_cloudwatch::primitives::DateTime::from(std::time::SystemTime::now());
    let data: Vec<MetricDatum> = batch
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
