//! Wiring the graph: what each step and sink reads (`from`, or the
//! defaults that keep a plain chain a chain), and the rules of the graph:
//! no cycles, every node read, and what may read what.

use super::Validator;
use crate::spec::model::{FromSpec, SpecFile};
use crate::topology::graph::{self, Flow, NodeId, Port};
use crate::topology::{Emit, Op, Sink, Source, Step};
use std::collections::{HashMap, HashSet};
use toml::Spanned;

/// The steps reading node `n`, and a `None` for each sink reading it.
fn readers<'s>(steps: &'s [Step], sinks: &[Sink], n: NodeId) -> Vec<Option<&'s Step>> {
    let reads = |inputs: &[Port]| inputs.iter().any(|p| p.node == n);
    steps
        .iter()
        .filter(|s| reads(&s.inputs))
        .map(Some)
        .chain(sinks.iter().filter(|s| reads(&s.inputs)).map(|_| None))
        .collect()
}

/// `"step.a", "step.b"`: how `from` names the branches of `step`.
fn branch_ports(step: &str, branches: &[String]) -> String {
    branches
        .iter()
        .map(|b| format!("\"{step}.{b}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Node names, for resolving `from`.
struct Names<'a> {
    nodes: HashMap<&'a str, NodeId>,
    sources: &'a [Source],
    steps: &'a [Step],
}

impl<'a> Names<'a> {
    fn new(sources: &'a [Source], steps: &'a [Step]) -> Self {
        let mut nodes = HashMap::new();
        for (i, s) in sources.iter().enumerate() {
            nodes.entry(s.name.as_str()).or_insert(NodeId::Source(i));
        }
        for (k, s) in steps.iter().enumerate() {
            nodes.entry(s.name.as_str()).or_insert(NodeId::Step(k));
        }
        Names {
            nodes,
            sources,
            steps,
        }
    }

    fn branches(&self, n: NodeId) -> &'a [String] {
        match n {
            NodeId::Step(k) => &self.steps[k].branches,
            NodeId::Source(_) => &[],
        }
    }

    /// `node` or `node.branch`.
    fn resolve(&self, text: &str) -> Result<Port, String> {
        if let Some(&node) = self.nodes.get(text) {
            let branches = self.branches(node);
            if !branches.is_empty() {
                return Err(format!(
                    "{text:?} branches; read one of its branches: {}",
                    branch_ports(text, branches)
                ));
            }
            return Ok(Port::of(node));
        }
        if let Some((name, branch)) = text.rsplit_once('.')
            && let Some(&node) = self.nodes.get(name)
        {
            let branches = self.branches(node);
            return match branches.iter().position(|b| b == branch) {
                Some(b) => Ok(Port {
                    node,
                    branch: Some(b),
                }),
                None if branches.is_empty() => Err(format!(
                    "{name:?} has no branches (a step declares them with `branches`)"
                )),
                None => Err(format!(
                    "{name:?} has no branch {branch:?}; its branches are {branches:?}"
                )),
            };
        }
        let mut known: Vec<&str> = self
            .sources
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.steps.iter().map(|s| s.name.as_str()))
            .collect();
        known.dedup();
        Err(format!(
            "no node named {text:?}; sources and steps are {}",
            known.join(", ")
        ))
    }

    /// A chain's default: the whole output of `node`.
    fn whole(&self, node: NodeId, name: &str) -> Result<Port, String> {
        let branches = self.branches(node);
        if branches.is_empty() {
            Ok(Port::of(node))
        } else {
            Err(format!(
                "{name:?} branches, so say which branch to read: from = one of {}",
                branch_ports(name, branches)
            ))
        }
    }
}

impl Validator<'_> {
    /// Sets what every step and sink reads.
    pub(super) fn wire(
        &mut self,
        spec: &SpecFile,
        sources: &[Source],
        steps: &mut [Step],
        sinks: &mut [Sink],
    ) {
        let names = Names::new(sources, steps);
        let mut step_inputs = Vec::with_capacity(steps.len());
        for (i, at) in spec.steps.iter().enumerate() {
            let key = format!("steps[{i}].from");
            let spec_step = at.get_ref();
            if let (Some(l), Some(r)) = (&spec_step.left, &spec_step.right) {
                let mut inputs = Vec::new();
                for (side, text) in [("left", l), ("right", r)] {
                    match names.resolve(text.get_ref()) {
                        Ok(p) => inputs.push(p),
                        Err(why) => self.err(text, format!("steps[{i}].{side}"), why),
                    }
                }
                step_inputs.push(inputs);
                continue;
            }
            let inputs = match &at.get_ref().from {
                Some(from) => self.ports(&names, from, &key, None),
                None if i == 0 => (0..sources.len())
                    .map(|s| Port::of(NodeId::Source(s)))
                    .collect(),
                None => {
                    let prev = &steps[i - 1].name;
                    match names.whole(NodeId::Step(i - 1), prev) {
                        Ok(p) => vec![p],
                        Err(why) => {
                            self.err(&at.get_ref().name, &key, format!("the step before, {why}"));
                            Vec::new()
                        }
                    }
                }
            };
            step_inputs.push(inputs);
        }
        let last = steps.len().checked_sub(1);
        for (i, at) in spec.sinks.iter().enumerate() {
            let key = format!("sinks[{i}].from");
            let inputs = match &at.get_ref().from {
                Some(from) => self.ports(&names, from, &key, last.map(|l| &steps[l])),
                None => match last {
                    None => (0..sources.len())
                        .map(|s| Port::of(NodeId::Source(s)))
                        .collect(),
                    Some(l) => match names.whole(NodeId::Step(l), &steps[l].name) {
                        Ok(p) => vec![p],
                        Err(_) => {
                            self.err(&at.get_ref().topic, format!("sinks[{i}]"), format!("the last step branches, so say which branch feeds this sink: from = one of {:?}", steps[l].branches));
                            Vec::new()
                        }
                    },
                },
            };
            sinks[i].inputs = inputs;
        }
        for (s, inputs) in steps.iter_mut().zip(step_inputs) {
            s.inputs = inputs;
        }
    }

    /// The ports `from` names; `last` allows a sink's older form, a bare
    /// branch name of the last step.
    fn ports(
        &mut self,
        names: &Names<'_>,
        from: &Spanned<FromSpec>,
        key: &str,
        last: Option<&Step>,
    ) -> Vec<Port> {
        let list = from.get_ref().names();
        if list.is_empty() {
            self.err(
                from,
                key,
                "names nothing: give a node (or `node.branch`) to read, or a list of them to merge",
            );
        }
        let mut ports: Vec<Port> = Vec::new();
        for text in list {
            let port = names.resolve(text).or_else(|why| {
                last.and_then(|l| l.branches.iter().position(|b| b == text))
                    .map(|b| Port {
                        node: NodeId::Step(names.steps.len() - 1),
                        branch: Some(b),
                    })
                    .ok_or(why)
            });
            match port {
                Ok(p) if ports.contains(&p) => {
                    self.err(from, key, format!("reads {text:?} twice"));
                }
                Ok(p) => ports.push(p),
                Err(why) => self.err(from, key, why),
            }
        }
        ports
    }

    /// The rules of a wired graph.
    pub(super) fn graph_rules(
        &mut self,
        spec: &SpecFile,
        sources: &[Source],
        steps: &[Step],
        sinks: &[Sink],
    ) {
        self.unique_names(spec, sources, steps);
        self.unique_stores(spec, steps);
        let order = match graph::step_order(steps) {
            Ok(order) => order,
            Err(cycle) => {
                let mut names: Vec<&str> = cycle.iter().map(|&k| steps[k].name.as_str()).collect();
                names.push(names[0]);
                let first = cycle[0];
                self.err(
                    &spec.steps[first].get_ref().name,
                    format!("steps[{first}].from"),
                    format!(
                        "the steps read each other in a cycle: {}",
                        names.join(" -> ")
                    ),
                );
                return;
            }
        };
        self.everything_read(spec, sources, steps, sinks);
        self.global_readers(spec, sources, steps, sinks);
        let flows = graph::flows(sources, steps, &order);
        let changed = graph::keys_changed(steps, &order);
        self.versioned_readers(spec, sources, steps, sinks, &flows);
        let flow = |p: &Port| graph::port_flow(sources, &flows, *p);
        for (i, st) in steps.iter().enumerate() {
            let at = &spec.steps[i];
            let key = format!("steps[{i}].op");
            let input = st.inputs.first().map_or(Flow::Stream, flow);
            if st.inputs.len() > 1
                && st.op.join().is_none()
                && let Some(p) = st.inputs.iter().find(|p| flow(p) != Flow::Stream)
            {
                self.err(at, format!("steps[{i}].from"), format!("merging needs streams, and {:?} is a table's changes or grouped records (put a step with op = \"process\" after a table to read its changes as a stream)", self.port_text(sources, steps, *p)));
            }
            if st.op.is_grouping() {
                let ok = readers(steps, sinks, NodeId::Step(i));
                if ok.is_empty()
                    || ok
                        .iter()
                        .any(|r| r.is_none_or(|s| s.op.aggregation().is_none()))
                {
                    self.err(at, &key, format!("`{}` must be followed by an aggregation step (op = \"count\", \"reduce\" or \"aggregate\") reading it, and only by those", st.op.name()));
                }
                if matches!(st.op, Op::GroupBy { field: None }) && input.is_table() {
                    self.err(at, format!("steps[{i}].component"), "on a table, `group_by` takes `key` (a JSON pointer): the old and new values of a row must both map to a group");
                }
                if input == Flow::WindowedTable {
                    self.err(
                        at,
                        &key,
                        "a windowed aggregation's results cannot be grouped again",
                    );
                }
            }
            if let Some(a) = st.op.aggregation() {
                let grouped = st.inputs.len() == 1
                    && matches!(st.inputs[0].node, NodeId::Step(g) if steps[g].op.is_grouping());
                if !grouped {
                    self.err(at, &key, format!("`{}` aggregates groups: put a step with op = \"group_by_key\" or \"group_by\" before it, and read only that step", st.op.name()));
                }
                if input.is_table() && a.window.is_some() {
                    self.err(at, format!("steps[{i}].window"), "a table's rows cannot be windowed (Kafka Streams has no windowed table aggregation); read the source as a stream");
                }
                if a.emit == Emit::Final && a.window.is_none() {
                    self.err(
                        at,
                        format!("steps[{i}].emit"),
                        "emit = \"final\" needs a window: a non-windowed aggregate never closes",
                    );
                }
            }
            if matches!(st.op, Op::ToTable { .. }) && input.is_table() {
                self.err(at, &key, "the input is a table already");
            }
            if let Op::Join(j) = &st.op {
                self.join_rules(at, i, j, sources, steps, (&flows, &changed));
            }
        }
    }

    pub(super) fn port_text(&self, sources: &[Source], steps: &[Step], p: Port) -> String {
        match (p.node, p.branch) {
            (NodeId::Source(i), _) => sources[i].name.clone(),
            (NodeId::Step(k), None) => steps[k].name.clone(),
            (NodeId::Step(k), Some(b)) => format!("{}.{}", steps[k].name, steps[k].branches[b]),
        }
    }

    /// Source and step names share one namespace.
    fn unique_names(&mut self, spec: &SpecFile, sources: &[Source], steps: &[Step]) {
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, s) in sources.iter().enumerate() {
            if !seen.insert(&s.name) {
                self.err(
                    &spec.sources[i],
                    format!("sources[{i}].name"),
                    format!(
                        "another source is named {:?}; give each a distinct `name`",
                        s.name
                    ),
                );
            }
        }
        for (k, s) in steps.iter().enumerate() {
            if sources.iter().any(|src| src.name == s.name) {
                self.err(&spec.steps[k].get_ref().name, format!("steps[{k}].name"), format!("{:?} names a source too; rename the step (or give the source another `name`)", s.name));
            }
        }
    }

    fn unique_stores(&mut self, spec: &SpecFile, steps: &[Step]) {
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
    }

    /// Every source, step and branch is read by a step or a sink.
    fn everything_read(
        &mut self,
        spec: &SpecFile,
        sources: &[Source],
        steps: &[Step],
        sinks: &[Sink],
    ) {
        let read: HashSet<Port> = steps
            .iter()
            .flat_map(|s| s.inputs.iter())
            .chain(sinks.iter().flat_map(|s| s.inputs.iter()))
            .copied()
            .collect();
        let any = |n: NodeId| read.iter().any(|p| p.node == n);
        for (i, s) in sources.iter().enumerate() {
            if !any(NodeId::Source(i)) && !spec.sinks.is_empty() {
                self.err(&spec.sources[i], format!("sources[{i}]"), format!("source {:?} is read by no step or sink; add from = {:?} to the step or sink that should read it, or remove the source", s.name, s.name));
            }
        }
        for (k, s) in steps.iter().enumerate() {
            let at = &spec.steps[k];
            if s.branches.is_empty() {
                if !any(NodeId::Step(k)) && !spec.sinks.is_empty() {
                    self.err(at, format!("steps[{k}]"), format!("the output of {:?} goes nowhere: add a [[sinks]] or a step with from = {:?}, or remove the step", s.name, s.name));
                }
                continue;
            }
            for (b, name) in s.branches.iter().enumerate() {
                let port = Port {
                    node: NodeId::Step(k),
                    branch: Some(b),
                };
                if !read.contains(&port) && !spec.sinks.is_empty() {
                    let at = at.get_ref().branches.as_ref().expect("branches exist");
                    self.err(
                        at,
                        format!("steps[{k}].branches"),
                        format!(
                            "branch {name:?} feeds no sink or step; add a [[sinks]] with from = \"{}.{name}\"",
                            s.name
                        ),
                    );
                }
            }
        }
    }
}
