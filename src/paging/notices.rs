//! People told: what the service did about a case, sent to the team, not only to AWS
//! Support's cc list.
//!
//! Nothing is lost: a [`Notice`] is written to the ledger's outbox in the same transaction as
//! the decision it reports (or on its own, durably, when there is no decision), before the
//! delivery is answered. [`Notifier::deliver_until`] (run by `serve` and `consume`) takes what
//! is due from the outbox, leased so that one instance of a fleet sends it, sends it to every
//! sink at once, and records the outcome: delivered, tried again later (`NOTIFY_RETRY`,
//! doubled, three attempts per sink), or failed (counted as `Notify/Failed` and visible in
//! `cases show`). What was queued when a process stopped is sent after the restart, or by
//! another instance. Sinks: an SNS topic (`NOTIFY_TOPIC_ARN`, `backend::aws::sns`), a
//! Slack-compatible incoming webhook (`NOTIFY_WEBHOOK_URL`, [`webhook`]), and on the
//! embedded default the local notice log itself (`cases show` lists what would have been
//! sent).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tracing::warn;

use crate::domain::notice::{Notice, STORM_NAMES, excerpt};
use crate::ports::ledger::LedgerError;
use crate::ports::metrics::{Event, MetricsSink};
use crate::ports::notify::{NoticeSink, Outbox, Queued};

/// Attempts per notice before it is given up as failed.
const ATTEMPTS: u32 = 3;
/// How long a notice taken from the outbox is this instance's to send: the sinks' bound
/// (15 s) and reading AWS's reply fit in it; if the instance dies meanwhile, another sends
/// the notice once it lapses.
const LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// How often the outbox is looked at when nothing wakes the sender.
const POLL: Duration = Duration::from_millis(500);
/// Notices sent at once.
const AT_ONCE: usize = 32;
/// Notices taken from the outbox in one round: more than are sent at once, so that a storm's
/// notices due together are told as one message.
const TAKE: usize = 256;

/// Queues notices in the outbox and, where the process sends them (`serve`, `consume`),
/// delivers them.
#[derive(Clone)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    outbox: Arc<dyn Outbox>,
    sinks: Vec<Arc<dyn NoticeSink>>,
    metrics: Arc<dyn MetricsSink>,
    retry: Duration,
    /// Reads AWS's reply for a `Replied` notice, off the request path.
    replies: Option<Arc<dyn crate::ports::desk::SupportDesk>>,
    wake: tokio::sync::Notify,
}

impl Notifier {
    /// Tells nobody.
    pub fn none() -> Self {
        Self { inner: None }
    }

    /// Notices queued in `outbox` for these sinks; `retry` is the first pause between
    /// attempts (doubled, three attempts in all). Nothing is sent until
    /// [`Notifier::deliver_until`] runs.
    pub fn new(
        outbox: Arc<dyn Outbox>,
        sinks: Vec<Arc<dyn NoticeSink>>,
        metrics: Arc<dyn MetricsSink>,
        retry: Duration,
        replies: Option<Arc<dyn crate::ports::desk::SupportDesk>>,
    ) -> Self {
        if sinks.is_empty() {
            return Self::none();
        }
        Self {
            inner: Some(Arc::new(Inner {
                outbox,
                sinks,
                metrics,
                retry,
                replies,
                wake: tokio::sync::Notify::new(),
            })),
        }
    }

    /// Whether anyone is told at all (no sinks: notices are not even queued).
    pub fn is_on(&self) -> bool {
        self.inner.is_some()
    }

    /// Queues notices no decision carries, durably; the sender is woken.
    pub async fn enqueue(&self, notices: Vec<Notice>) -> Result<(), LedgerError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        inner.outbox.enqueue(notices).await?;
        inner.wake.notify_one();
        Ok(())
    }

    /// Something was queued (with a decision): look now rather than at the next poll.
    pub fn wake(&self) {
        if let Some(inner) = &self.inner {
            inner.wake.notify_one();
        }
    }

    /// Sends what the outbox holds, until `stop`: notices being sent then are finished, the
    /// rest stay queued for the next start (or another instance).
    pub async fn deliver_until(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let Some(inner) = self.inner.clone() else {
            return;
        };
        loop {
            if *stop.borrow() {
                return;
            }
            let now = Utc::now();
            let due = match inner.outbox.take_due(now, now + LEASE, TAKE).await {
                Ok(due) => due,
                Err(e) => {
                    warn!(error = %crate::errors::Chain(&e), "could not read the notice outbox");
                    Vec::new()
                }
            };
            let busy = !due.is_empty();
            let mut sending = tokio::task::JoinSet::new();
            for batch in batches(due) {
                while sending.len() >= AT_ONCE {
                    sending.join_next().await;
                }
                let inner = inner.clone();
                sending.spawn(async move { inner.deliver(batch).await });
            }
            while sending.join_next().await.is_some() {}
            if busy {
                continue;
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// What one message tells: one notice, or several `Folded` ones about the same storm case
/// (with the same sinks still to be told) as one [`Notice::Storm`]. Each member's outcome is
/// recorded as its own.
#[derive(Debug)]
struct Batch {
    notice: Notice,
    members: Vec<Queued>,
}

/// The notices taken together, as messages: each storm case's folded alarms in one, every
/// other notice alone, in the order taken.
fn batches(due: Vec<Queued>) -> Vec<Batch> {
    let mut out: Vec<Batch> = Vec::new();
    for queued in due {
        if let Notice::Folded { case_id, .. } = &queued.notice {
            let same = out.iter_mut().find(|b| {
                b.members[0].pending == queued.pending
                    && matches!(&b.members[0].notice,
                        Notice::Folded { case_id: other, .. } if other == case_id)
            });
            if let Some(batch) = same {
                batch.members.push(queued);
                continue;
            }
        }
        out.push(Batch {
            notice: queued.notice.clone(),
            members: vec![queued],
        });
    }
    for batch in &mut out {
        if batch.members.len() > 1
            && let Notice::Folded { case_id, .. } = &batch.notice
        {
            let names = batch.members.iter().filter_map(|m| match &m.notice {
                Notice::Folded { alarm, .. } => Some(alarm.clone()),
                _ => None,
            });
            batch.notice = Notice::Storm {
                case_id: case_id.clone(),
                alarms: names.take(STORM_NAMES).collect(),
                more: batch.members.len().saturating_sub(STORM_NAMES),
            };
        }
    }
    out
}

impl Inner {
    /// One round for one message: every sink still pending at once, then the outcome
    /// recorded for each notice it tells.
    async fn deliver(&self, mut batch: Batch) {
        if let Notice::Replied {
            case_id,
            excerpt: excerpt @ None,
            ..
        } = &mut batch.notice
            && let Some(desk) = &self.replies
        {
            match desk.latest_reply(case_id).await {
                Ok(body) => *excerpt = body.as_deref().map(self::excerpt),
                Err(e) => warn!(error = %crate::errors::Chain(&e), "could not read AWS's reply"),
            }
        }
        // Members of a batch share their pending sinks (see `batches`).
        let pending: Vec<&Arc<dyn NoticeSink>> = match &batch.members[0].pending {
            Some(names) => self
                .sinks
                .iter()
                .filter(|s| names.iter().any(|n| n == s.name()))
                .collect(),
            None => self.sinks.iter().collect(),
        };
        let tries = pending.iter().map(|sink| {
            let notice = &batch.notice;
            async move {
                let sent = tokio::time::timeout(Duration::from_secs(15), sink.send(notice))
                    .await
                    .unwrap_or_else(|_| Err("no answer within 15 s".into()));
                (sink.name(), sent)
            }
        });
        let results = futures_join_all(tries).await;
        let failed: Vec<(&str, String)> = results
            .into_iter()
            .filter_map(|(name, r)| r.err().map(|e| (name, e.to_string())))
            .collect();
        for queued in &batch.members {
            self.record(queued, &failed).await;
        }
    }

    /// The outcome of one notice's round: delivered, tried again later, or failed.
    async fn record(&self, queued: &Queued, failed: &[(&str, String)]) {
        let outcome = if failed.is_empty() {
            self.outbox.delivered(&queued.id).await
        } else {
            let attempts = queued.attempts + 1;
            let names: Vec<String> = failed.iter().map(|(n, _)| (*n).to_owned()).collect();
            let error = failed
                .iter()
                .map(|(n, e)| format!("{n}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            if attempts >= ATTEMPTS {
                warn!(notice = ?queued.notice, error = %error, "a notice could not be sent; recorded as failed");
                for _ in failed {
                    self.metrics.record(Event::NotifyFailed);
                }
                self.outbox.failed(&queued.id, names, error).await
            } else {
                warn!(attempt = attempts, error = %error, "notice not sent; trying again");
                // NOTIFY_RETRY, doubling: the outbox keeps when, so a restart keeps it too.
                let pause =
                    crate::retry::Backoff::new(self.retry, 2, Duration::MAX).after(attempts);
                let next =
                    Utc::now() + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::MAX);
                self.outbox
                    .retry(&queued.id, names, attempts, next, error)
                    .await
            }
        };
        if let Err(e) = outcome {
            // The lease lapses and the notice is taken again: sent twice rather than lost.
            warn!(error = %crate::errors::Chain(&e), "could not record a notice's delivery");
        }
    }
}

/// Runs the futures together and keeps their results in order (the sinks of one notice are
/// told at once, so one slow sink does not hold the others back).
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: &str, notice: Notice, pending: Option<Vec<String>>) -> Queued {
        Queued {
            id: id.into(),
            notice,
            attempts: 0,
            pending,
        }
    }

    fn folded(case_id: &str, alarm: &str) -> Notice {
        Notice::Folded {
            case_id: case_id.into(),
            alarm: alarm.into(),
        }
    }

    #[test]
    fn a_storms_folded_alarms_are_told_in_one_message() {
        let mut due = vec![queued(
            "o",
            Notice::Failed {
                alarm: "x".into(),
                reason: "r".into(),
            },
            None,
        )];
        for i in 0..25 {
            due.push(queued(
                &format!("s{i}"),
                folded("storm-1", &format!("a{i}")),
                None,
            ));
        }
        due.push(queued("t", folded("storm-2", "b"), None));
        // Retried for one sink only: not merged with notices every sink is still to hear.
        due.push(queued(
            "w",
            folded("storm-1", "late"),
            Some(vec!["webhook".into()]),
        ));
        let out = batches(due);
        let ids: Vec<Vec<&str>> = out
            .iter()
            .map(|b| b.members.iter().map(|m| m.id.as_str()).collect())
            .collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert_eq!(ids[0], ["o"]);
        assert_eq!(ids[1].len(), 25);
        assert_eq!((ids[2].clone(), ids[3].clone()), (vec!["t"], vec!["w"]));
        assert!(
            matches!(out[2].notice, Notice::Folded { .. }),
            "one alone stays as it is"
        );
        let Notice::Storm { alarms, more, .. } = &out[1].notice else {
            panic!("{:?}", out[1].notice)
        };
        assert_eq!((alarms.len(), *more), (STORM_NAMES, 5));
        assert_eq!(alarms[0], "a0");
        let text = out[1].notice.slack_text();
        assert!(
            text.starts_with("Alarm storm: 25 alarms were added to the storm case storm-1")
                && text.contains("a0, a1, a2")
                && text.contains("a19 and 5 more."),
            "{text}"
        );
    }
}
