//! Reading a spec file, checking it whole and lowering it to a [`Topology`].

mod graph;
mod joins;
mod settings;
mod sources;
mod steps;
mod window;

use super::error::{Lines, SpecError, SpecErrors};
use super::model::SpecFile;
use crate::topology::{ErrorPolicy, Sink, Topology};
use std::path::Path;
use toml::Spanned;

/// librdkafka settings eddy sets itself; a spec may not override them.
const OWNED_KAFKA_KEYS: &[(&str, &str)] = &[
    ("group.id", "the consumer group is the application_id"),
    (
        "enable.auto.commit",
        "eddy commits offsets only after outputs are acknowledged",
    ),
    (
        "enable.auto.offset.store",
        "eddy stores offsets only after outputs are acknowledged",
    ),
];

/// Reads, checks and lowers the spec at `path`, reporting every problem found.
pub fn load(path: &Path) -> Result<Topology, SpecErrors> {
    load_with(path, true)
}

/// Like [`load`], but without requiring the component files to exist
/// (enough to describe a topology before its operators are built).
pub fn load_shape(path: &Path) -> Result<Topology, SpecErrors> {
    load_with(path, false)
}

fn load_with(path: &Path, check_files: bool) -> Result<Topology, SpecErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SpecErrors(vec![SpecError {
            file: path.to_path_buf(),
            line: 1,
            key: String::new(),
            message: format!("cannot read the spec: {e}"),
        }])
    })?;
    parse_with(path, &text, check_files)
}

/// Checks and lowers spec text; `path` names it in errors and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Topology, SpecErrors> {
    parse_with(path, text, true)
}

pub(crate) fn parse_with(
    path: &Path,
    text: &str,
    check_files: bool,
) -> Result<Topology, SpecErrors> {
    let lines = Lines::new(path, text);
    let spec: SpecFile = toml::from_str(text).map_err(|e| {
        SpecErrors(vec![lines.error(
            e.span(),
            String::new(),
            e.message().trim().to_string(),
        )])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut v = Validator {
        lines: &lines,
        errors: Vec::new(),
        check_files,
    };
    let topology = v.lower(&spec, &base, path);
    if v.errors.is_empty() {
        Ok(topology)
    } else {
        Err(SpecErrors(v.errors))
    }
}

struct Validator<'a> {
    lines: &'a Lines<'a>,
    errors: Vec<SpecError>,
    check_files: bool,
}

impl Validator<'_> {
    fn err<T>(&mut self, at: &Spanned<T>, key: impl Into<String>, msg: impl Into<String>) {
        self.errors
            .push(self.lines.error(Some(at.span()), key, msg));
    }

    fn lower(&mut self, spec: &SpecFile, base: &Path, path: &Path) -> Topology {
        let app = spec.application_id.get_ref().clone();
        if app.is_empty()
            || !app
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            self.err(&spec.application_id, "application_id", "use letters, digits, '.', '_' and '-' only (it names the consumer group and internal topics)");
        }
        let mut kafka = Vec::new();
        for (k, v) in &spec.kafka {
            if let Some((_, why)) = OWNED_KAFKA_KEYS.iter().find(|(o, _)| o == k) {
                self.err(
                    v,
                    format!("kafka.\"{k}\""),
                    format!("eddy sets this itself ({why}); remove it"),
                );
            }
            kafka.push((k.clone(), v.get_ref().to_string()));
        }
        let runtime = self.runtime(spec);
        let sources = self.sources(spec);
        let mut steps = self.steps(spec, base);
        let mut sinks = self.sinks(spec);
        let wired = self.errors.len();
        self.wire(spec, &sources, &mut steps, &mut sinks);
        // Rules about the graph only make sense once every `from` resolved.
        if self.errors.len() == wired {
            self.graph_rules(spec, &sources, &steps, &sinks);
        }
        let state = self.state(spec, base);
        let plan = if self.errors.is_empty() {
            crate::topology::plan::plan(&app, &sources, &steps, &sinks)
        } else {
            crate::topology::Plan::default()
        };
        let admin = self.admin(spec);
        Topology {
            application_id: app,
            spec_path: path.to_path_buf(),
            kafka,
            runtime,
            sources,
            steps,
            sinks,
            state,
            plan,
            admin,
        }
    }

    fn topic_name(&mut self, t: &Spanned<String>, key: &str) {
        self.topic_text(t, t.get_ref(), key);
    }

    /// Checks topic `name`, written at `at`.
    fn topic_text<T>(&mut self, at: &Spanned<T>, name: &str, key: &str) {
        let legal = !name.is_empty()
            && name.len() <= 249
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !legal || name == "." || name == ".." {
            self.err(at, key, format!("{name:?} is not a legal Kafka topic name (1-249 of letters, digits, '.', '_', '-')"));
        }
    }

    /// Checks a node name: it becomes part of internal topic names.
    fn node_name(&mut self, n: &Spanned<String>, key: &str) {
        let name = n.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            self.err(n, key, "use letters, digits, '.', '_' and '-' only (names become parts of internal topic names)");
        }
    }

    /// `[[sinks]]`: topics and error policies (what they read is wired later).
    fn sinks(&mut self, spec: &SpecFile) -> Vec<Sink> {
        if spec.sinks.is_empty() {
            self.errors.push(self.lines.error(
                None,
                "sinks",
                "no sinks: add a [[sinks]] table with a topic",
            ));
        }
        let mut sinks = Vec::new();
        for (i, s) in spec.sinks.iter().enumerate() {
            let s = s.get_ref();
            self.topic_name(&s.topic, &format!("sinks[{i}].topic"));
            let feeds_itself = spec.sources.iter().any(|src| {
                let src = src.get_ref();
                let topic = s.topic.get_ref();
                src.topic.as_ref().is_some_and(|t| t.get_ref() == topic)
                    || src
                        .topics
                        .as_ref()
                        .is_some_and(|l| l.get_ref().contains(topic))
            });
            if feeds_itself {
                self.err(
                    &s.topic,
                    format!("sinks[{i}].topic"),
                    "a sink may not write to a source topic (it would feed itself)",
                );
            }
            let on_error = self.policy(
                s.on_error.as_ref(),
                s.dead_letter_topic.as_ref(),
                &format!(
                    "{}-sink-{}-dead-letters",
                    spec.application_id.get_ref(),
                    s.topic.get_ref()
                ),
                &|k| format!("sinks[{i}].{k}"),
            );
            sinks.push(Sink {
                topic: s.topic.get_ref().clone(),
                inputs: Vec::new(),
                on_error,
            });
        }
        sinks
    }

    fn policy(
        &mut self,
        policy: Option<&Spanned<String>>,
        topic: Option<&Spanned<String>>,
        default: &str,
        key: &dyn Fn(&str) -> String,
    ) -> ErrorPolicy {
        let Some(policy) = policy else {
            if let Some(t) = topic {
                self.err(
                    t,
                    key("dead_letter_topic"),
                    "set on_error = \"dead-letter\" too, or remove dead_letter_topic",
                );
            }
            return ErrorPolicy::Fail;
        };
        match policy.get_ref().as_str() {
            "fail" | "skip" if topic.is_some() => {
                let t = topic.expect("checked");
                self.err(
                    t,
                    key("dead_letter_topic"),
                    "applies to on_error = \"dead-letter\" only",
                );
                ErrorPolicy::Fail
            }
            "fail" => ErrorPolicy::Fail,
            "skip" => ErrorPolicy::Skip,
            "dead-letter" => {
                if let Some(t) = topic {
                    self.topic_name(t, &key("dead_letter_topic"));
                }
                ErrorPolicy::DeadLetter(
                    topic.map_or_else(|| default.to_string(), |t| t.get_ref().clone()),
                )
            }
            other => {
                self.err(
                    policy,
                    key("on_error"),
                    format!("unknown policy {other:?}; expected fail, skip or dead-letter"),
                );
                ErrorPolicy::Fail
            }
        }
    }
}

#[cfg(test)]
mod join_tests;
#[cfg(test)]
mod settings_tests;
#[cfg(test)]
mod tests;
