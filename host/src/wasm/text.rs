//! Text from an operator (error messages, log lines) is data: it is cut to
//! a bounded length and its control characters are escaped, so it can
//! neither forge log lines nor make a dead letter too large for the broker;
//! and an operator's log lines are rate-limited.

use std::fmt::Write;
use std::time::{Duration, Instant};

/// The longest operator text kept, in bytes (before escaping).
pub const MAX_TEXT_BYTES: usize = 4096;

/// Log lines an operator instance may write per second; more are counted
/// and reported as suppressed.
pub const LOG_LINES_PER_SECOND: u32 = 100;

/// `s` as eddy shows it: at most [`MAX_TEXT_BYTES`] of it (cut at a
/// character boundary, saying how much was cut), control characters
/// escaped (`\n`, `\u{1b}`).
pub fn operator_text(s: &str) -> String {
    let mut end = s.len().min(MAX_TEXT_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 16);
    for c in s[..end].chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    if end < s.len() {
        let _ = write!(out, "… ({} more bytes cut)", s.len() - end);
    }
    out
}

/// The log rate limit of one operator instance.
#[derive(Debug)]
pub struct LogLimit {
    window: Instant,
    written: u32,
    suppressed: u64,
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit {
            window: Instant::now(),
            written: 0,
            suppressed: 0,
        }
    }
}

impl LogLimit {
    /// Whether a line may be written at `now`; once a second has passed,
    /// also how many lines were suppressed in the second before.
    pub fn admit(&mut self, now: Instant) -> (bool, u64) {
        let mut reported = 0;
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            reported = std::mem::take(&mut self.suppressed);
            self.window = now;
            self.written = 0;
        }
        if self.written < LOG_LINES_PER_SECOND {
            self.written += 1;
            (true, reported)
        } else {
            self.suppressed += 1;
            (false, reported)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_length_is_bounded() {
        assert_eq!(
            operator_text("bad\nINFO forged line\x1b[31m\ttab"),
            "bad\\nINFO forged line\\u{1b}[31m\\ttab"
        );
        let long = "é".repeat(3000); // 6000 bytes
        let cut = operator_text(&long);
        assert!(
            cut.starts_with(&"é".repeat(2048)),
            "cut at a character boundary"
        );
        assert!(
            cut.ends_with("… (1904 more bytes cut)"),
            "{}",
            &cut[cut.len() - 40..]
        );
        assert_eq!(operator_text("plain"), "plain");
    }

    #[test]
    fn a_flood_of_log_lines_is_cut_to_the_rate_and_counted() {
        let mut limit = LogLimit::default();
        let start = Instant::now();
        let written = (0..20_000).filter(|_| limit.admit(start).0).count();
        assert_eq!(written, LOG_LINES_PER_SECOND as usize);
        let (admitted, suppressed) = limit.admit(start + Duration::from_secs(1));
        assert!(admitted);
        assert_eq!(suppressed, 20_000 - LOG_LINES_PER_SECOND as u64);
        assert_eq!(limit.admit(start + Duration::from_secs(3)), (true, 0));
    }
}
