//! Operator memory limits against the machine: every worker runs an
//! instance of every operator, each of which may grow to its step's
//! `limits.memory`.

use crate::topology::Topology;

/// The most memory the operators of `t` may take together, bytes.
pub fn worst_case(t: &Topology) -> usize {
    let per_worker: usize = t
        .steps
        .iter()
        .filter(|s| s.component.is_some())
        .map(|s| s.limits.memory_bytes)
        .sum();
    per_worker.saturating_mul(t.runtime.workers)
}

/// The machine's memory (`MemTotal`), bytes, when it can be read.
pub fn machine_memory() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// A warning when the operators' limits together exceed `machine` bytes.
pub fn overcommitted(t: &Topology, machine: usize) -> Option<String> {
    let worst = worst_case(t);
    let gib = |b: usize| b as f64 / f64::from(1u32 << 30);
    (worst > machine).then(|| {
        format!(
            "the operators may take up to {:.1} GiB together (each step's limits.memory × runtime.workers = {}), more than this machine's {:.1} GiB; lower limits.memory or runtime.workers",
            gib(worst),
            t.runtime.workers,
            gib(machine)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_counts_every_operator_at_its_limit() {
        let dir = std::env::temp_dir();
        let text = "application_id = \"a\"\n[runtime]\nworkers = 4\n[[sources]]\ntopic = \"in\"\n\
                    [[steps]]\nname = \"p\"\ncomponent = \"p.wasm\"\nlimits = { memory = \"1GiB\" }\n\
                    [[steps]]\nname = \"q\"\ncomponent = \"q.wasm\"\n\
                    [[steps]]\nname = \"g\"\nop = \"group_by_key\"\n[[steps]]\nname = \"c\"\nop = \"count\"\n[[sinks]]\ntopic = \"out\"\n";
        let t = crate::spec::parse_with(&dir.join("p.toml"), text, false).unwrap();
        assert_eq!(worst_case(&t), 4 * ((1 << 30) + (64 << 20)));
        let warning = overcommitted(&t, 2 << 30).unwrap();
        assert!(
            warning.contains("4.2 GiB") && warning.contains("2.0 GiB"),
            "{warning}"
        );
        assert_eq!(overcommitted(&t, 8 << 30), None);
        assert!(machine_memory().is_some_and(|m| m > 0));
    }
}
