//! The "I'm fixing it" mode: maintenance windows. While a window is active, alarms it matches
//! are recorded as `suppressed` with the window's reason instead of calling anyone; an alarm
//! still in ALARM when its window ends raises its case then (the periodic task does it).
//! Windows are kept in the config store, next to the per-alarm settings.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenanceWindow {
    pub id: String,
    pub reason: String,
    /// Alarm names it covers: `*` matches any run of characters, `?` one; None covers all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_pattern: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

impl MaintenanceWindow {
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && now < self.ends_at
    }

    pub fn covers(&self, alarm_name: &str) -> bool {
        self.alarm_pattern
            .as_deref()
            .is_none_or(|p| glob_match(p, alarm_name))
    }

    /// Says why an alarm is suppressed, for the ledger.
    pub fn describe(&self) -> String {
        format!(
            "maintenance window {}: {} (until {})",
            self.id,
            self.reason,
            self.ends_at.format("%Y-%m-%dT%H:%M:%SZ")
        )
    }
}

/// The active window covering this alarm that ends last, if any.
pub fn covering<'a>(
    windows: &'a [MaintenanceWindow],
    alarm_name: &str,
    now: DateTime<Utc>,
) -> Option<&'a MaintenanceWindow> {
    windows
        .iter()
        .filter(|w| w.active_at(now) && w.covers(alarm_name))
        .max_by_key(|w| w.ends_at)
}

/// Glob matching with `*` and `?`, iterative (no recursion, so no pathological stack use),
/// linear in practice: the classic backtrack-to-last-star algorithm.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("prod-*", "prod-db-cpu"));
        assert!(glob_match("*-cpu", "prod-db-cpu"));
        assert!(glob_match("prod-?b-*", "prod-db-cpu"));
        assert!(glob_match("prod-db-cpu", "prod-db-cpu"));
        assert!(!glob_match("prod-*", "staging-db"));
        assert!(!glob_match("prod-db", "prod-db-cpu"));
        assert!(glob_match("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob_match("*a*b*c*d", "xxaxxbxxcxx"));
        // No blow-up on adversarial input.
        let text = "a".repeat(5000);
        assert!(!glob_match(&format!("{}b", "*a".repeat(50)), &text));
    }

    #[test]
    fn windows_cover_by_time_and_pattern() {
        let now = Utc::now();
        let w = |id: &str, pattern: Option<&str>, from: i64, to: i64| MaintenanceWindow {
            id: id.into(),
            reason: "db upgrade".into(),
            alarm_pattern: pattern.map(str::to_owned),
            starts_at: now + chrono::Duration::minutes(from),
            ends_at: now + chrono::Duration::minutes(to),
        };
        let windows = vec![
            w("all-later", None, 10, 20),
            w("db", Some("prod-db-*"), -5, 30),
            w("db-long", Some("prod-db-*"), -5, 90),
            w("past", None, -60, -1),
        ];
        assert_eq!(
            covering(&windows, "prod-db-cpu", now).map(|w| w.id.as_str()),
            Some("db-long")
        );
        assert_eq!(covering(&windows, "prod-api", now), None);
        assert!(w("x", None, 0, 1).describe().contains("db upgrade"));
    }
}
