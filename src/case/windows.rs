//! Starting and stopping maintenance windows, for `maintenance start|stop` and the
//! console's "I'm fixing": the windows are one document, read, changed and saved whole.

use chrono::{DateTime, Utc};

use crate::domain::maintenance::MaintenanceWindow;
use crate::domain::settings::{AlarmConfigStore, StoreError};

/// Windows that ended more than this long ago are dropped when the list is saved.
pub const KEEP_ENDED_WINDOWS: chrono::Duration = chrono::Duration::days(7);

/// Saves a new window, dropping those long ended.
pub async fn start(
    store: &dyn AlarmConfigStore,
    window: MaintenanceWindow,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut windows = store.windows().await?;
    windows.retain(|w| w.ends_at + KEEP_ENDED_WINDOWS > now && w.id != window.id);
    windows.push(window);
    store.save_windows(&windows).await
}

/// Ends the window named, or every active one, now: the ids of those it ended (none: there
/// was nothing to end, and nothing was saved).
pub async fn stop(
    store: &dyn AlarmConfigStore,
    id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut windows = store.windows().await?;
    let mut stopped = Vec::new();
    for w in windows.iter_mut() {
        let chosen = match id {
            Some(id) => w.id == id,
            None => w.active_at(now),
        };
        if chosen && w.ends_at > now {
            w.ends_at = now;
            stopped.push(w.id.clone());
        }
    }
    if !stopped.is_empty() {
        store.save_windows(&windows).await?;
    }
    Ok(stopped)
}

/// A new window's id: milliseconds, so two windows started within one second keep both.
pub fn new_id(now: DateTime<Utc>) -> String {
    format!("mw-{}", now.format("%Y%m%d%H%M%S%3f"))
}
