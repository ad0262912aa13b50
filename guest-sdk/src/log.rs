//! Logging into the host's log.

use std::sync::OnceLock;

/// How loud a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Very detailed.
    Trace,
    /// For debugging.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// Something failed.
    Error,
}

static LOGGER: OnceLock<fn(Level, &str)> = OnceLock::new();

/// Sets where log lines go (the component glue points it at the host).
pub fn set_logger(f: fn(Level, &str)) {
    let _ = LOGGER.set(f);
}

/// Writes one line to the host log. Each call crosses into the host: log per
/// batch or on errors, not per record.
pub fn log(level: Level, message: &str) {
    match LOGGER.get() {
        Some(f) => f(level, message),
        None => eprintln!("[{level:?}] {message}"),
    }
}
