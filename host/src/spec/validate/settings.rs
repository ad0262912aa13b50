//! `[runtime]`, `[state]` and `[admin]`.

use super::Validator;
use crate::spec::model::SpecFile;
use crate::topology::{AdminConfig, RuntimeConfig, StateConfig, StoreKind};
use crate::units::{parse_duration, parse_size};
use std::path::Path;

impl Validator<'_> {
    pub(super) fn state(&mut self, spec: &SpecFile, base: &Path) -> StateConfig {
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

    /// `[admin]`, when the spec has it.
    pub(super) fn admin(&mut self, spec: &SpecFile) -> Option<AdminConfig> {
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
        let mut max_component_bytes = crate::admin::DEFAULT_MAX_COMPONENT_BYTES;
        if let Some(m) = &a.max_component_size {
            match parse_size(m.get_ref()) {
                Ok(b) if b >= 1024 => max_component_bytes = b,
                Ok(_) => self.err(m, "admin.max_component_size", "use at least 1KiB"),
                Err(e) => self.err(m, "admin.max_component_size", e),
            }
        }
        Some(AdminConfig {
            listen,
            token,
            advertise,
            max_component_bytes,
        })
    }

    pub(super) fn runtime(&mut self, spec: &SpecFile) -> RuntimeConfig {
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
            (&r.stall_after, "runtime.stall_after", &mut cfg.stall_after),
        ] {
            if let Some(d) = field {
                match parse_duration(d.get_ref()) {
                    Ok(v) => *target = v,
                    Err(e) => self.errors.push(self.lines.error(Some(d.span()), key, e)),
                }
            }
        }
        if let Some(s) = &r.stall_after
            && cfg.stall_after < std::time::Duration::from_secs(1)
        {
            self.err(s, "runtime.stall_after", "use at least \"1s\"");
        }
        cfg
    }
}
