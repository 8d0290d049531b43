//! Resolving the top-level sections: `[app]`, `[ssh]`, `[health]`, `[logs]`,
//! `[metrics]` and `[hooks]`.

use super::*;

/// The most of each count the config takes: far above any real use, and far
/// from anything that overflows or fills memory.
const MAX_KEEP_RELEASES: i64 = 1_000;
const MAX_PARALLEL: i64 = 1_024;
const MAX_HEALTHY_AFTER: i64 = 10_000;
const MAX_BUFFER_LINES: i64 = 1_000_000;
pub(super) const MAX_FAILURES: i64 = 100_000;
pub(super) const MAX_LATENCY_MS: i64 = 600_000;
pub(super) const MAX_MIN_REQUESTS: i64 = 1_000_000_000;

impl Resolver<'_> {
    pub(super) fn app(&self, app: raw::RawApp) -> Result<App, ConfigError> {
        if app.name.get_ref().trim().is_empty() {
            return Err(self.err(&app.name, "app.name must not be empty"));
        }
        let deploy_to = self.absolute_remote(&app.deploy_to)?;
        let keep_releases = match &app.keep_releases {
            None => DEFAULT_KEEP_RELEASES,
            Some(k) => match usize::try_from(*k.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => return Err(self.err(k, "keep_releases must be at least 1")),
            },
        };
        if let Some(k) = &app.keep_releases {
            self.at_most(k, "keep_releases", MAX_KEEP_RELEASES)?;
        }
        let mut shared = Vec::new();
        for s in &app.shared {
            let p = s.get_ref().trim_end_matches('/');
            if p.is_empty()
                || p.starts_with('/')
                || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(self.err(
                    s,
                    format!("shared path {p:?} must be relative to shared/, without . or .. parts"),
                ));
            }
            shared.push(p.to_owned());
        }
        Ok(App {
            name: app.name.into_inner(),
            build: app.build,
            artifact: self.local_path(app.artifact.get_ref()),
            deploy_to,
            keep_releases,
            shared,
        })
    }

    /// Refuse a count above what shipdeck takes, naming the key and the most.
    pub(super) fn at_most(
        &self,
        at: &Spanned<i64>,
        key: &str,
        max: i64,
    ) -> Result<(), ConfigError> {
        let n = *at.get_ref();
        if n > max {
            return Err(self.err(
                at,
                format!("{key} = {n} is too large: shipdeck takes at most {max}"),
            ));
        }
        Ok(())
    }

    pub(super) fn absolute_remote(&self, p: &Spanned<String>) -> Result<String, ConfigError> {
        let s = p.get_ref();
        if !s.starts_with('/') || s.contains('\n') || s.contains('\0') {
            return Err(self.err(p, format!("deploy_to {s:?} must be an absolute path")));
        }
        if s.split('/').any(|c| c == "..") {
            return Err(self.err(
                p,
                format!("deploy_to {s:?} must not have `..` parts: name the folder itself"),
            ));
        }
        if s.split('/').all(|c| c.is_empty() || c == ".") {
            return Err(self.err(
                p,
                format!("deploy_to {s:?} is the root folder: give the app a folder of its own, as in \"/srv/app\""),
            ));
        }
        Ok(if s.len() > 1 {
            s.trim_end_matches('/')
        } else {
            s
        }
        .to_owned())
    }

    pub(super) fn ssh(&self, ssh: raw::RawSsh) -> Result<Ssh, ConfigError> {
        let port = ssh
            .port
            .as_ref()
            .map(|p| self.port(p, *p.get_ref()))
            .transpose()?;
        let parallel = match &ssh.parallel {
            None => DEFAULT_PARALLEL,
            Some(p) => match usize::try_from(*p.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => return Err(self.err(p, "ssh.parallel must be at least 1")),
            },
        };
        if let Some(p) = &ssh.parallel {
            self.at_most(p, "ssh.parallel", MAX_PARALLEL)?;
        }
        if let Some(j) = &ssh.jump {
            self.check_jump(j)?;
        }
        let config_file = match &ssh.config {
            Some(c) if c.get_ref() == "none" => None,
            Some(c) => {
                let path = self.local_path(c.get_ref());
                if !path.is_file() {
                    return Err(self.err(
                        c,
                        format!(
                            "ssh.config: {} is not a file (\"none\" reads no ssh_config)",
                            path.display()
                        ),
                    ));
                }
                Some(path)
            }
            None => dirs::home_dir().map(|h| h.join(".ssh/config")),
        };
        Ok(Ssh {
            user: ssh.user,
            port,
            identity: ssh.identity.map(|i| self.local_path(&i)),
            identities_only: ssh.identities_only,
            jump: ssh.jump.map(Spanned::into_inner),
            config_file,
            known_hosts: ssh.known_hosts.map(|k| self.local_path(&k)),
            connect_timeout: ssh.connect_timeout.map(|d| d.0),
            command_timeout: ssh.command_timeout.map_or(DEFAULT_COMMAND_TIMEOUT, |d| d.0),
            parallel,
        })
    }

    /// A `jump` value: `none`, or bastions as `[user@]host[:port]`, comma separated.
    pub(super) fn check_jump(&self, jump: &Spanned<String>) -> Result<(), ConfigError> {
        let spec = jump.get_ref();
        if spec == "none" {
            return Ok(());
        }
        for hop in spec.split(',') {
            parse_address(hop.trim())
                .map_err(|m| self.err(jump, format!("jump: {m}, bastions separated by commas")))?;
        }
        Ok(())
    }

    pub(super) fn port<T>(&self, at: &Spanned<T>, p: i64) -> Result<u16, ConfigError> {
        match u16::try_from(p) {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(self.err(at, format!("{p} is not a TCP port (1 to 65535)"))),
        }
    }

    pub(super) fn health(&self, h: raw::RawHealth) -> Result<Health, ConfigError> {
        let probe = match (h.http, h.command) {
            (Some(url), None) => {
                // Checked per host, once its vars are known.
                if !url.get_ref().starts_with("http://") {
                    return Err(self.err(&url, format!("{:?}: health.http must be a plain http:// URL on the host (it is fetched through the SSH connection)", url.get_ref())));
                }
                Probe::Http(url.into_inner())
            }
            (None, Some(cmd)) => Probe::Command(cmd.into_inner()),
            (Some(_), Some(cmd)) => {
                return Err(self.err(&cmd, "[health] takes `http` or `command`, not both"));
            }
            (None, None) => {
                return Err(ConfigError::whole_file(
                    self.path,
                    "[health] needs `http = \"http://127.0.0.1:PORT/path\"` or `command = \"...\"`"
                        .into(),
                ));
            }
        };
        let healthy_after = match &h.healthy_after {
            None => DEFAULT_HEALTHY_AFTER,
            Some(n) => match u32::try_from(*n.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => return Err(self.err(n, "healthy_after must be at least 1")),
            },
        };
        if let Some(n) = &h.healthy_after {
            self.at_most(n, "healthy_after", MAX_HEALTHY_AFTER)?;
        }
        Ok(Health {
            probe,
            interval: h.interval.map_or(DEFAULT_HEALTH_INTERVAL, |d| d.0),
            timeout: h.timeout.map_or(DEFAULT_HEALTH_TIMEOUT, |d| d.0),
            healthy_after,
            gate: h.gate.map_or(DEFAULT_HEALTH_GATE, |d| d.0),
        })
    }

    pub(super) fn logs(&self, l: raw::RawLogs) -> Result<Logs, ConfigError> {
        let error_pattern = match &l.error_pattern {
            None => None,
            Some(p) => Some(Regex::new(p.get_ref()).map_err(|e| {
                self.err(
                    p,
                    format!("error_pattern is not a valid regular expression: {e}"),
                )
            })?),
        };
        let buffer_lines = match &l.buffer_lines {
            None => DEFAULT_LOG_BUFFER_LINES,
            Some(n) => match usize::try_from(*n.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => return Err(self.err(n, "buffer_lines must be at least 1")),
            },
        };
        if let Some(n) = &l.buffer_lines {
            self.at_most(n, "buffer_lines", MAX_BUFFER_LINES)?;
        }
        Ok(Logs {
            files: l.files,
            command: l.command,
            error_pattern,
            buffer_lines,
        })
    }

    pub(super) fn metrics(&self, m: &raw::RawMetrics) -> Result<Metrics, ConfigError> {
        let latency = match &m.latency {
            None => None,
            Some(l) => Some(self.latency_selector(l, m.prometheus.is_some())?),
        };
        let selector = |key: &str, written: &Option<Spanned<String>>, default: &str| {
            let text = written.as_ref().map_or(default, |w| w.get_ref().as_str());
            Selector::parse(text).map_err(|e| match written {
                Some(w) => self.err(w, format!("metrics.{key}: {e}")),
                None => ConfigError::whole_file(self.path, format!("metrics.{key}: {e}")),
            })
        };
        // Checked at load, or a typo would leave a canary without its error
        // rate.
        let requests = selector("requests", &m.requests, "http_requests_total")?;
        let errors = selector("errors", &m.errors, "http_requests_total{code=~\"5..\"}")?;
        Ok(Metrics {
            prometheus: m.prometheus.as_ref().map(|p| p.get_ref().clone()),
            requests,
            errors,
            latency,
            interval: m.interval.map_or(DEFAULT_METRICS_INTERVAL, |d| d.0),
        })
    }

    /// Checked here rather than when the monitor first reads it, so that a
    /// typo stops the load instead of leaving a canary without its latency.
    pub(super) fn latency_selector(
        &self,
        l: &Spanned<String>,
        has_prometheus: bool,
    ) -> Result<LatencyQuery, ConfigError> {
        if !has_prometheus {
            return Err(self.err(
                l,
                "metrics.latency needs metrics.prometheus (the page on each host it is read from)",
            ));
        }
        LatencyQuery::parse(l.get_ref()).map_err(|e| self.err(l, format!("metrics.latency: {e}")))
    }

    pub(super) fn hooks(&self, h: raw::RawHooks) -> Result<Hooks, ConfigError> {
        let run_once_migrates = match &h.run_once_migrates {
            None => false,
            Some(m) if *m.get_ref() && h.run_once.is_empty() => {
                return Err(self.err(
                    m,
                    "run_once_migrates = true, but there are no run_once hooks, so no release would ever be marked (add run_once = [\"./bin/migrate\"], or remove run_once_migrates)",
                ));
            }
            Some(m) => *m.get_ref(),
        };
        Ok(Hooks {
            before_switch: h.before_switch,
            run_once: h.run_once,
            restart: h.restart,
            after_switch: h.after_switch,
            on_rollback: h.on_rollback,
            notify: h.notify,
            run_once_migrates,
        })
    }
}
