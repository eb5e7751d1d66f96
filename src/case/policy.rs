//! The service-wide rules the case logic follows (cooldowns, storm cap, flap limits, which
//! AWS Health events matter), set once from the configuration.

use std::time::Duration;

use crate::domain::alarm::Alarm;

/// The service-wide rules the case logic follows.
#[derive(Debug, Clone)]
pub struct CasePolicy {
    /// At most one "it happened again" communication per alarm within this time.
    pub update_cooldown: Duration,
    /// Add a short note to the open case when its alarm returns to OK.
    pub recovery_note: bool,
    /// Resolve the case when its alarm returns to OK (off: a person closes it).
    pub close_on_recovery: bool,
    pub default_service_code: String,
    pub default_category_code: String,
    /// The lease of a claim to open a case: renewed every third of it while CreateCase is
    /// in flight, so a claim whose owner died lapses (and is taken over) within it.
    pub claim_ttl: Duration,
    /// How long a delivery waits for another one (on this instance or another) that is
    /// opening the same alarm's case, before answering 503. At most the request timeout.
    pub busy_wait: Duration,
    /// New cases per hour before further new alarms are folded into one storm case. AWS
    /// Support allows about ten per hour; the storm case itself needs one of them.
    pub storm_cap: usize,
    /// Which AWS Health events are worth a case.
    pub health: HealthFilter,
    /// More than this many ALARM → OK → ALARM cycles within `flap_window` and the alarm
    /// is flapping: one communication says so, further cycles are only counted.
    pub flap_limit: usize,
    pub flap_window: Duration,
    /// How long a handled delivery or event is remembered as handled (`IDEMPOTENCY_TTL`):
    /// the in-memory answer to a redelivery never outlives the ledger's.
    pub remember_handled: Duration,
    /// Account id → the role assumed to open that account's cases (`ACCOUNT_ROLES`).
    pub account_roles: std::collections::BTreeMap<String, String>,
    /// The service's own account (STS, on the aws backend), whose alarms it serves with its
    /// own credentials; unknown (the local backend), every account is taken as served.
    pub own_account: Option<String>,
    /// The support plan's promised time to AWS's first reply, per severity
    /// (`SUPPORT_REPLY_TARGETS`), for the report.
    pub reply_targets: super::report::ReplyTargets,
}

impl CasePolicy {
    /// Whether an alarm from `account` may open anything: the service's own account, or one
    /// `ACCOUNT_ROLES` names (its cases are opened there, with that role). Any other account
    /// would have its case opened with the wrong credentials, in the wrong account.
    pub fn serves(&self, account: &str) -> bool {
        self.account_roles.contains_key(account)
            || self.own_account.as_deref().is_none_or(|own| own == account)
    }
}

/// Which AWS Health events are worth a case: by category (`issue` by default: scheduled
/// changes and account notifications are not incidents), service and region. An empty
/// list lets everything through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthFilter {
    pub categories: Vec<String>,
    pub services: Vec<String>,
    pub regions: Vec<String>,
}

impl Default for HealthFilter {
    fn default() -> Self {
        Self {
            categories: vec!["issue".into()],
            services: Vec::new(),
            regions: Vec::new(),
        }
    }
}

impl HealthFilter {
    /// Why the event is filtered out, or None when it passes.
    pub fn refuses(&self, alarm: &Alarm) -> Option<String> {
        let detail = alarm.raw.get("detail");
        let field = |k: &str| {
            detail
                .and_then(|d| d.get(k))
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let region = match field("eventRegion") {
            r if r.is_empty() => alarm.raw["region"].as_str().unwrap_or_default().to_owned(),
            r => r,
        };
        for (what, value, allowed) in [
            ("category", field("eventTypeCategory"), &self.categories),
            ("service", field("service"), &self.services),
            ("region", region, &self.regions),
        ] {
            if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
                return Some(format!(
                    "AWS Health event {what} {value:?} is not in HEALTH_{}S ({})",
                    match what {
                        "category" => "CATEGORIE",
                        "service" => "SERVICE",
                        _ => "REGION",
                    },
                    allowed.join(",")
                ));
            }
        }
        None
    }
}

impl Default for CasePolicy {
    fn default() -> Self {
        Self {
            claim_ttl: Duration::from_secs(15),
            // REQUEST_TIMEOUT's default: waiting for concurrent work on the same alarm
            // fits in the request's time (`cli::tests` holds the two together).
            busy_wait: Duration::from_secs(60),
            update_cooldown: Duration::from_secs(600),
            recovery_note: true,
            close_on_recovery: false,
            default_service_code: "amazon-elastic-compute-cloud-linux".into(),
            default_category_code: "other".into(),
            storm_cap: 8,
            health: HealthFilter::default(),
            flap_limit: 3,
            flap_window: Duration::from_secs(3600),
            remember_handled: Duration::from_secs(15 * 86_400),
            account_roles: Default::default(),
            own_account: None,
            reply_targets: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_account_and_mapped_ones_are_served_and_no_other() {
        let mut p = CasePolicy {
            own_account: Some("123456789012".into()),
            ..CasePolicy::default()
        };
        p.account_roles.insert(
            "444455556666".into(),
            "arn:aws:iam::444455556666:role/cw-support".into(),
        );
        assert!(p.serves("123456789012"));
        assert!(p.serves("444455556666"));
        assert!(!p.serves("999988887777"));
        // Unknown own account (the local backend): every account.
        p.own_account = None;
        assert!(p.serves("999988887777"));
    }
}
