//! A broker of a test's own (`scripts/kafka` on free ports and a data
//! directory of its own), for tests that stop and restart it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

/// A single-node broker only one test uses; stopped and deleted when dropped.
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    port: u16,
    controller: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrivateBroker {
    /// Starts a new broker (data formatted afresh).
    pub fn start() -> PrivateBroker {
        let b = PrivateBroker {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            controller: free_port(),
        };
        b.run("start");
        b
    }

    /// Its `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (its data stays).
    pub fn stop(&self) {
        self.run("stop");
    }

    /// Starts it again on the same data and port.
    pub fn restart(&self) {
        self.run("start");
    }

    fn run(&self, what: &str) {
        let script: PathBuf = crate::root().join("scripts/kafka");
        let out = Command::new(script)
            .arg(what)
            .env("EDDY_KAFKA_DIR", self.dir.path())
            .env("EDDY_KAFKA_PORT", self.port.to_string())
            .env("EDDY_KAFKA_CONTROLLER_PORT", self.controller.to_string())
            .env("EDDY_KAFKA_HEAP_OPTS", "-Xms128m -Xmx512m")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/kafka {what} on port {}: {}{}",
            self.port,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new(crate::root().join("scripts/kafka"))
            .arg("stop")
            .env("EDDY_KAFKA_DIR", self.dir.path())
            .env("EDDY_KAFKA_PORT", self.port.to_string())
            .env("EDDY_KAFKA_CONTROLLER_PORT", self.controller.to_string())
            .output();
    }
}
