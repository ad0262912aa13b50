//! A source record's event time: its Kafka timestamp, the wall clock, or a
//! number of milliseconds in its JSON value.

use crate::topology::TimestampSource;

/// The latest event time eddy takes: 9999-12-31T23:59:59.999Z. Later
/// times (and every duration in a spec, at most [`crate::units::MAX_DURATION`])
/// leave window arithmetic far from `i64`'s limits.
pub const MAX_EVENT_TIME: i64 = 253_402_300_799_999;

/// Why a record has no usable timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The time is out of range: past [`MAX_EVENT_TIME`], or too far
    /// before the epoch to be a time at all.
    #[error("event time {0} is out of range (at most {MAX_EVENT_TIME} ms, 9999-12-31)")]
    OutOfRange(String),
    /// The value is not JSON, or lacks the field.
    #[error("no timestamp at {pointer} in the value: {reason}")]
    Field {
        /// The JSON pointer.
        pointer: String,
        /// What was found instead.
        reason: String,
    },
}

/// The event time of a record with value `value` and Kafka timestamp
/// `record_ts`: whole milliseconds, at most [`MAX_EVENT_TIME`] (a negative
/// time is returned as it is: the caller skips the record).
pub fn extract(
    source: &TimestampSource,
    record_ts: i64,
    value: Option<&[u8]>,
) -> Result<i64, TimestampError> {
    let ts = read(source, record_ts, value)?;
    if ts > MAX_EVENT_TIME {
        return Err(TimestampError::OutOfRange(ts.to_string()));
    }
    Ok(ts)
}

fn read(
    source: &TimestampSource,
    record_ts: i64,
    value: Option<&[u8]>,
) -> Result<i64, TimestampError> {
    match source {
        TimestampSource::Record => Ok(record_ts),
        TimestampSource::ProcessingTime => Ok(now_ms()),
        TimestampSource::Field(pointer) => {
            let err = |reason: String| TimestampError::Field {
                pointer: pointer.clone(),
                reason,
            };
            let value = value.ok_or_else(|| err("the record is a tombstone".into()))?;
            let json: serde_json::Value =
                serde_json::from_slice(value).map_err(|e| err(format!("not JSON ({e})")))?;
            let field = json
                .pointer(pointer)
                .ok_or_else(|| err("the field is missing".into()))?;
            if let Some(ts) = field.as_i64() {
                return Ok(ts);
            }
            match field.as_f64() {
                // Whole numbers written with an exponent or a point (1.7e12);
                // beyond the range no cast may saturate them.
                Some(f) if f.fract() == 0.0 && f.abs() <= MAX_EVENT_TIME as f64 => Ok(f as i64),
                Some(f) if f.fract() == 0.0 => Err(TimestampError::OutOfRange(field.to_string())),
                _ => Err(err(format!(
                    "{field} is not a whole number of milliseconds"
                ))),
            }
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_timestamps() {
        let f = TimestampSource::Field("/at/ms".into());
        assert_eq!(
            extract(&f, 1, Some(br#"{"at":{"ms":1700000000000}}"#)),
            Ok(1_700_000_000_000)
        );
        assert!(extract(&f, 1, Some(br#"{"at":{}}"#)).is_err());
        assert!(extract(&f, 1, Some(br#"{"at":{"ms":"soon"}}"#)).is_err());
        assert!(extract(&f, 1, None).is_err());
        assert_eq!(extract(&TimestampSource::Record, 7, None), Ok(7));
        assert_eq!(
            extract(&f, 1, Some(br#"{"at":{"ms":1.7e12}}"#)),
            Ok(1_700_000_000_000)
        );
    }

    #[test]
    fn times_past_the_range_are_unreadable_never_saturated() {
        let f = TimestampSource::Field("/ts".into());
        for value in [
            r#"{"ts":1e30}"#,
            r#"{"ts":9223372036854775807}"#,
            r#"{"ts":18446744073709551615}"#,
            r#"{"ts":253402300800000}"#,
        ] {
            let got = extract(&f, 1, Some(value.as_bytes()));
            assert!(
                matches!(got, Err(TimestampError::OutOfRange(_))),
                "{value}: {got:?}"
            );
        }
        assert!(extract(&f, 1, Some(br#"{"ts":1.5}"#)).is_err());
        assert_eq!(
            extract(&f, 1, Some(br#"{"ts":253402300799999}"#)),
            Ok(MAX_EVENT_TIME)
        );
        assert!(extract(&TimestampSource::Record, i64::MAX, None).is_err());
        let far_back = extract(&f, 1, Some(br#"{"ts":-1e30}"#));
        assert!(
            matches!(far_back, Err(TimestampError::OutOfRange(_))),
            "{far_back:?}"
        );
    }
}
