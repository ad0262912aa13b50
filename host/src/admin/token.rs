//! The admin API's token when the spec sets none: generated at start and
//! written to a file only the user can read, where `eddy reload` finds it,
//! so that no other user of the machine (and no web page) can change
//! anything through a loopback admin API.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where the generated token of the admin API listening on `port` lives:
/// `$XDG_RUNTIME_DIR/eddy/admin-<port>.token`, else under
/// `$XDG_STATE_HOME/eddy` or `~/.local/state/eddy`.
pub fn token_path(port: u16) -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let dir = var("XDG_RUNTIME_DIR")
        .map(|d| PathBuf::from(d).join("eddy"))
        .or_else(|| var("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("eddy")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state/eddy")))?;
    Some(dir.join(format!("admin-{port}.token")))
}

/// The generated token of the admin API listening on `port`, when there is one.
pub fn read_token(port: u16) -> Option<String> {
    let text = std::fs::read_to_string(token_path(port)?).ok()?;
    let token = text.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// A generated token, removed from its file when dropped.
pub(super) struct TokenFile {
    pub(super) token: String,
    pub(super) path: PathBuf,
}

impl TokenFile {
    /// Generates a token for the admin API on `port` and writes it, readable
    /// by the user only.
    pub(super) fn create(port: u16) -> std::io::Result<Self> {
        let path = token_path(port).ok_or_else(|| {
            std::io::Error::other("neither XDG_RUNTIME_DIR, XDG_STATE_HOME nor HOME is set")
        })?;
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(std::io::Error::other)?;
        let token: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        write_private(&path, &token)?;
        Ok(TokenFile { token, path })
    }
}

/// Writes `text` to `path`, creating its directory (mode 700) and the file
/// (mode 600); a file left by an earlier run is replaced.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    // A new file, so that no other user holds it open or chose its mode.
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        // Another instance may have taken the port (and the file) since.
        if read_file(&self.path).as_deref() == Some(self.token.as_str()) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn read_file(path: &Path) -> Option<String> {
    Some(std::fs::read_to_string(path).ok()?.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_private_and_gone_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/eddy/admin-1.token");
        let token = "0123456789abcdef";
        write_private(&path, token).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(read_file(&path).as_deref(), Some(token));
        // Replaced, not appended to, by the next run.
        write_private(&path, "fedcba9876543210").unwrap();
        assert_eq!(read_file(&path).as_deref(), Some("fedcba9876543210"));
        drop(TokenFile {
            token: "someone-else's".into(),
            path: path.clone(),
        });
        assert!(path.exists(), "another instance's token stays");
        drop(TokenFile {
            token: "fedcba9876543210".into(),
            path: path.clone(),
        });
        assert!(!path.exists());
    }
}
