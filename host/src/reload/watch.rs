//! Reloads an operator when its `.wasm` file changes on disk.
//!
//! The directories holding the components are watched (not the files: build
//! tools replace a file by renaming a new one over it), and changes are
//! debounced, so a file written in pieces is read once, when it is complete.
//! Only new contents reload: a file whose bytes did not change since it was
//! last loaded is left alone (so a late event cannot undo a reload that
//! came through the admin API meanwhile).

use super::Reloader;
use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a file must stay unchanged before it is reloaded.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// Watches every operator's component file until the returned watcher is
/// dropped.
pub fn watch(reloader: Arc<Reloader>) -> Result<Debouncer<RecommendedWatcher>, String> {
    let files: Vec<(String, PathBuf)> = reloader
        .t
        .steps
        .iter()
        .filter_map(|s| {
            let path = s.component.as_ref()?;
            Some((s.name.clone(), canonical(path)))
        })
        .collect();
    let dirs: BTreeSet<PathBuf> = files
        .iter()
        .filter_map(|(_, f)| f.parent().map(Path::to_path_buf))
        .collect();
    // The version each file held when last read: what is running now.
    let seen: Mutex<HashMap<String, String>> = Mutex::new(
        reloader
            .versions()
            .into_iter()
            .map(|v| (v.name, v.version))
            .collect(),
    );
    let handler = {
        move |res: DebounceEventResult| {
            let Ok(events) = res else { return };
            let changed: BTreeSet<PathBuf> =
                events.into_iter().map(|e| canonical(&e.path)).collect();
            for (name, file) in &files {
                if changed.contains(file) {
                    reload_file(&reloader, &seen, name, file);
                }
            }
        }
    };
    let mut debouncer =
        new_debouncer(DEBOUNCE, handler).map_err(|e| format!("watching operator files: {e}"))?;
    for dir in &dirs {
        debouncer
            .watcher()
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("watching {}: {e}", dir.display()))?;
    }
    Ok(debouncer)
}

fn canonical(path: &Path) -> PathBuf {
    // The file may be missing for a moment while it is replaced: resolve
    // its directory, which stays.
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map_or_else(|_| path.to_path_buf(), |d| d.join(name)),
        _ => path.to_path_buf(),
    }
}

fn reload_file(
    reloader: &Reloader,
    seen: &Mutex<HashMap<String, String>>,
    name: &str,
    file: &Path,
) {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(operator = name, file = %file.display(), "not reloaded: cannot read the file: {e}");
            return;
        }
    };
    let version = crate::wasm::version_of(&bytes);
    let previous = seen
        .lock()
        .expect("not poisoned")
        .insert(name.to_string(), version.clone());
    if previous.as_deref() == Some(version.as_str()) {
        return;
    }
    tracing::info!(operator = name, file = %file.display(), "the component changed on disk: reloading");
    if let Err(e) = reloader.reload(name, &bytes) {
        tracing::error!(operator = name, file = %file.display(), "reload refused, the running version stays: {e}");
    }
}
