//! `window = { ... }` of an aggregation step.

use super::Validator;
use crate::spec::model::WindowSpec;
use crate::time::windows::MAX_WINDOWS_PER_RECORD;
use crate::topology::{JoinWindow, Window, WindowKind};
use crate::units::parse_duration;
use toml::Spanned;

impl Validator<'_> {
    pub(super) fn window(
        &mut self,
        w: &Spanned<WindowSpec>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Window> {
        let ws = w.get_ref();
        let Some(kind_at) = ws.kind.as_ref() else {
            self.err(w, key("window.kind"), "an aggregation's window needs `kind`: \"tumbling\", \"hopping\", \"sliding\" or \"session\"");
            return None;
        };
        for (name, f) in [("before", &ws.before), ("after", &ws.after)] {
            if let Some(f) = f {
                self.err(
                    f,
                    key(&format!("window.{name}")),
                    format!("`{name}` applies to a join's window, not an aggregation's"),
                );
            }
        }
        let mut ok = true;
        let mut dur = |v: &mut Self, field: Option<&Spanned<String>>, name: &str, need: bool| {
            let k = key(&format!("window.{name}"));
            match field {
                None if need => {
                    v.err(
                        w,
                        k,
                        format!("a {} window needs `{name}`", kind_at.get_ref()),
                    );
                    ok = false;
                    std::time::Duration::ZERO
                }
                None => std::time::Duration::ZERO,
                Some(f) => match parse_duration(f.get_ref()) {
                    Ok(d) if d.is_zero() && name != "grace" => {
                        v.err(f, k, "must be more than zero");
                        ok = false;
                        d
                    }
                    Ok(d) => d,
                    Err(e) => {
                        v.err(f, k, e);
                        ok = false;
                        std::time::Duration::ZERO
                    }
                },
            }
        };
        let kind_name = kind_at.get_ref().as_str();
        let fields: &[&str] = match kind_name {
            "tumbling" => &["size"],
            "hopping" => &["size", "advance"],
            "sliding" => &["difference"],
            "session" => &["gap"],
            other => {
                self.err(
                    kind_at,
                    key("window.kind"),
                    format!("{other:?}: expected tumbling, hopping, sliding or session"),
                );
                return None;
            }
        };
        for (name, f) in [
            ("size", &ws.size),
            ("advance", &ws.advance),
            ("difference", &ws.difference),
            ("gap", &ws.gap),
        ] {
            if let Some(f) = f
                && !fields.contains(&name)
            {
                self.err(f, key(&format!("window.{name}")), format!("`{name}` does not apply to a {kind_name} window (it takes {fields:?} and grace)"));
            }
        }
        let grace = dur(self, ws.grace.as_ref(), "grace", false);
        let kind = match kind_name {
            "tumbling" => WindowKind::Tumbling {
                size: dur(self, ws.size.as_ref(), "size", true),
            },
            "hopping" => {
                let size = dur(self, ws.size.as_ref(), "size", true);
                let advance = dur(self, ws.advance.as_ref(), "advance", true);
                if advance > size {
                    self.err(
                        w,
                        key("window.advance"),
                        "must not exceed `size` (windows would leave gaps)",
                    );
                } else if !advance.is_zero()
                    // A record falls in up to ⌈size / advance⌉ windows.
                    && size.as_millis().div_ceil(advance.as_millis().max(1))
                        > MAX_WINDOWS_PER_RECORD as u128
                {
                    self.err(
                        w,
                        key("window.advance"),
                        format!(
                            "puts a record in up to {} windows, more than the {MAX_WINDOWS_PER_RECORD} eddy allows; advance by at least {}ms",
                            size.as_millis().div_ceil(advance.as_millis().max(1)),
                            size.as_millis().div_ceil(MAX_WINDOWS_PER_RECORD as u128)
                        ),
                    );
                }
                WindowKind::Hopping { size, advance }
            }
            "sliding" => WindowKind::Sliding {
                difference: dur(self, ws.difference.as_ref(), "difference", true),
            },
            _ => WindowKind::Session {
                gap: dur(self, ws.gap.as_ref(), "gap", true),
            },
        };
        ok.then_some(Window { kind, grace })
    }

    /// The window of a join of two streams: `difference` (both ways) or
    /// `before` and `after`, and `grace`.
    pub(super) fn join_window(
        &mut self,
        w: &Spanned<WindowSpec>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<JoinWindow> {
        let ws = w.get_ref();
        for (name, f) in [
            ("kind", &ws.kind),
            ("size", &ws.size),
            ("advance", &ws.advance),
            ("gap", &ws.gap),
        ] {
            if let Some(f) = f {
                self.err(f, key(&format!("window.{name}")), format!("`{name}` does not apply to a join's window (it takes `difference`, or `before` and `after`, and `grace`)"));
            }
        }
        let mut ok = true;
        let mut ms = |v: &mut Self, f: &Spanned<String>, name: &str, signed: bool| {
            let text = f.get_ref().trim();
            let (neg, body) = match text.strip_prefix('-') {
                Some(rest) if signed => (true, rest),
                _ => (false, text),
            };
            match parse_duration(body) {
                Ok(d) if d.as_millis() <= MAX_JOIN_MS as u128 => {
                    let m = d.as_millis() as i64;
                    Some(if neg { -m } else { m })
                }
                Ok(_) => {
                    v.err(
                        f,
                        key(&format!("window.{name}")),
                        "must be at most 100 years",
                    );
                    ok = false;
                    None
                }
                Err(e) => {
                    v.err(f, key(&format!("window.{name}")), e);
                    ok = false;
                    None
                }
            }
        };
        let difference = ws
            .difference
            .as_ref()
            .and_then(|f| ms(self, f, "difference", false));
        let before = ws.before.as_ref().and_then(|f| ms(self, f, "before", true));
        let after = ws.after.as_ref().and_then(|f| ms(self, f, "after", true));
        let grace = ws.grace.as_ref().and_then(|f| ms(self, f, "grace", false));
        if !ok {
            return None;
        }
        let (before, after) = match (difference, before, after) {
            (Some(d), b, a) => (b.unwrap_or(d), a.unwrap_or(d)),
            (None, Some(b), Some(a)) => (b, a),
            _ => {
                self.err(w, key("window"), "a join's window needs `difference` (how far apart matching records may be, either way), or both `before` and `after`");
                return None;
            }
        };
        if before + after < 0 {
            self.err(w, key("window"), format!("before ({before}ms) + after ({after}ms) is negative: no record could ever match"));
            return None;
        }
        Some(JoinWindow {
            before,
            after,
            grace: grace.unwrap_or(0),
        })
    }
}

/// The longest join window bound: 100 years, in ms.
const MAX_JOIN_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

#[cfg(test)]
mod tests {
    #[test]
    fn durations_and_window_shapes_that_would_wrap_or_explode_are_refused() {
        let window = |w: &str| {
            let text = format!(
                "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\n\
                 [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nwindow = {w}\n\
                 [[sinks]]\ntopic = \"out\"\n"
            );
            match super::super::parse_with(std::path::Path::new("p.toml"), &text, false) {
                Ok(_) => Vec::new(),
                Err(e) => e.0.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }
        };
        let huge = window("{ kind = \"tumbling\", size = \"5124095576030431h\" }");
        assert!(
            huge.iter()
                .any(|e| e.contains("window.size") && e.contains("100 years")),
            "{huge:?}"
        );
        let grace =
            window("{ kind = \"tumbling\", size = \"1m\", grace = \"9000000000000000000ms\" }");
        assert!(
            grace.iter().any(|e| e.contains("window.grace")),
            "{grace:?}"
        );
        let dense = window("{ kind = \"hopping\", size = \"1h\", advance = \"1ms\" }");
        assert!(
            dense.iter().any(|e| e.contains("window.advance")
                && e.contains("3600000 windows")
                && e.contains("at least 360ms")),
            "{dense:?}"
        );
        assert!(window("{ kind = \"hopping\", size = \"1h\", advance = \"360ms\" }").is_empty());
    }
}
