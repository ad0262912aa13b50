//! What each `eddy` command does, with the context its errors need.

use crate::Command;
use anyhow::{Context, Result, bail};
use eddy::{records, runtime, spec, topology, wasm};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn load(spec: &std::path::Path) -> Result<topology::Topology> {
    spec::load(spec).map_err(|e| anyhow::anyhow!("{e}\n{} problem(s) in the spec", e.0.len()))
}

/// Carries out `command`.
pub fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Run { spec, admin } => {
            let mut t = load(&spec)?;
            if let Some(listen) = admin {
                let token = t.admin.as_ref().and_then(|a| a.token.clone());
                let advertise = t.admin.as_ref().and_then(|a| a.advertise.clone());
                let max_component_bytes = t
                    .admin
                    .as_ref()
                    .map_or(eddy::admin::DEFAULT_MAX_COMPONENT_BYTES, |a| {
                        a.max_component_bytes
                    });
                if !listen.ip().is_loopback() && token.is_none() {
                    bail!(
                        "--admin {listen}: listening beyond loopback needs `admin.token` in the spec"
                    );
                }
                t.admin = Some(topology::AdminConfig {
                    listen,
                    token,
                    advertise,
                    max_component_bytes,
                });
            }
            let engine =
                wasm::OperatorEngine::for_topology(&t).context("starting the Wasm engine")?;
            let shutdown = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                signal_hook::flag::register(sig, shutdown.clone())
                    .context("installing signal handlers")?;
            }
            eddy::app::run(&t, &engine, &shutdown)
                .with_context(|| format!("running {}", spec.display()))?;
        }
        Command::Reload {
            name,
            file,
            admin,
            token,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let url = format!("http://{admin}/operators/{name}");
            let mut req = ureq::post(&url)
                .config()
                .http_status_as_error(false)
                .build()
                .header("Content-Type", "application/wasm");
            // Without a token given, the one eddy run generated for that port.
            let token = token.or_else(|| {
                let port = admin.rsplit_once(':')?.1.parse().ok()?;
                eddy::admin::token::read_token(port)
            });
            if let Some(t) = &token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            let mut res = req.send(&bytes[..]).with_context(|| {
                format!(
                    "reaching the admin API at {admin} (is eddy running with the admin API on?)"
                )
            })?;
            let status = res.status();
            let body = res.body_mut().read_to_string().unwrap_or_default();
            if !status.is_success() {
                let msg = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or(body);
                bail!("reload of `{name}` refused ({status}): {msg}");
            }
            println!("{body}");
        }
        Command::Test {
            spec,
            input,
            expect,
        } => {
            let t = load(&spec)?;
            let records = records::read_input(&input)?;
            let expected = expect
                .as_ref()
                .map(|e| records::read_records_numbered(e))
                .transpose()?;
            let engine =
                wasm::OperatorEngine::for_topology(&t).context("starting the Wasm engine")?;
            match (expected, &expect) {
                (Some(expected), Some(file)) => {
                    let mut out = Vec::new();
                    runtime::test_driver::run(&t, &engine, &records, &mut out)?;
                    let got = records::expect::parse_output(&String::from_utf8_lossy(&out))
                        .map_err(anyhow::Error::msg)?;
                    if let Some(diff) = records::expect::diff(&got, &expected) {
                        bail!("{}: {diff}", file.display());
                    }
                    println!(
                        "{}: ok, {} record(s) as expected in {}",
                        spec.display(),
                        got.len(),
                        file.display()
                    );
                }
                _ => {
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    runtime::test_driver::run(&t, &engine, &records, &mut out)?;
                    std::io::Write::flush(&mut out)?;
                }
            }
        }
        Command::Check { spec } => {
            let t = load(&spec)?;
            let engine =
                wasm::OperatorEngine::for_topology(&t).context("starting the Wasm engine")?;
            let mut problems = eddy::kafka::check(&t);
            for step in t.steps.iter().filter(|s| s.component.is_some()) {
                match wasm::LoadedOperator::load(&engine, step) {
                    Ok(op) => {
                        if let Err(e) = wasm::OperatorInstance::new(&op) {
                            problems.push(e.to_string());
                        }
                    }
                    Err(e) => problems.push(e.to_string()),
                }
            }
            if !problems.is_empty() {
                bail!("{}\n{} problem(s)", problems.join("\n"), problems.len());
            }
            if let Some(warning) =
                wasm::machine::machine_memory().and_then(|m| wasm::machine::overcommitted(&t, m))
            {
                eprintln!("warning: {warning}");
            }
            println!(
                "{}: ok ({} step(s), {} source(s), {} sink(s))",
                spec.display(),
                t.steps.len(),
                t.sources.len(),
                t.sinks.len()
            );
        }
        Command::Reset {
            spec,
            dry_run,
            to_time,
        } => {
            let t = spec::load_shape(&spec)
                .map_err(|e| anyhow::anyhow!("{e}\n{} problem(s) in the spec", e.0.len()))?;
            let to = match to_time {
                None => eddy::kafka::reset::ResetTo::Earliest,
                Some(text) => eddy::kafka::reset::ResetTo::Time(parse_time(&text)?),
            };
            let done = eddy::kafka::reset::reset(&t, to, dry_run)
                .with_context(|| format!("resetting {}", spec.display()))?;
            let verb = if dry_run { "would" } else { "did" };
            for line in &done {
                println!("{verb}: {line}");
            }
            if done.is_empty() {
                println!("nothing to reset");
            }
        }
        Command::Describe { spec } => {
            let t = spec::load_shape(&spec)
                .map_err(|e| anyhow::anyhow!("{e}\n{} problem(s) in the spec", e.0.len()))?;
            print!("{}", topology::describe(&t));
        }
        Command::Produce { input, bootstrap } => {
            let records = records::read_records(&input)?;
            let produced = eddy::kafka::tools::produce(&bootstrap, &records)
                .with_context(|| format!("producing {} to {bootstrap}", input.display()))?;
            eprintln!("produced {produced} record(s), each acknowledged");
        }
        Command::Consume {
            topic,
            count,
            idle,
            bootstrap,
        } => {
            let idle = eddy::units::parse_duration(&idle).map_err(anyhow::Error::msg)?;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            eddy::kafka::tools::consume(&bootstrap, &topic, count, idle, &mut out)
                .with_context(|| format!("reading {topic} from {bootstrap}"))?;
        }
        Command::Build { dir } => {
            let path = eddy::build::build_operator(&dir)?;
            println!("{}", path.display());
            eprintln!("built {}", path.display());
        }
    }
    Ok(())
}

/// Milliseconds since the epoch, from digits or RFC 3339.
fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(text).map_err(|e| {
        anyhow::anyhow!(
            "--to-time {text:?}: {e}; write e.g. 2026-11-26T08:00:00Z or milliseconds since the epoch"
        )
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64))
}
