//! The local settings store: per-alarm settings in `DATA_DIR/alarms.json` and maintenance
//! windows beside them in `maintenance.json`. Plain JSON so they can be read and edited by
//! hand; a hand edit is picked up on the next delivery, and every write is atomic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;

use super::WINDOWS_FILE;
use crate::domain::maintenance::MaintenanceWindow;
use crate::domain::settings::Document;
use crate::domain::settings::{AlarmConfigRecord, AlarmConfigStore, StoreError};

type ConfigMap = BTreeMap<String, AlarmConfigRecord>;

/// Per-alarm settings in one JSON object keyed by alarm name.
pub struct LocalConfigFile {
    path: PathBuf,
    /// The parsed file and the modification time it was read at: a storm of one alarm
    /// costs one `stat`, and a hand edit takes effect on the next delivery.
    cache: Mutex<Option<(SystemTime, Arc<ConfigMap>)>>,
}

impl LocalConfigFile {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn load(&self) -> Result<Arc<ConfigMap>, StoreError> {
        let modified = match std::fs::metadata(&self.path) {
            Ok(m) => m.modified()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Arc::new(ConfigMap::new()));
            }
            Err(e) => return Err(e.into()),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, map)) = cache.as_ref().filter(|(at, _)| *at == modified) {
            return Ok(map.clone());
        }
        let text = std::fs::read_to_string(&self.path)?;
        let map: ConfigMap = if text.trim().is_empty() {
            ConfigMap::new()
        } else {
            serde_json::from_str(&text).map_err(|source| StoreError::Corrupt {
                path: self.path.display().to_string(),
                source,
            })?
        };
        let map = Arc::new(map);
        *cache = Some((modified, map.clone()));
        Ok(map)
    }

    fn save(&self, map: &ConfigMap) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(map)
            .map_err(|e| StoreError::backend("the settings", e))?;
        write_atomically(&self.path, &text)?;
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Maintenance windows live beside the settings, in `maintenance.json`.
    fn windows_path(&self) -> PathBuf {
        self.path.with_file_name(WINDOWS_FILE)
    }
}

#[async_trait]
impl AlarmConfigStore for LocalConfigFile {
    async fn get(&self, alarm_name: &str) -> Result<Option<AlarmConfigRecord>, StoreError> {
        Ok(self.load()?.get(alarm_name).cloned())
    }

    async fn put(&self, alarm_name: &str, record: &AlarmConfigRecord) -> Result<(), StoreError> {
        let mut map = (*self.load()?).clone();
        map.insert(alarm_name.to_owned(), record.clone());
        self.save(&map)
    }

    async fn list(&self) -> Result<Vec<(String, AlarmConfigRecord)>, StoreError> {
        Ok(self
            .load()?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn delete(&self, alarm_name: &str) -> Result<bool, StoreError> {
        let mut map = (*self.load()?).clone();
        let existed = map.remove(alarm_name).is_some();
        if existed {
            self.save(&map)?;
        }
        Ok(existed)
    }

    async fn windows(&self) -> Result<Vec<MaintenanceWindow>, StoreError> {
        let path = self.windows_path();
        match std::fs::read_to_string(&path) {
            Ok(text) if text.trim().is_empty() => Ok(Vec::new()),
            Ok(text) => serde_json::from_str::<Vec<serde_json::Value>>(&text)
                .map(crate::domain::maintenance::usable)
                .map_err(|source| StoreError::Corrupt {
                    path: path.display().to_string(),
                    source,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn save_windows(&self, windows: &[MaintenanceWindow]) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(windows)
            .map_err(|e| StoreError::backend("the maintenance windows", e))?;
        write_atomically(&self.windows_path(), &text)
    }

    async fn document(&self, doc: Document) -> Result<Option<String>, StoreError> {
        match std::fs::read_to_string(self.path.with_file_name(doc.file_name())) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn save_document(&self, doc: Document, text: &str) -> Result<(), StoreError> {
        let path = self.path.with_file_name(doc.file_name());
        write_atomically(&path, text)?;
        if doc.private() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }
}

/// Writes a file through a temporary one and a rename, so a reader (or a crash) never sees
/// half a file.
fn write_atomically(path: &Path, text: &str) -> Result<(), StoreError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    // Made readable by the owner only from the start: a document may hold password hashes.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::CONFIG_FILE;

    #[tokio::test]
    async fn config_file_round_trip_and_hand_edits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalConfigFile::new(dir.path().join(CONFIG_FILE));
        assert_eq!(
            store.get("a").await.expect("get"),
            None,
            "no file: no settings"
        );
        let rec = AlarmConfigRecord {
            priority: Some("high".into()),
            ..Default::default()
        };
        store.put("a", &rec).await.expect("put");
        assert_eq!(store.get("a").await.expect("get"), Some(rec));

        // A hand edit is picked up (mtime changes; sleep past coarse timestamps).
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(
            store.path(),
            r#"{"b": {"priority": "low", "ccemail": "x@y.com"}}"#,
        )
        .expect("write");
        assert_eq!(store.get("a").await.expect("get"), None);
        assert!(store.get("b").await.expect("get").is_some());

        assert!(store.delete("b").await.expect("delete"));
        assert!(!store.delete("b").await.expect("delete"));
        assert!(store.list().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn corrupt_config_file_is_reported_not_overwritten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalConfigFile::new(dir.path().join(CONFIG_FILE));
        std::fs::write(store.path(), "{ not json").expect("write");
        assert!(matches!(
            store.get("a").await,
            Err(StoreError::Corrupt { .. })
        ));
        assert!(store.put("a", &AlarmConfigRecord::default()).await.is_err());
        assert_eq!(
            std::fs::read_to_string(store.path()).expect("read"),
            "{ not json"
        );
    }
}
