//! Reading a spec file, checking it whole and lowering it to a [`Topology`].

use super::error::{Lines, SpecError, SpecErrors};
use super::model::{KafkaValue, SpecFile};
use crate::topology::{Grants, Interface, Limits, RuntimeConfig, Sink, Step, Topology};
use crate::units::{parse_duration, parse_size};
use std::collections::HashSet;
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

fn parse_with(path: &Path, text: &str, check_files: bool) -> Result<Topology, SpecErrors> {
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
        let mut sources = Vec::new();
        if spec.sources.is_empty() {
            self.errors.push(self.lines.error(
                None,
                "sources",
                "no sources: add a [[sources]] table with a topic",
            ));
        }
        for (i, s) in spec.sources.iter().enumerate() {
            let t = s.get_ref().topic.get_ref();
            self.topic_name(&s.get_ref().topic, &format!("sources[{i}].topic"));
            if sources.contains(t) {
                self.err(
                    &s.get_ref().topic,
                    format!("sources[{i}].topic"),
                    format!("topic {t:?} is already a source"),
                );
            }
            sources.push(t.clone());
        }
        let steps = self.steps(spec, base);
        let sinks = self.sinks(spec, &steps);
        Topology {
            application_id: app,
            spec_path: path.to_path_buf(),
            kafka,
            runtime,
            sources,
            steps,
            sinks,
        }
    }

    fn topic_name(&mut self, t: &Spanned<String>, key: &str) {
        let name = t.get_ref();
        let legal = !name.is_empty()
            && name.len() <= 249
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !legal || name == "." || name == ".." {
            self.err(t, key, format!("{name:?} is not a legal Kafka topic name (1-249 of letters, digits, '.', '_', '-')"));
        }
    }

    fn runtime(&mut self, spec: &SpecFile) -> RuntimeConfig {
        let mut cfg = RuntimeConfig::default();
        let Some(r) = &spec.runtime else { return cfg };
        let r = r.get_ref();
        if let Some(w) = &r.workers {
            match usize::try_from(*w.get_ref()) {
                Ok(n) if (1..=256).contains(&n) => cfg.workers = n,
                _ => self.err(w, "runtime.workers", "must be between 1 and 256"),
            }
        }
        if let Some(b) = &r.batch_size {
            match usize::try_from(*b.get_ref()) {
                Ok(n) if (1..=1_000_000).contains(&n) => cfg.batch_size = n,
                _ => self.err(b, "runtime.batch_size", "must be between 1 and 1000000"),
            }
        }
        for (field, key, target) in [
            (
                &r.commit_interval,
                "runtime.commit_interval",
                &mut cfg.commit_interval,
            ),
            (
                &r.poll_timeout,
                "runtime.poll_timeout",
                &mut cfg.poll_timeout,
            ),
        ] {
            if let Some(d) = field {
                match parse_duration(d.get_ref()) {
                    Ok(v) => *target = v,
                    Err(e) => self.errors.push(self.lines.error(Some(d.span()), key, e)),
                }
            }
        }
        cfg
    }

    fn steps(&mut self, spec: &SpecFile, base: &Path) -> Vec<Step> {
        let mut names = HashSet::new();
        let mut steps = Vec::new();
        let last = spec.steps.len().saturating_sub(1);
        for (i, s) in spec.steps.iter().enumerate() {
            let line = self.lines.line_of(s.span().start);
            let s = s.get_ref();
            let key = |f: &str| format!("steps[{i}].{f}");
            let name = s.name.get_ref().clone();
            if name.is_empty() || !names.insert(name.clone()) {
                self.err(
                    &s.name,
                    key("name"),
                    format!("step name {name:?} is empty or used twice; names must be unique"),
                );
            }
            let component = base.join(s.component.get_ref());
            if self.check_files && !component.is_file() {
                self.err(&s.component, key("component"), format!(
                    "no file at {} (paths are relative to the spec file); build the operator with `eddy build <operator-dir>`",
                    component.display()
                ));
            }
            let interface = match s.interface.get_ref().as_str() {
                "processor" => Interface::Processor,
                "aggregator" | "joiner" => {
                    self.err(&s.interface, key("interface"), "aggregator and joiner operators are used by grouping and join nodes, which a chain step cannot be yet; use a processor");
                    Interface::Processor
                }
                other => {
                    self.err(
                        &s.interface,
                        key("interface"),
                        format!("unknown interface {other:?}; expected processor"),
                    );
                    Interface::Processor
                }
            };
            let mut settings = Vec::new();
            for (k, v) in &s.settings {
                settings.push((k.clone(), v.get_ref().to_string()));
                if let KafkaValue::Float(x) = v.get_ref()
                    && !x.is_finite()
                {
                    self.err(v, key(&format!("settings.{k}")), "must be a finite number");
                }
            }
            let branches = s
                .branches
                .as_ref()
                .map(|b| b.get_ref().clone())
                .unwrap_or_default();
            if let Some(b) = &s.branches {
                let unique: HashSet<_> = branches.iter().collect();
                if i != last {
                    self.err(
                        b,
                        key("branches"),
                        "only the last step may branch; move this step last or split the pipeline",
                    );
                } else if branches.is_empty()
                    || unique.len() != branches.len()
                    || branches.iter().any(String::is_empty)
                {
                    self.err(
                        b,
                        key("branches"),
                        "give a list of distinct, non-empty branch names",
                    );
                }
            }
            let limits = self.limits(s, &key);
            let grants = self.grants(s, base, &key);
            steps.push(Step {
                name,
                component,
                interface,
                settings,
                branches,
                limits,
                grants,
                line,
            });
        }
        steps
    }

    fn limits(&mut self, s: &super::model::StepSpec, key: &dyn Fn(&str) -> String) -> Limits {
        let mut limits = Limits::default();
        let Some(l) = &s.limits else { return limits };
        if let Some(m) = &l.get_ref().memory {
            match parse_size(m.get_ref()) {
                Ok(b) if b >= 1 << 20 => limits.memory_bytes = b,
                Ok(_) => self.err(m, key("limits.memory"), "must be at least 1MiB"),
                Err(e) => self.err(m, key("limits.memory"), e),
            }
        }
        if let Some(t) = &l.get_ref().timeout {
            match parse_duration(t.get_ref()) {
                Ok(d) if !d.is_zero() => limits.timeout = d,
                Ok(_) => self.err(t, key("limits.timeout"), "must be more than zero"),
                Err(e) => self.err(t, key("limits.timeout"), e),
            }
        }
        limits
    }

    fn grants(
        &mut self,
        s: &super::model::StepSpec,
        base: &Path,
        key: &dyn Fn(&str) -> String,
    ) -> Grants {
        let mut grants = Grants::default();
        let Some(g) = &s.grants else { return grants };
        let g = g.get_ref();
        grants.clock = g.clock;
        grants.network = g.network;
        for e in &g.env {
            if e.get_ref().is_empty() || e.get_ref().contains('=') {
                self.err(
                    e,
                    key("grants.env"),
                    "list variable names only; their values come from eddy's environment",
                );
            }
            grants.env.push(e.get_ref().clone());
        }
        for d in &g.dirs {
            let host = base.join(&d.get_ref().host);
            if !host.is_dir() {
                self.err(
                    d,
                    key("grants.dirs"),
                    format!("{} is not a directory", host.display()),
                );
            }
            grants
                .dirs
                .push((host, d.get_ref().guest.clone(), d.get_ref().writable));
        }
        grants
    }

    fn sinks(&mut self, spec: &SpecFile, steps: &[Step]) -> Vec<Sink> {
        let branches = steps.last().map(|s| s.branches.clone()).unwrap_or_default();
        let mut sinks = Vec::new();
        if spec.sinks.is_empty() {
            self.errors.push(self.lines.error(
                None,
                "sinks",
                "no sinks: add a [[sinks]] table with a topic",
            ));
        }
        for (i, s) in spec.sinks.iter().enumerate() {
            let s = s.get_ref();
            self.topic_name(&s.topic, &format!("sinks[{i}].topic"));
            if spec
                .sources
                .iter()
                .any(|src| src.get_ref().topic.get_ref() == s.topic.get_ref())
            {
                self.err(
                    &s.topic,
                    format!("sinks[{i}].topic"),
                    "a sink may not write to a source topic (it would feed itself)",
                );
            }
            let branch = match (&s.from, branches.is_empty()) {
                (None, true) => None,
                (None, false) => {
                    self.err(&s.topic, format!("sinks[{i}]"), format!("the last step branches, so say which branch feeds this sink: from = one of {branches:?}"));
                    None
                }
                (Some(f), true) => {
                    self.err(f, format!("sinks[{i}].from"), "the last step declares no branches; remove `from` or add `branches` to the step");
                    None
                }
                (Some(f), false) => match branches.iter().position(|b| b == f.get_ref()) {
                    Some(b) => Some(b),
                    None => {
                        self.err(
                            f,
                            format!("sinks[{i}].from"),
                            format!(
                                "no branch {:?}; the last step's branches are {branches:?}",
                                f.get_ref()
                            ),
                        );
                        None
                    }
                },
            };
            sinks.push(Sink {
                topic: s.topic.get_ref().clone(),
                branch,
            });
        }
        for (b, name) in branches.iter().enumerate() {
            if !sinks.iter().any(|s| s.branch == Some(b)) && !spec.sinks.is_empty() {
                let at = spec
                    .steps
                    .last()
                    .and_then(|s| s.get_ref().branches.as_ref())
                    .expect("branches exist");
                self.err(
                    at,
                    format!("steps[{}].branches", steps.len() - 1),
                    format!("branch {name:?} feeds no sink; add a [[sinks]] with from = {name:?}"),
                );
            }
        }
        sinks
    }
}
