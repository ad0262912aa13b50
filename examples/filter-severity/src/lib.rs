//! Keeps log events at or above a severity.
//!
//! Settings: `min_level` (default `warn`), one of trace, debug, info, warn,
//! error; `field` (default `level`), the JSON field holding the level.
//! Events without the field, or that are not JSON, are dropped.

use eddy_sdk::{Error, Operator, Output, Processor, RecordMut, Settings};

const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

fn rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| l.eq_ignore_ascii_case(level))
}

/// The operator.
pub struct FilterSeverity {
    min: usize,
    field: String,
}

impl Operator for FilterSeverity {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.allow_only(&["min_level", "field"])?;
        let min_level = settings.get("min_level").unwrap_or("warn");
        let min = rank(min_level).ok_or_else(|| {
            Error::settings(format!(
                "min_level {min_level:?} is not one of {}",
                LEVELS.join(", ")
            ))
        })?;
        Ok(FilterSeverity {
            min,
            field: settings.get("field").unwrap_or("level").to_string(),
        })
    }
}

#[derive(serde::Deserialize)]
struct Event<'a> {
    #[serde(borrow, flatten)]
    fields: std::collections::HashMap<&'a str, serde_json::Value>,
}

impl Processor for FilterSeverity {
    #[inline]
    fn process(&mut self, record: &mut RecordMut<'_>, out: &mut Output<'_>) -> Result<(), Error> {
        let Some(value) = record.value() else {
            return Ok(());
        };
        let Ok(event) = serde_json::from_slice::<Event<'_>>(value) else {
            return Ok(());
        };
        let keep = event
            .fields
            .get(self.field.as_str())
            .and_then(|v| v.as_str())
            .and_then(rank)
            .is_some_and(|r| r >= self.min);
        if keep {
            out.forward(record); // unchanged: no bytes copied
        }
        Ok(())
    }
}

eddy_sdk::export_processor!(FilterSeverity);

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sdk::testing::{TestRecord, run_processor};

    #[test]
    fn keeps_only_levels_at_or_above_the_minimum() {
        let mut op = FilterSeverity::init(&Settings::from_pairs([("min_level", "info")])).unwrap();
        let input = [
            r#"{"level":"debug"}"#,
            r#"{"level":"INFO"}"#,
            "junk",
            r#"{"level":"error"}"#,
            r#"{"msg":1}"#,
        ];
        let input: Vec<_> = input.iter().map(TestRecord::value).collect();
        let out = run_processor(&mut op, &input).unwrap();
        assert_eq!(out.iter().map(|o| o.input).collect::<Vec<_>>(), vec![1, 3]);
        assert!(FilterSeverity::init(&Settings::from_pairs([("min_level", "loud")])).is_err());
    }
}
