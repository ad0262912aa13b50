//! `[[steps]]`: what each step does and with which operator, limits and grants.

use super::Validator;
use crate::spec::model::{KafkaValue, SpecFile, StepSpec};
use crate::topology::{
    Aggregation, Emit, ErrorPolicy, Grants, Interface, Join, JoinKind, Joiner, Limits, Op, Step,
};
use crate::units::{parse_duration, parse_size};
use std::collections::HashSet;
use std::path::Path;
use toml::Spanned;

impl Validator<'_> {
    pub(super) fn steps(&mut self, spec: &SpecFile, base: &Path) -> Vec<Step> {
        let mut names = HashSet::new();
        let mut steps = Vec::new();
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
            self.node_name(&s.name, &key("name"));
            let op_name = s.op.as_ref().map_or("process", |o| o.get_ref().as_str());
            let allowed: &[&str] = match op_name {
                "process" => &["component", "interface", "keeps_key", "branches"],
                "group_by_key" => &[],
                "group_by" => &["component", "interface", "key"],
                "count" => &["window", "emit", "store", "late_topic"],
                "reduce" | "aggregate" => &[
                    "component",
                    "interface",
                    "window",
                    "emit",
                    "store",
                    "late_topic",
                ],
                "to_table" => &["store"],
                "join" => &[
                    "component",
                    "interface",
                    "key",
                    "left",
                    "right",
                    "kind",
                    "joiner",
                    "as",
                    "window",
                    "store",
                ],
                other => {
                    let at = s.op.as_ref().expect("op given");
                    self.err(at, key("op"), format!("unknown op {other:?}; expected process, group_by_key, group_by, count, reduce, aggregate, to_table or join"));
                    &["component", "interface", "keeps_key", "branches"]
                }
            };
            let takes_operator = allowed.contains(&"component");
            let present: [(&str, Option<std::ops::Range<usize>>); 16] = [
                ("component", s.component.as_ref().map(Spanned::span)),
                ("interface", s.interface.as_ref().map(Spanned::span)),
                ("keeps_key", s.keeps_key.as_ref().map(Spanned::span)),
                ("branches", s.branches.as_ref().map(Spanned::span)),
                ("key", s.key.as_ref().map(Spanned::span)),
                ("window", s.window.as_ref().map(Spanned::span)),
                ("emit", s.emit.as_ref().map(Spanned::span)),
                ("store", s.store.as_ref().map(Spanned::span)),
                ("late_topic", s.late_topic.as_ref().map(Spanned::span)),
                ("left", s.left.as_ref().map(Spanned::span)),
                ("right", s.right.as_ref().map(Spanned::span)),
                ("kind", s.kind.as_ref().map(Spanned::span)),
                ("joiner", s.joiner.as_ref().map(Spanned::span)),
                ("as", s.merge_as.as_ref().map(Spanned::span)),
                ("settings", (!s.settings.is_empty()).then(|| s.name.span())),
                ("limits", s.limits.as_ref().map(Spanned::span)),
            ];
            for (k, span) in present {
                let operator_key = matches!(k, "settings" | "limits");
                if let Some(span) = span
                    && !allowed.contains(&k)
                    && !(operator_key && takes_operator)
                {
                    self.errors.push(self.lines.error(
                        Some(span),
                        key(k),
                        format!("`{k}` does not apply to op = {op_name:?}"),
                    ));
                }
            }
            if let Some(g) = &s.grants
                && !takes_operator
            {
                self.err(
                    g,
                    key("grants"),
                    format!("`grants` does not apply to op = {op_name:?}"),
                );
            }
            let needs_component = matches!(op_name, "process" | "reduce" | "aggregate");
            if needs_component && s.component.is_none() {
                self.err(
                    &s.name,
                    key("component"),
                    format!("op = {op_name:?} needs `component`: the .wasm file of the operator"),
                );
            }
            if op_name == "group_by" && s.component.is_some() == s.key.is_some() {
                self.err(&s.name, key("key"), "`group_by` takes either `key` (a JSON pointer into the value, e.g. \"/region\") or `component` (a processor that sets each record's new key)");
            }
            let component = s.component.as_ref().map(|c| {
                let path = base.join(c.get_ref());
                if self.check_files && !path.is_file() {
                    self.err(c, key("component"), format!(
                        "no file at {} (paths are relative to the spec file); build the operator with `eddy build <operator-dir>`",
                        path.display()
                    ));
                }
                path
            });
            let expected = match op_name {
                "reduce" | "aggregate" => Interface::Aggregator,
                "join" => Interface::Joiner,
                _ => Interface::Processor,
            };
            let interface = match s.interface.as_ref().map(|i| (i, i.get_ref().as_str())) {
                None => expected,
                Some((at, name)) => {
                    let given = match name {
                        "processor" => Some(Interface::Processor),
                        "aggregator" => Some(Interface::Aggregator),
                        "joiner" => Some(Interface::Joiner),
                        _ => None,
                    };
                    match given {
                        None => self.err(at, key("interface"), format!("unknown interface {name:?}; expected processor, aggregator or joiner")),
                        Some(g) if g != expected => self.err(at, key("interface"), format!("op = {op_name:?} calls the {:?} interface; remove `interface` or set it to {:?}", expected.name(), expected.name())),
                        Some(_) => {}
                    }
                    expected
                }
            };
            let op = self.op(s, op_name, &name, &key);
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
                if branches.is_empty() || branches.iter().any(String::is_empty) {
                    self.err(b, key("branches"), "give a list of non-empty branch names");
                } else if unique.len() != branches.len() {
                    let twice = branches
                        .iter()
                        .find(|n| branches.iter().filter(|m| m == n).count() > 1)
                        .expect("a repeated name");
                    self.err(
                        b,
                        key("branches"),
                        format!(
                            "branch name {twice:?} is used twice; branch names must be distinct"
                        ),
                    );
                } else if let Some(dotted) = branches.iter().find(|n| n.contains('.')) {
                    self.err(
                        b,
                        key("branches"),
                        format!("branch name {dotted:?} contains '.', which separates a step from its branch in `from`"),
                    );
                }
            }
            let limits = self.limits(s, &key);
            let grants = self.grants(s, base, &key);
            // A built-in joiner fails on values it cannot merge, too.
            let calls_operator = s.component.is_some() || op_name == "join";
            let on_error = self.on_error(s, &spec.application_id, &name, calls_operator, &key);
            steps.push(Step {
                name,
                op,
                component,
                interface,
                settings,
                branches,
                inputs: Vec::new(),
                limits,
                grants,
                on_error,
                line,
            });
        }
        steps
    }

    fn op(&mut self, s: &StepSpec, op_name: &str, name: &str, key: &dyn Fn(&str) -> String) -> Op {
        let store = match &s.store {
            Some(st) => {
                let n = st.get_ref();
                if n.is_empty()
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                {
                    self.err(st, key("store"), "use letters, digits, '.', '_' and '-' only (the store names its changelog topic)");
                }
                n.clone()
            }
            None => name.to_string(),
        };
        let aggregation = |v: &mut Self| {
            let window = s.window.as_ref().and_then(|w| v.window(w, key));
            let emit = match s.emit.as_ref().map(|e| (e, e.get_ref().as_str())) {
                None | Some((_, "update")) => Emit::Update,
                Some((_, "final")) => Emit::Final,
                Some((e, other)) => {
                    v.err(e, key("emit"), format!("{other:?}: expected \"update\" (every change) or \"final\" (one result when the window closes)"));
                    Emit::Update
                }
            };
            let late_topic = s.late_topic.as_ref().map(|t| {
                v.topic_name(t, &key("late_topic"));
                if window.is_none() {
                    v.err(
                        t,
                        key("late_topic"),
                        "only windowed aggregations drop late records",
                    );
                }
                t.get_ref().clone()
            });
            Aggregation {
                store: store.clone(),
                window,
                emit,
                late_topic,
            }
        };
        match op_name {
            "group_by_key" => Op::GroupByKey,
            "group_by" => {
                let field = s.key.as_ref().map(|k| {
                    if !k.get_ref().starts_with('/') {
                        self.err(k, key("key"), format!("{:?} is not a JSON pointer; write e.g. \"/region\" or \"/user/id\"", k.get_ref()));
                    }
                    k.get_ref().clone()
                });
                Op::GroupBy { field }
            }
            "count" => Op::Count(aggregation(self)),
            "reduce" => Op::Reduce(aggregation(self)),
            "aggregate" => Op::Aggregate(aggregation(self)),
            "to_table" => Op::ToTable { store },
            "join" => Op::Join(self.join(s, store, key)),
            _ => Op::Process {
                keeps_key: s.keeps_key.as_ref().is_some_and(|k| *k.get_ref()),
            },
        }
    }

    /// A join's kind, joiner and window (whether the window is needed
    /// depends on its inputs, checked with the graph).
    fn join(&mut self, s: &StepSpec, store: String, key: &dyn Fn(&str) -> String) -> Join {
        let kind = match s.kind.as_ref().map(|k| (k, k.get_ref().as_str())) {
            None | Some((_, "inner")) => JoinKind::Inner,
            Some((_, "left")) => JoinKind::Left,
            Some((_, "outer")) => JoinKind::Outer,
            Some((k, other)) => {
                self.err(
                    k,
                    key("kind"),
                    format!("{other:?}: expected \"inner\", \"left\" or \"outer\""),
                );
                JoinKind::Inner
            }
        };
        let joiner = match (s.joiner.as_ref(), s.component.is_some()) {
            (None, true) => Joiner::Component,
            (None, false) => {
                self.err(&s.name, key("joiner"), "a join needs `joiner`: \"merge\", \"pair\", \"left\" or \"right\", or a `component` exporting the joiner interface");
                Joiner::Pair
            }
            (Some(j), true) => {
                self.err(
                    j,
                    key("joiner"),
                    "give either `joiner` (a built-in) or `component` (a Wasm joiner), not both",
                );
                Joiner::Component
            }
            (Some(j), false) => match j.get_ref().as_str() {
                "merge" => Joiner::Merge {
                    into: s.merge_as.as_ref().map(|a| a.get_ref().clone()),
                },
                "pair" => Joiner::Pair,
                "left" => Joiner::Left,
                "right" => Joiner::Right,
                other => {
                    self.err(j, key("joiner"), format!("{other:?}: expected \"merge\", \"pair\", \"left\" or \"right\" (or a `component`)"));
                    Joiner::Pair
                }
            },
        };
        if let Some(a) = &s.merge_as {
            if !matches!(joiner, Joiner::Merge { .. }) {
                self.err(a, key("as"), "`as` applies to joiner = \"merge\"");
            } else if a.get_ref().is_empty() {
                self.err(
                    a,
                    key("as"),
                    "give the field name the right value goes under",
                );
            }
        }
        for (name, side) in [("left", &s.left), ("right", &s.right)] {
            if side.is_none() {
                self.err(
                    &s.name,
                    key(name),
                    format!("a join needs `{name}`: the node it reads as its {name} input"),
                );
            }
        }
        if let Some(f) = &s.from {
            self.err(
                f,
                key("from"),
                "a join reads `left` and `right`, not `from`",
            );
        }
        let window = s.window.as_ref().and_then(|w| self.join_window(w, key));
        // Both name a field of a value by a JSON pointer.
        let mut pointer = |field: &Option<Spanned<String>>, name: &str| {
            field.as_ref().map(|k| {
                if !k.get_ref().starts_with('/') {
                    let why = format!(
                        "{:?} is not a JSON pointer; write e.g. \"/product_id\"",
                        k.get_ref()
                    );
                    self.err(k, key(name), why);
                }
                k.get_ref().clone()
            })
        };
        let lookup = pointer(&s.key, "key");
        let foreign_key = pointer(&s.foreign_key, "foreign_key");
        Join {
            kind,
            joiner,
            window,
            key: lookup,
            foreign_key,
            store,
        }
    }

    fn on_error(
        &mut self,
        s: &StepSpec,
        app: &Spanned<String>,
        name: &str,
        calls_operator: bool,
        key: &dyn Fn(&str) -> String,
    ) -> ErrorPolicy {
        if let Some(policy) = &s.on_error
            && !calls_operator
        {
            self.err(policy, key("on_error"), "`on_error` applies to steps that call an operator (`process`, `group_by` with `component`, `reduce`, `aggregate`); `count` and groupings by field call none");
            return ErrorPolicy::Fail;
        }
        self.policy(
            s.on_error.as_ref(),
            s.dead_letter_topic.as_ref(),
            &format!("{}-{name}-dead-letters", app.get_ref()),
            key,
        )
    }

    /// A step's `limits`, each checked, the defaults for those not given.
    fn limits(&mut self, s: &StepSpec, key: &dyn Fn(&str) -> String) -> Limits {
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
        if let Some(f) = &l.get_ref().fuel {
            match u64::try_from(*f.get_ref()) {
                Ok(n) if n > 0 => limits.fuel = Some(n),
                _ => self.err(f, key("limits.fuel"), "must be a positive whole number"),
            }
        }
        if let Some(n) = &l.get_ref().outputs_per_record {
            match usize::try_from(*n.get_ref()) {
                Ok(n) if (1..=1_000_000).contains(&n) => limits.outputs_per_record = n,
                _ => self.err(
                    n,
                    key("limits.outputs_per_record"),
                    "must be between 1 and 1000000",
                ),
            }
        }
        if let Some(r) = &l.get_ref().record_size {
            match parse_size(r.get_ref()) {
                Ok(b) if (1024..=1 << 30).contains(&b) => limits.record_bytes = b,
                Ok(_) => self.err(
                    r,
                    key("limits.record_size"),
                    "must be between 1KiB and 1GiB",
                ),
                Err(e) => self.err(r, key("limits.record_size"), e),
            }
        }
        limits
    }

    fn grants(&mut self, s: &StepSpec, base: &Path, key: &dyn Fn(&str) -> String) -> Grants {
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
}
