//! Durations ("250ms", "5s", "2m") and sizes ("64MiB") as written in specs.

use std::time::Duration;

/// The longest duration a spec may give: 100 years. Window arithmetic on
/// event times (at most year 9999) plus such durations cannot overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a duration such as `250ms`, `5s`, `2m` or `1h`, at most
/// [`MAX_DURATION`].
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. \"250ms\", \"5s\" or \"2m\""))?;
    let ms_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "{s:?} has no known unit; write e.g. \"250ms\", \"5s\" or \"2m\""
            ));
        }
    };
    match n.checked_mul(ms_per_unit).map(Duration::from_millis) {
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => Err(format!(
            "{s:?} is longer than the longest duration eddy takes (100 years)"
        )),
    }
}

/// Parses a byte size such as `65536`, `512KiB`, `64MiB` or `1GiB`.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size; write e.g. \"64MiB\""))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "{s:?} has no known unit; write e.g. \"512KiB\", \"64MiB\" or \"1GiB\""
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("fast").is_err());
        // Beyond 100 years, and what would wrap in milliseconds: refused.
        assert_eq!(parse_duration("876000h"), Ok(MAX_DURATION));
        assert!(parse_duration("876001h").is_err());
        let wraps = format!("{}h", u64::MAX / 3_600_000 + 1);
        assert!(parse_duration(&wraps).unwrap_err().contains("100 years"));
        assert!(parse_duration("99999999999999999999ms").is_err());
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("64MB").is_err());
    }
}
