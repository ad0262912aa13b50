//! Reading a spec file, checking it whole and lowering it to a [`Topology`].

use super::error::{Lines, SpecError, SpecErrors};
use super::model::{KafkaValue, SpecFile};
use crate::topology::{
    AdminConfig, Aggregation, Emit, ErrorPolicy, Grants, Interface, Limits, Op, RuntimeConfig,
    Sink, Source, StateConfig, Step, StoreKind, TimestampSource, Topology, Window, WindowKind,
};
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
        let sources = self.sources(spec);
        let steps = self.steps(spec, base);
        self.chain_rules(spec, &sources, &steps);
        let sinks = self.sinks(spec, &steps);
        let state = self.state(spec, base);
        let subtopologies = crate::topology::plan::plan(&app, &steps);
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
            subtopologies,
            admin,
        }
    }

    fn sources(&mut self, spec: &SpecFile) -> Vec<Source> {
        let mut sources: Vec<Source> = Vec::new();
        if spec.sources.is_empty() {
            self.errors.push(self.lines.error(
                None,
                "sources",
                "no sources: add a [[sources]] table with a topic",
            ));
        }
        for (i, s) in spec.sources.iter().enumerate() {
            let s = s.get_ref();
            let t = s.topic.get_ref();
            self.topic_name(&s.topic, &format!("sources[{i}].topic"));
            if sources.iter().any(|x| &x.topic == t) {
                self.err(
                    &s.topic,
                    format!("sources[{i}].topic"),
                    format!("topic {t:?} is already a source"),
                );
            }
            let table = match s.read_as.as_ref().map(|a| (a, a.get_ref().as_str())) {
                None | Some((_, "stream")) => false,
                Some((_, "table")) => true,
                Some((a, other)) => {
                    self.err(
                        a,
                        format!("sources[{i}].as"),
                        format!("{other:?}: expected \"stream\" or \"table\""),
                    );
                    false
                }
            };
            let timestamp = match s.timestamp.as_ref().map(|a| (a, a.get_ref().as_str())) {
                None | Some((_, "record")) => TimestampSource::Record,
                Some((_, "processing-time")) => TimestampSource::ProcessingTime,
                Some((_, p)) if p.starts_with('/') => TimestampSource::Field(p.to_string()),
                Some((a, other)) => {
                    self.err(
                        a,
                        format!("sources[{i}].timestamp"),
                        format!("{other:?}: expected \"record\", \"processing-time\" or a JSON pointer into the value such as \"/ts\""),
                    );
                    TimestampSource::Record
                }
            };
            let on_error = self.policy(
                s.on_error.as_ref(),
                s.dead_letter_topic.as_ref(),
                &format!("{}-source-{t}-dead-letters", spec.application_id.get_ref()),
                &|k| format!("sources[{i}].{k}"),
            );
            sources.push(Source {
                topic: t.clone(),
                table,
                timestamp,
                on_error,
            });
        }
        if sources.iter().any(|s| s.table) && sources.iter().any(|s| !s.table) {
            let at = &spec.sources[0];
            self.err(
                at,
                "sources",
                "all sources feed one chain, so read them all as streams or all as tables",
            );
        }
        sources
    }

    fn state(&mut self, spec: &SpecFile, base: &Path) -> StateConfig {
        let mut cfg = StateConfig::default();
        let Some(st) = &spec.state else { return cfg };
        let st = st.get_ref();
        if let Some(d) = &st.dir {
            if d.get_ref().is_empty() {
                self.err(d, "state.dir", "give a directory");
            }
            cfg.dir = base.join(d.get_ref());
        }
        if let Some(c) = &st.cache_size {
            match parse_size(c.get_ref()) {
                Ok(b) => cfg.cache_bytes = b,
                Err(e) => self.err(c, "state.cache_size", e),
            }
        }
        if let Some(k) = &st.store {
            match k.get_ref().as_str() {
                "rocksdb" => cfg.store = StoreKind::RocksDb,
                "memory" => cfg.store = StoreKind::Memory,
                other => self.err(
                    k,
                    "state.store",
                    format!("{other:?}: expected \"rocksdb\" or \"memory\""),
                ),
            }
        }
        cfg
    }

    /// Rules about the order of steps: what may follow what.
    fn chain_rules(&mut self, spec: &SpecFile, sources: &[Source], steps: &[Step]) {
        let mut stores = HashSet::new();
        for (i, st) in steps.iter().enumerate() {
            let store = match &st.op {
                Op::ToTable { store } => Some(store),
                op => op.aggregation().map(|a| &a.store),
            };
            if let Some(store) = store
                && !stores.insert(store.clone())
            {
                self.err(&spec.steps[i], format!("steps[{i}].store"), format!("store {store:?} is used by an earlier step; give each stateful step its own store"));
            }
        }
        let mut table = sources.first().is_some_and(|s| s.table);
        let mut windowed = false;
        for (i, st) in steps.iter().enumerate() {
            let at = &spec.steps[i];
            let key = format!("steps[{i}].op");
            let next = steps.get(i + 1).map(|n| &n.op);
            if st.op.is_grouping() && next.is_none_or(|n| n.aggregation().is_none()) {
                self.err(at, &key, format!("`{}` must be followed by an aggregation step (op = \"count\", \"reduce\" or \"aggregate\")", st.op.name()));
            }
            if matches!(st.op, Op::GroupBy { field: None }) && table {
                self.err(at, format!("steps[{i}].component"), "on a table, `group_by` takes `key` (a JSON pointer): the old and new values of a row must both map to a group");
            }
            if st.op.is_grouping() && windowed {
                self.err(
                    at,
                    &key,
                    "a windowed aggregation's results cannot be grouped again",
                );
            }
            if let Some(a) = st.op.aggregation() {
                let prev = i.checked_sub(1).map(|p| &steps[p].op);
                if !prev.is_some_and(Op::is_grouping) {
                    self.err(at, &key, format!("`{}` aggregates groups: put a step with op = \"group_by_key\" or \"group_by\" right before it", st.op.name()));
                }
                if table && a.window.is_some() {
                    self.err(at, format!("steps[{i}].window"), "a table's rows cannot be windowed (Kafka Streams has no windowed table aggregation); read the source as a stream");
                }
                if a.emit == Emit::Final && a.window.is_none() {
                    self.err(
                        at,
                        format!("steps[{i}].emit"),
                        "emit = \"final\" needs a window: a non-windowed aggregate never closes",
                    );
                }
                windowed = a.window.is_some();
                table = true;
                continue;
            }
            match &st.op {
                Op::Process { .. } => {
                    // A processor reads a table's changes as a stream (toStream).
                    table = false;
                    windowed = false;
                }
                Op::ToTable { .. } => {
                    if table {
                        self.err(at, &key, "the input is a table already");
                    }
                    table = true;
                    windowed = false;
                }
                _ => {}
            }
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

    fn admin(&mut self, spec: &SpecFile) -> Option<AdminConfig> {
        let a = spec.admin.as_ref()?.get_ref();
        let listen = match &a.listen {
            None => crate::topology::DEFAULT_ADMIN_LISTEN
                .parse()
                .expect("a valid address"),
            Some(l) => match l.get_ref().parse::<std::net::SocketAddr>() {
                Ok(addr) => addr,
                Err(_) => {
                    self.err(
                        l,
                        "admin.listen",
                        "expected an IP address and port, e.g. \"127.0.0.1:9470\"",
                    );
                    return None;
                }
            },
        };
        let token = a.token.as_ref().map(|t| t.get_ref().clone());
        if let Some(t) = &a.token
            && t.get_ref().len() < 16
        {
            self.err(t, "admin.token", "use at least 16 characters");
        }
        if !listen.ip().is_loopback() && token.is_none() {
            let at = a.listen.as_ref().expect("given: the default is loopback");
            self.err(at, "admin.listen", "listening beyond loopback needs `admin.token` (callers send it as `Authorization: Bearer <token>`)");
        }
        let advertise = a.advertise.as_ref().and_then(|v| {
            let text = v.get_ref();
            let ok = text
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                self.err(
                    v,
                    "admin.advertise",
                    "expected host:port, e.g. \"10.0.0.5:9470\"",
                );
            }
            ok.then(|| text.clone())
        });
        Some(AdminConfig {
            listen,
            token,
            advertise,
        })
    }

    fn runtime(&mut self, spec: &SpecFile) -> RuntimeConfig {
        let mut cfg = RuntimeConfig::default();
        let Some(r) = &spec.runtime else { return cfg };
        let r = r.get_ref();
        if let Some(w) = &r.watch {
            cfg.watch = *w.get_ref();
        }
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
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                self.err(&s.name, key("name"), "use letters, digits, '.', '_' and '-' only (step names become parts of internal topic names)");
            }
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
                other => {
                    let at = s.op.as_ref().expect("op given");
                    self.err(at, key("op"), format!("unknown op {other:?}; expected process, group_by_key, group_by, count, reduce, aggregate or to_table"));
                    &["component", "interface", "keeps_key", "branches"]
                }
            };
            let takes_operator = allowed.contains(&"component");
            let present: [(&str, Option<std::ops::Range<usize>>); 11] = [
                ("component", s.component.as_ref().map(Spanned::span)),
                ("interface", s.interface.as_ref().map(Spanned::span)),
                ("keeps_key", s.keeps_key.as_ref().map(Spanned::span)),
                ("branches", s.branches.as_ref().map(Spanned::span)),
                ("key", s.key.as_ref().map(Spanned::span)),
                ("window", s.window.as_ref().map(Spanned::span)),
                ("emit", s.emit.as_ref().map(Spanned::span)),
                ("store", s.store.as_ref().map(Spanned::span)),
                ("late_topic", s.late_topic.as_ref().map(Spanned::span)),
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
            let expected = if matches!(op_name, "reduce" | "aggregate") {
                Interface::Aggregator
            } else {
                Interface::Processor
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
            let calls_operator = s.component.is_some();
            let on_error = self.on_error(s, &spec.application_id, &name, calls_operator, &key);
            steps.push(Step {
                name,
                op,
                component,
                interface,
                settings,
                branches,
                limits,
                grants,
                on_error,
                line,
            });
        }
        steps
    }

    fn op(
        &mut self,
        s: &super::model::StepSpec,
        op_name: &str,
        name: &str,
        key: &dyn Fn(&str) -> String,
    ) -> Op {
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
            _ => Op::Process {
                keeps_key: s.keeps_key.as_ref().is_some_and(|k| *k.get_ref()),
            },
        }
    }

    fn window(
        &mut self,
        w: &Spanned<super::model::WindowSpec>,
        key: &dyn Fn(&str) -> String,
    ) -> Option<Window> {
        let ws = w.get_ref();
        let mut ok = true;
        let mut dur = |v: &mut Self, field: Option<&Spanned<String>>, name: &str, need: bool| {
            let k = key(&format!("window.{name}"));
            match field {
                None if need => {
                    v.err(
                        w,
                        k,
                        format!("a {} window needs `{name}`", ws.kind.get_ref()),
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
        let kind_name = ws.kind.get_ref().as_str();
        let fields: &[&str] = match kind_name {
            "tumbling" => &["size"],
            "hopping" => &["size", "advance"],
            "sliding" => &["difference"],
            "session" => &["gap"],
            other => {
                self.err(
                    &ws.kind,
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

    fn on_error(
        &mut self,
        s: &super::model::StepSpec,
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

    /// An `on_error` policy and its `dead_letter_topic` (`default` when
    /// none is given).
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
        if let Some(f) = &l.get_ref().fuel {
            match u64::try_from(*f.get_ref()) {
                Ok(n) if n > 0 => limits.fuel = Some(n),
                _ => self.err(f, key("limits.fuel"), "must be a positive whole number"),
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
                branch,
                on_error,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{Emit, SubInput, SubOutput};

    fn errors(text: &str) -> Vec<String> {
        match parse_with(Path::new("p.toml"), text, false) {
            Ok(_) => Vec::new(),
            Err(e) => e.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn with_steps(steps: &str) -> String {
        format!(
            "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\n{steps}\n[[sinks]]\ntopic = \"out\"\n"
        )
    }

    #[test]
    fn a_stateful_chain_lowers_to_ops_windows_and_sub_topologies() {
        let text = with_steps(
            "[[steps]]\nname = \"split\"\ncomponent = \"s.wasm\"\n\
             [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n\
             [[steps]]\nname = \"c\"\nop = \"count\"\nstore = \"counts\"\nemit = \"final\"\nlate_topic = \"late\"\n\
             window = { kind = \"hopping\", size = \"10s\", advance = \"5s\", grace = \"1s\" }\n",
        );
        let t = parse_with(Path::new("p.toml"), &text, false).unwrap();
        let a = t.steps[2].op.aggregation().unwrap();
        assert_eq!(a.store, "counts");
        assert_eq!(a.emit, Emit::Final);
        assert_eq!(a.late_topic.as_deref(), Some("late"));
        assert_eq!(a.window.unwrap().grace, std::time::Duration::from_secs(1));
        assert_eq!(
            t.subtopologies.len(),
            2,
            "split may change keys: repartition"
        );
        assert_eq!(
            t.subtopologies[0].output,
            SubOutput::Repartition("a-g-repartition".into())
        );
        assert_eq!(
            t.subtopologies[1].input,
            SubInput::Repartition("a-g-repartition".into())
        );
        assert_eq!(t.changelog_topic("counts"), "a-counts-changelog");
    }

    #[test]
    fn sources_and_sinks_take_error_policies_with_their_own_default_topics() {
        let text = "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\ntimestamp = \"/ts\"\non_error = \"dead-letter\"\n\
                    [[sinks]]\ntopic = \"out\"\non_error = \"skip\"\n\
                    [[sinks]]\ntopic = \"out2\"\non_error = \"dead-letter\"\n";
        let t = parse_with(Path::new("p.toml"), text, false).unwrap();
        assert_eq!(
            t.sources[0].on_error,
            ErrorPolicy::DeadLetter("a-source-in-dead-letters".into())
        );
        assert_eq!(t.sinks[0].on_error, ErrorPolicy::Skip);
        assert_eq!(
            t.sinks[1].on_error,
            ErrorPolicy::DeadLetter("a-sink-out2-dead-letters".into())
        );
        let bad = errors(
            "application_id = \"a\"\n[[sources]]\ntopic = \"in\"\non_error = \"ignore\"\n\
             [[sinks]]\ntopic = \"out\"\non_error = \"dead-letter\"\ndead_letter_topic = \"bad topic\"\n",
        );
        assert!(
            bad.iter()
                .any(|e| e.contains("sources[0].on_error") && e.contains("\"ignore\"")),
            "{bad:?}"
        );
        assert!(
            bad.iter()
                .any(|e| e.contains("sinks[0].dead_letter_topic") && e.contains("not a legal")),
            "{bad:?}"
        );
    }

    #[test]
    fn error_policies_default_to_fail_and_name_their_topic() {
        let t = parse_with(
            Path::new("p.toml"),
            &with_steps(
                "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\non_error = \"skip\"\n\
                 [[steps]]\nname = \"b\"\ncomponent = \"s.wasm\"\non_error = \"dead-letter\"\n\
                 [[steps]]\nname = \"c\"\ncomponent = \"s.wasm\"\non_error = \"dead-letter\"\ndead_letter_topic = \"bad\"\n\
                 [[steps]]\nname = \"d\"\ncomponent = \"s.wasm\"\n",
            ),
            false,
        )
        .unwrap();
        let policies: Vec<_> = t.steps.iter().map(|s| s.on_error.clone()).collect();
        assert_eq!(
            policies,
            [
                ErrorPolicy::Skip,
                ErrorPolicy::DeadLetter("a-b-dead-letters".into()),
                ErrorPolicy::DeadLetter("bad".into()),
                ErrorPolicy::Fail,
            ]
        );
        let cases = [
            (
                "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\non_error = \"retry\"\n",
                "steps[0].on_error",
                "unknown policy \"retry\"",
            ),
            (
                "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\ndead_letter_topic = \"x\"\n",
                "steps[0].dead_letter_topic",
                "set on_error = \"dead-letter\"",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\non_error = \"skip\"\n",
                "steps[0].on_error",
                "applies to steps that call an operator",
            ),
            (
                "[[steps]]\nname = \"a\"\ncomponent = \"s.wasm\"\nlimits = { fuel = 0 }\n",
                "steps[0].limits.fuel",
                "must be a positive whole number",
            ),
        ];
        for (steps, key, msg) in cases {
            let errs = errors(&with_steps(steps));
            assert!(
                errs.iter().any(|e| e.contains(key) && e.contains(msg)),
                "{steps}: {errs:?}"
            );
        }
    }

    #[test]
    fn misplaced_and_misconfigured_steps_are_named() {
        let cases = [
            (
                "[[steps]]\nname = \"c\"\nop = \"count\"\n",
                "put a step with op = \"group_by_key\"",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n",
                "must be followed by an aggregation",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nemit = \"final\"\n",
                "needs a window",
            ),
            (
                "[[steps]]\nname = \"x\"\nop = \"explode\"\n",
                "unknown op \"explode\"",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
                "either `key`",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\nkey = \"/x\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
                "`key` does not apply to op = \"group_by_key\"",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nwindow = { kind = \"tumbling\" }\n",
                "needs `size`",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nwindow = { kind = \"tumbling\", size = \"1m\", gap = \"1s\" }\n",
                "`gap` does not apply to a tumbling window",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\nwindow = { kind = \"hopping\", size = \"1m\", advance = \"2m\" }\n",
                "must not exceed `size`",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"aggregate\"\n",
                "needs `component`",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"aggregate\"\ncomponent = \"a.wasm\"\ninterface = \"processor\"\n",
                "calls the \"aggregator\" interface",
            ),
            (
                "[[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n[[steps]]\nname = \"g2\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n",
                "used twice",
            ),
        ];
        for (steps, want) in cases {
            let errs = errors(&with_steps(steps));
            assert!(
                errs.iter().any(|e| e.contains(want)),
                "{steps}\nwant {want:?} in {errs:#?}"
            );
            assert!(errs.iter().all(|e| e.starts_with("p.toml:")), "{errs:#?}");
        }
    }

    #[test]
    fn table_sources_and_state_settings() {
        let text = "application_id = \"a\"\n[[sources]]\ntopic = \"accounts\"\nas = \"table\"\ntimestamp = \"/ts\"\n\
                    [[steps]]\nname = \"g\"\nop = \"group_by\"\nkey = \"/region\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n\
                    [[sinks]]\ntopic = \"out\"\n[state]\ndir = \"st\"\ncache_size = \"0\"\nstore = \"memory\"\n";
        let t = parse_with(Path::new("/x/p.toml"), text, false).unwrap();
        assert!(t.sources[0].table);
        assert_eq!(t.sources[0].timestamp, TimestampSource::Field("/ts".into()));
        assert_eq!(t.state.cache_bytes, 0);
        assert_eq!(t.state.store, StoreKind::Memory);
        assert_eq!(t.state.dir, Path::new("/x/st"));
        let windowed = text.replace(
            "op = \"count\"\n",
            "op = \"count\"\nwindow = { kind = \"tumbling\", size = \"1m\" }\n",
        );
        assert!(
            errors(&windowed)
                .iter()
                .any(|e| e.contains("cannot be windowed"))
        );
        let bad = text
            .replace("as = \"table\"", "as = \"tabel\"")
            .replace("store = \"memory\"", "store = \"disk\"");
        let errs = errors(&bad);
        assert!(
            errs.iter().any(|e| e.contains("`sources[0].as`")),
            "{errs:#?}"
        );
        assert!(
            errs.iter().any(|e| e.contains("`state.store`")),
            "{errs:#?}"
        );
    }
}
