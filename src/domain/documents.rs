//! The documents kept beside the per-alarm settings, each read and replaced whole (the
//! on-duty file, the console's accounts): where each lives in either store.

/// The documents kept beside the per-alarm settings, each read and replaced whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// People, schedules and escalation policies (`oncall import`).
    OnCall,
    /// The console's local accounts, with their password hashes (`users`).
    Users,
}

impl Document {
    /// Its file in `DATA_DIR` (embedded default).
    pub fn file_name(self) -> &'static str {
        match self {
            Self::OnCall => "oncall.toml",
            Self::Users => "users.json",
        }
    }

    /// Its item in the settings table (aws backend), a name no alarm can have.
    pub fn item(self) -> &'static str {
        match self {
            Self::OnCall => "__oncall__",
            Self::Users => "__users__",
        }
    }

    /// Whether only the service's own user may read it (password hashes).
    pub fn private(self) -> bool {
        matches!(self, Self::Users)
    }
}
