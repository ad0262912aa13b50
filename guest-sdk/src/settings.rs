//! Operator settings from the pipeline spec.

use crate::Error;
use std::str::FromStr;

/// The `settings` of a pipeline step, as text pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pairs: Vec<(String, String)>,
}

impl Settings {
    /// Settings from the pairs the host passed.
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Settings { pairs }
    }

    /// Settings from string pairs (handy in tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Settings::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or an error saying it is required.
    pub fn require(&self, name: &str) -> Result<&str, Error> {
        self.get(name)
            .ok_or_else(|| Error::settings(format!("setting `{name}` is required")))
    }

    /// `name` parsed as `T`, or `default` when unset.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e| Error::settings(format!("setting `{name}` = {v:?}: {e}"))),
        }
    }

    /// Fails on any setting not in `known`, so typos do not pass silently.
    pub fn allow_only(&self, known: &[&str]) -> Result<(), Error> {
        for (k, _) in &self.pairs {
            if !known.contains(&k.as_str()) {
                return Err(Error::settings(format!(
                    "unknown setting `{k}`; this operator takes: {}",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        Ok(())
    }

    /// All pairs in spec order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requires_and_rejects_unknown() {
        let s = Settings::from_pairs([("min", "3"), ("field", "level")]);
        assert_eq!(s.parse_or("min", 0usize), Ok(3));
        assert_eq!(s.parse_or("max", 9usize), Ok(9));
        assert_eq!(s.require("field"), Ok("level"));
        assert!(
            matches!(s.require("nope"), Err(Error::InvalidSettings(m)) if m.contains("`nope`"))
        );
        assert!(s.allow_only(&["min", "field"]).is_ok());
        assert!(
            matches!(s.allow_only(&["min"]), Err(Error::InvalidSettings(m)) if m.contains("`field`"))
        );
        assert!(
            Settings::from_pairs([("min", "x")])
                .parse_or("min", 0u8)
                .is_err()
        );
    }
}
