//! The checkpoint file of a task directory: for each changelog, the offset
//! up to which the local store already holds its records. Written after the
//! stores are flushed at a commit; restore starts from it. No checkpoint
//! (or an unreadable one) means the local files cannot be trusted: the
//! stores are wiped and restored from the start of their changelogs.
//!
//! Format, one line each: `eddy-checkpoint 1`, then `<topic> <partition> <offset>`
//! where offset is the next changelog offset to read.

use super::StateError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const HEADER: &str = "eddy-checkpoint 1";

/// Changelog offsets the local stores are good up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// (changelog topic, partition) → next offset to read.
    pub offsets: BTreeMap<(String, i32), i64>,
}

impl Checkpoint {
    /// The checkpoint file of a task directory.
    pub fn path(task_dir: &Path) -> PathBuf {
        task_dir.join(".checkpoint")
    }

    /// Reads the checkpoint; none when missing or unreadable.
    pub fn read(task_dir: &Path) -> Option<Checkpoint> {
        let text = std::fs::read_to_string(Self::path(task_dir)).ok()?;
        let mut lines = text.lines();
        if lines.next()? != HEADER {
            return None;
        }
        let mut offsets = BTreeMap::new();
        for line in lines {
            let mut f = line.split(' ');
            let (Some(t), Some(p), Some(o), None) = (f.next(), f.next(), f.next(), f.next()) else {
                return None;
            };
            offsets.insert((t.to_string(), p.parse().ok()?), o.parse().ok()?);
        }
        Some(Checkpoint { offsets })
    }

    /// Writes the checkpoint atomically (a temporary file renamed over it).
    pub fn write(&self, task_dir: &Path) -> Result<(), StateError> {
        let path = Self::path(task_dir);
        let tmp = task_dir.join(".checkpoint.tmp");
        let mut text = format!("{HEADER}\n");
        for ((t, p), o) in &self.offsets {
            text.push_str(&format!("{t} {p} {o}\n"));
        }
        let io = |e: std::io::Error| StateError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Checkpoint::read(dir.path()), None);
        let mut c = Checkpoint::default();
        c.offsets.insert(("app-counts-changelog".into(), 3), 42);
        c.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()), Some(c));
        std::fs::write(
            Checkpoint::path(dir.path()),
            "eddy-checkpoint 1\nbad line\n",
        )
        .unwrap();
        assert_eq!(Checkpoint::read(dir.path()), None);
    }
}
