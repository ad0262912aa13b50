//! Attributes clicks to ad impressions: the joiner of a windowed
//! stream–stream join of impressions (left) with clicks (right), both keyed
//! by ad id. Each matched pair becomes
//! `{"ad": key, "campaign": the impression's campaign, "clicked_after_ms":
//! click.at - impression.at}`.
//!
//! Both sides are JSON objects with `at`, a whole number of milliseconds
//! since the epoch; a side without it fails the pair (`on_error` applies).
//! A pair with a side missing (a left or outer join's unmatched record)
//! gives no output.
//!
//! No settings.

use eddy_sdk::json::{self, Value};
use eddy_sdk::{Error, Joined, Joiner, Operator, Settings};
use serde::Serialize;
use std::borrow::Cow;

/// The operator.
pub struct AttributeClick;

/// What a click attributed to its impression becomes.
#[derive(Serialize)]
struct Attribution<'a> {
    ad: Option<Cow<'a, str>>,
    campaign: &'a Value,
    clicked_after_ms: i64,
}

/// The `at` field of a side.
fn at(side: &Value, name: &str) -> Result<i64, Error> {
    side.get("at")
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::new(format!("the {name} has no whole number `at`")))
}

impl Operator for AttributeClick {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.allow_only(&[])?;
        Ok(AttributeClick)
    }
}

impl Joiner for AttributeClick {
    fn join(
        &mut self,
        key: Option<&[u8]>,
        impression: Option<&[u8]>,
        click: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> Result<Joined, Error> {
        let (Some(impression), Some(click)) = (impression, click) else {
            return Ok(Joined::Skip);
        };
        let impression: Value = json::from_slice(impression)?;
        let click: Value = json::from_slice(click)?;
        let clicked_after_ms = at(&click, "click")?
            .checked_sub(at(&impression, "impression")?)
            .ok_or_else(|| Error::new("`at` out of range"))?;
        let attribution = Attribution {
            ad: key.map(String::from_utf8_lossy),
            campaign: impression.get("campaign").unwrap_or(&Value::Null),
            clicked_after_ms,
        };
        json::to_vec_into(&attribution, out)?;
        Ok(Joined::Value)
    }
}

eddy_sdk::export_joiner!(AttributeClick);

#[cfg(test)]
mod tests {
    use super::*;

    fn join(left: Option<&str>, right: Option<&str>) -> Result<(Joined, String), Error> {
        let mut op = AttributeClick::init(&Settings::from_pairs([])).unwrap();
        let mut out = Vec::new();
        let joined = op.join(
            Some(b"ad-1"),
            left.map(str::as_bytes),
            right.map(str::as_bytes),
            &mut out,
        )?;
        Ok((joined, String::from_utf8(out).unwrap()))
    }

    #[test]
    fn attributes_a_click_to_its_impression() {
        let (joined, out) = join(
            Some(r#"{"campaign":"spring","at":1000}"#),
            Some(r#"{"at":61000}"#),
        )
        .unwrap();
        assert_eq!(joined, Joined::Value);
        assert_eq!(
            out,
            r#"{"ad":"ad-1","campaign":"spring","clicked_after_ms":60000}"#
        );
    }

    #[test]
    fn skips_a_missing_side() {
        let impression = r#"{"campaign":"spring","at":1000}"#;
        assert_eq!(
            join(Some(impression), None).unwrap(),
            (Joined::Skip, String::new())
        );
        assert_eq!(
            join(None, Some(r#"{"at":1}"#)).unwrap(),
            (Joined::Skip, String::new())
        );
    }

    #[test]
    fn fails_without_at() {
        let err = join(Some(r#"{"campaign":"spring"}"#), Some(r#"{"at":1}"#)).unwrap_err();
        assert!(err.to_string().contains("impression"), "{err}");
    }
}
