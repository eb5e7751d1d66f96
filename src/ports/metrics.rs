//! What is counted: one event per handled request (cases logged and updated, duplicates,
//! suppressions, rejections), handed to a sink that must never slow or fail a request. On
//! AWS the sink publishes CloudWatch metrics in batches; locally nothing is published.

/// The counters, named as the original service's CloudWatch metrics (`Case/Logged`,
/// `Case/Updated`, namespace `Support`) plus this service's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    CaseLogged,
    CaseUpdated,
    CaseCoalesced,
    CaseRecovered,
    /// Folded into the storm case.
    CaseFolded,
    Ignored,
    Suppressed,
    Duplicate,
    /// A request refused as bad input, unauthenticated or forged (4xx).
    Rejected,
    /// A request that failed and will be retried (5xx).
    Failed,
    /// The periodic `reconcile` ran: the heartbeat an alarm watches (none for 30 minutes
    /// means the service is down or stuck).
    Reconciled,
    /// A notice (case opened, AWS replied, ...) that could not be sent to a sink.
    NotifyFailed,
    /// A page was opened for an alarm.
    PageOpened,
    /// A page's message was handed to its channel.
    PageMessageSent,
    /// A page's message failed (tried again, or given up).
    PageMessageFailed,
    /// A page was escalated to its next stage (by its policy, or by hand).
    PageEscalated,
    /// Someone acknowledged a page.
    PageAcknowledged,
    /// Every stage of a page's policy went unanswered.
    PageUnanswered,
}

impl Event {
    pub const ALL: [Event; 18] = [
        Self::CaseLogged,
        Self::CaseUpdated,
        Self::CaseCoalesced,
        Self::CaseRecovered,
        Self::CaseFolded,
        Self::Ignored,
        Self::Suppressed,
        Self::Duplicate,
        Self::Rejected,
        Self::Failed,
        Self::Reconciled,
        Self::NotifyFailed,
        Self::PageOpened,
        Self::PageMessageSent,
        Self::PageMessageFailed,
        Self::PageEscalated,
        Self::PageAcknowledged,
        Self::PageUnanswered,
    ];

    pub fn metric_name(self) -> &'static str {
        match self {
            Self::CaseLogged => "Case/Logged",
            Self::CaseUpdated => "Case/Updated",
            Self::CaseCoalesced => "Case/Coalesced",
            Self::CaseRecovered => "Case/Recovered",
            Self::CaseFolded => "Case/Folded",
            Self::Ignored => "Delivery/Ignored",
            Self::Suppressed => "Delivery/Suppressed",
            Self::Duplicate => "Delivery/Duplicate",
            Self::Rejected => "Delivery/Rejected",
            Self::Failed => "Delivery/Failed",
            Self::Reconciled => "Task/Reconciled",
            Self::NotifyFailed => "Notify/Failed",
            Self::PageOpened => "Page/Opened",
            Self::PageMessageSent => "Page/MessageSent",
            Self::PageMessageFailed => "Page/MessageFailed",
            Self::PageEscalated => "Page/Escalated",
            Self::PageAcknowledged => "Page/Acknowledged",
            Self::PageUnanswered => "Page/Unanswered",
        }
    }
}

/// What is measured (issue 29's KPIs, as they happen): a duration in seconds per
/// occurrence, published as a statistic set (count, sum, minimum, maximum) per interval, so
/// that a dashboard can show the average and the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Measure {
    /// From a page's opening to its first acknowledgement.
    TimeToAcknowledge,
    /// From a case's opening to AWS Support's first reply on it.
    TimeToFirstReply,
}

impl Measure {
    pub const ALL: [Measure; 2] = [Self::TimeToAcknowledge, Self::TimeToFirstReply];

    pub fn metric_name(self) -> &'static str {
        match self {
            Self::TimeToAcknowledge => "Page/TimeToAcknowledge",
            Self::TimeToFirstReply => "Case/TimeToFirstReply",
        }
    }
}

/// Where events go. `record` and `observe` must return at once.
pub trait MetricsSink: Send + Sync {
    fn record(&self, event: Event);
    /// One occurrence of a measure, in seconds.
    fn observe(&self, _measure: Measure, _seconds: f64) {}
}

/// Counts nothing (the local backend, or `METRICS=off`).
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn record(&self, _event: Event) {}
}
