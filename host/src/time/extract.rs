//! A source record's event time: its Kafka timestamp, the wall clock, or a
//! number of milliseconds in its JSON value.

use crate::topology::TimestampSource;

/// Why a record has no usable timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// The value is not JSON, or lacks the field.
    #[error("no timestamp at {pointer} in the value: {reason}")]
    Field {
        /// The JSON pointer.
        pointer: String,
        /// What was found instead.
        reason: String,
    },
}

/// The event time of a record with value `value` and Kafka timestamp `record_ts`.
pub fn extract(
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
            field
                .as_i64()
                .or_else(|| {
                    field
                        .as_f64()
                        .filter(|f| f.fract() == 0.0)
                        .map(|f| f as i64)
                })
                .ok_or_else(|| err(format!("{field} is not a whole number of milliseconds")))
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
    }
}
