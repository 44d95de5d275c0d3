//! The master key file (`DATA_DIR/twostep.key`): one key per line as 64 hex
//! digits, the current key first and any further lines retiring keys, kept
//! only for reading while `twostep key rotate` re-seals what they sealed.
//! Lines starting with `#` and blank lines are ignored, so a file written
//! before rotation existed (one bare line) still reads.
//!
//! A running server reads the file again when it changes (`watch`) and when
//! a value names a key it does not hold (`FileKeySource`), so every instance
//! takes a new key without a restart.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use twostep_domain::crypto::{KeySource, MasterKey};
use twostep_domain::service::Twostep;

/// How often a running server looks at the key file's modification time.
pub const WATCH_EVERY: Duration = Duration::from_secs(2);

/// The least time between two reads prompted by unknown key ids, so a
/// stream of forged values cannot turn into a stream of file reads.
const RELOAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// The keys in a key file's text, current first.
pub fn parse(text: &str) -> Result<Vec<MasterKey>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(MasterKey::from_hex(line).ok_or_else(|| format!("line {} does not hold 64 hex digits", n + 1))?);
    }
    if keys.is_empty() {
        return Err("holds no key".into());
    }
    Ok(keys)
}

pub fn read(path: &Path) -> Result<Vec<MasterKey>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{} {e}", path.display()))
}

/// Replaces the key file atomically: a crash leaves the old file or the new
/// one, never half of one (written beside it, synced, renamed, the directory
/// synced), readable by its owner only.
pub fn write(path: &Path, current: &MasterKey, retiring: &[&MasterKey]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".twostep.key.{}.tmp", std::process::id()));
    let mut text = String::from(
        "# twostep master keys. The first line seals; any line after it is a retiring key,\n\
         # read only until `twostep key rotate` finishes. Back this file up apart from the data.\n",
    );
    for key in std::iter::once(current).chain(retiring.iter().copied()) {
        text.push_str(&key.to_hex());
        text.push('\n');
    }
    let result = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// The key file as a `KeySource`: read again on demand, at most once a second.
pub struct FileKeySource {
    path: PathBuf,
    last: Mutex<Option<Instant>>,
}

impl FileKeySource {
    pub fn new(path: PathBuf) -> Self {
        Self { path, last: Mutex::new(None) }
    }
}

impl KeySource for FileKeySource {
    fn reload(&self) -> Option<Vec<MasterKey>> {
        {
            let mut last = self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < RELOAD_AT_MOST_EVERY) {
                return None;
            }
            *last = Some(Instant::now());
        }
        match read(&self.path) {
            Ok(keys) => Some(keys),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the key file again; keeping the keys loaded");
                None
            }
        }
    }
}

/// Watches the key file while the server runs: when it changes, the keyring
/// takes the keys in it (a rotation started or finished).
pub fn watch(path: PathBuf, twostep: Arc<Twostep>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = modified(&path);
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            let now = modified(&path);
            if now == seen {
                continue;
            }
            match read(&path) {
                Ok(list) => {
                    let ring = twostep.keys();
                    let before = ring.key_ids();
                    ring.replace(&list);
                    let after = ring.key_ids();
                    if before != after {
                        tracing::info!(
                            current = %after[0],
                            retiring = %after[1..].iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                            "master keys reloaded from the key file"
                        );
                    }
                    seen = now;
                }
                // Perhaps caught mid-write by an editor: try again next time.
                Err(e) => tracing::warn!(error = %e, "the key file changed but cannot be read"),
            }
        }
    })
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use twostep_domain::ports::OsRng;

    #[test]
    fn a_file_of_one_bare_line_still_reads_and_comments_are_skipped() {
        let a = MasterKey::generate(&OsRng);
        let b = MasterKey::generate(&OsRng);
        assert_eq!(parse(&format!("{}\n", a.to_hex())).expect("reads")[0].id(), a.id());
        let keys = parse(&format!("# c\n\n  {}\n# r\n{}\n", b.to_hex(), a.to_hex().to_uppercase())).expect("reads");
        assert_eq!(keys.iter().map(MasterKey::id).collect::<Vec<_>>(), vec![b.id(), a.id()]);
        assert_eq!(parse("# nothing\n").err().as_deref(), Some("holds no key"));
        assert_eq!(parse("abcd\n").err().as_deref(), Some("line 1 does not hold 64 hex digits"));
    }

    #[test]
    fn written_files_read_back_owner_only_and_reloads_are_spaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("twostep.key");
        let (a, b) = (MasterKey::generate(&OsRng), MasterKey::generate(&OsRng));
        write(&path, &b, &[&a]).expect("writes");
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(read(&path).expect("reads").iter().map(MasterKey::id).collect::<Vec<_>>(), vec![b.id(), a.id()]);
        let source = FileKeySource::new(path);
        assert!(source.reload().is_some());
        assert!(source.reload().is_none(), "a second read within the second is refused");
    }
}
