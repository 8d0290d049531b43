//! `shipdeck.toml`: read, checked and resolved into plain values the rest of
//! the program can trust. Every error names the file, line and column.

mod duration;
mod error;
mod raw;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::parse as parse_duration;
pub use error::{ConfigError, line_col};
use raw::{RawConfig, RawCount, RawHost, RawNumber, RawStrategy};
use regex::Regex;
use toml::Spanned;

use crate::model::canary::{self, Expects, Thresholds};
use crate::model::prometheus::{LatencyQuery, Selector};
use crate::model::window::WindowRules;
use crate::model::{BlueGreen, Host, HostCount, HttpTarget, Slot, SshTarget, Strategy, Target};

pub const DEFAULT_KEEP_RELEASES: usize = 5;
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_HEALTHY_AFTER: u32 = 3;
pub const DEFAULT_HEALTH_GATE: Duration = Duration::from_secs(60);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Hooks may run migrations; long, but not forever.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_PARALLEL: usize = 64;
pub const DEFAULT_LOG_BUFFER_LINES: usize = 5_000;
pub const DEFAULT_SSH_PORT: u16 = 22;
/// Windows and freezes are read in this zone unless `timezone` says otherwise.
pub const DEFAULT_TIMEZONE: &str = "UTC";

/// The strategy kinds, each with the keys it takes besides `kind`.
const STRATEGY_KEYS: [(&str, &[&str]); 4] = [
    ("all-at-once", &[]),
    ("rolling", &["batch", "max_failures"]),
    (
        "canary",
        &[
            "steps",
            "max_error_rate",
            "max_latency_ms",
            "max_relative",
            "min_health_pass_rate",
            "max_error_lines_per_min",
            "min_requests",
        ],
    ),
    ("blue-green", &["switch", "stop", "finish_after", "ports"]),
];

#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, and the folder relative paths resolve against.
    pub path: PathBuf,
    pub dir: PathBuf,
    pub app: App,
    pub hooks: Hooks,
    pub health: Option<Health>,
    pub logs: Logs,
    pub metrics: Metrics,
    pub ssh: Ssh,
    /// In the order of the file.
    pub environments: Vec<Environment>,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: String,
    pub build: Option<String>,
    pub artifact: PathBuf,
    pub deploy_to: String,
    pub keep_releases: usize,
    pub shared: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub before_switch: Vec<String>,
    pub run_once: Vec<String>,
    pub restart: Option<String>,
    pub after_switch: Vec<String>,
    /// On each host after it was rolled back (or switched back), in the
    /// release it now runs.
    pub on_rollback: Vec<String>,
    /// Local commands run on the operator's machine when a change starts,
    /// pauses, finishes or is rolled back, with `SHIPDECK_*` variables.
    pub notify: Vec<String>,
    /// Every release whose `run_once` hooks ran carries a schema migration.
    pub run_once_migrates: bool,
}

#[derive(Debug, Clone)]
pub struct Health {
    pub probe: Probe,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_after: u32,
    pub gate: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Fetched from the host itself: `GET` must answer 2xx. The URL may name
    /// per-host vars (`{port}`); each host's own is `Host::health_http`.
    Http(String),
    /// Run in the release directory on the host; exit 0 passes.
    Command(String),
}

/// App metrics read from a Prometheus text page on each host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// The page's URL as written (each host's own is `Host::metrics`).
    pub prometheus: Option<String>,
    /// Counter of all requests (summed over the series it selects); when it
    /// selects nothing there is no data, never zero traffic.
    pub requests: Selector,
    /// Counter of failed requests, as in `http_requests_total{code=~"5.."}`;
    /// no series yet is no error yet, while the metric is on the page.
    pub errors: Selector,
    /// The app's request latency in seconds: a gauge, a summary's quantile
    /// (`x{quantile="0.99"}`) or `histogram_quantile(0.99, x{…})`, judged
    /// against a canary's `max_latency_ms` instead of the probes' latency.
    pub latency: Option<LatencyQuery>,
    pub interval: Duration,
}

pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Logs {
    pub files: Vec<String>,
    pub command: Option<String>,
    pub error_pattern: Option<Regex>,
    pub buffer_lines: usize,
}

#[derive(Debug, Clone)]
pub struct Ssh {
    pub user: String,
    pub port: u16,
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub parallel: usize,
}

/// What a connection needs of `[ssh]`, resolved: the one settings type the
/// transport takes.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// Private key to authenticate with; `None` means the SSH agent, then the default keys.
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
    /// Add keys of hosts not yet in `known_hosts` (never replaces a changed key).
    pub accept_new_host_keys: bool,
    pub connect_timeout: Duration,
    /// Most hosts worked at once.
    pub parallel: usize,
}

impl Ssh {
    pub fn settings(&self, accept_new_host_keys: bool) -> SshSettings {
        SshSettings {
            identity: self.identity.clone(),
            known_hosts: self.known_hosts.clone(),
            accept_new_host_keys,
            connect_timeout: self.connect_timeout,
            parallel: self.parallel,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub hosts: Vec<Host>,
    pub requires: Option<String>,
    pub strategy: Strategy,
    /// When a change may start (`window`, `timezone`, `freezes`).
    pub rules: WindowRules,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let source = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::whole_file(path, format!("cannot read the config file: {e}"))
        })?;
        Config::parse(path, &source)
    }

    pub fn parse(path: &Path, source: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(source)
            .map_err(|e| ConfigError::at(path, source, e.span(), e.message().to_owned()))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        Resolver {
            path,
            source,
            dir: &dir,
        }
        .resolve(raw)
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    pub fn environment_names(&self) -> Vec<&str> {
        self.environments.iter().map(|e| e.name.as_str()).collect()
    }
}

/// The URL templates each host fills in with its vars.
struct Urls<'a> {
    health: Option<&'a Spanned<String>>,
    metrics: Option<&'a Spanned<String>>,
}

/// What every environment is resolved against.
struct Common<'a> {
    /// Every environment's name, for `requires`.
    names: Vec<String>,
    app: &'a App,
    ssh: &'a Ssh,
    urls: Urls<'a>,
    /// What a canary's analysis can read, from the sections that are set.
    sources: Sources,
}

/// The data sources the config sets up for a canary's analysis: a threshold
/// needs its source, and a source that is set must deliver (see
/// [`canary::Expects`]).
#[derive(Debug, Clone, Copy)]
struct Sources {
    /// `[health]`: probes, their pass rate and latency.
    health: bool,
    /// `[metrics] prometheus`: request and error counters.
    metrics: bool,
    /// `metrics.latency`: the app's own latency.
    app_latency: bool,
    /// `[logs]` names files or a command.
    logs: bool,
    /// `logs.error_pattern`: which log lines are errors.
    error_pattern: bool,
}

struct Resolver<'a> {
    path: &'a Path,
    source: &'a str,
    dir: &'a Path,
}

impl Resolver<'_> {
    fn err<T>(&self, spanned: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        ConfigError::at(self.path, self.source, Some(spanned.span()), message.into())
    }

    fn resolve(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let app = self.app(raw.app)?;
        let ssh = self.ssh(raw.ssh)?;
        let health_url = raw.health.as_ref().and_then(|h| h.http.clone());
        let health = raw.health.map(|h| self.health(h)).transpose()?;
        let logs = self.logs(raw.logs)?;
        let metrics = self.metrics(&raw.metrics)?;
        let hooks = self.hooks(raw.hooks)?;
        if raw.environments.get_ref().is_empty() {
            return Err(self.err(&raw.environments, "at least one environment is needed"));
        }
        let common = Common {
            names: raw.environments.get_ref().keys().cloned().collect(),
            app: &app,
            ssh: &ssh,
            urls: Urls {
                health: health_url.as_ref(),
                metrics: raw.metrics.prometheus.as_ref(),
            },
            sources: Sources {
                health: health.is_some(),
                metrics: metrics.prometheus.is_some(),
                app_latency: metrics.latency.is_some(),
                logs: !logs.files.is_empty() || logs.command.is_some(),
                error_pattern: logs.error_pattern.is_some(),
            },
        };
        let mut environments = Vec::new();
        for (name, env) in raw.environments.into_inner() {
            environments.push(self.environment(&name, env, &common)?);
        }
        self.check_requires_cycles(&environments)?;
        Ok(Config {
            path: self.path.to_owned(),
            dir: self.dir.to_owned(),
            app,
            hooks,
            health,
            logs,
            metrics,
            ssh,
            environments,
        })
    }

    /// `~/x` is in the home folder; a relative path is beside the config file.
    fn local_path(&self, p: &str) -> PathBuf {
        if let Some(rest) = p.strip_prefix("~/")
            && let Some(home) = dirs::home_dir()
        {
            return home.join(rest);
        }
        self.dir.join(p)
    }

    fn app(&self, app: raw::RawApp) -> Result<App, ConfigError> {
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

    fn absolute_remote(&self, p: &Spanned<String>) -> Result<String, ConfigError> {
        let s = p.get_ref();
        if !s.starts_with('/') || s.contains('\n') || s.contains('\0') {
            return Err(self.err(p, format!("deploy_to {s:?} must be an absolute path")));
        }
        Ok(if s.len() > 1 {
            s.trim_end_matches('/')
        } else {
            s
        }
        .to_owned())
    }

    fn ssh(&self, ssh: raw::RawSsh) -> Result<Ssh, ConfigError> {
        let user = ssh
            .user
            .unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".to_owned()));
        let port = match &ssh.port {
            None => DEFAULT_SSH_PORT,
            Some(p) => self.port(p, *p.get_ref())?,
        };
        let parallel = match &ssh.parallel {
            None => DEFAULT_PARALLEL,
            Some(p) => match usize::try_from(*p.get_ref()) {
                Ok(n) if n >= 1 => n,
                _ => return Err(self.err(p, "ssh.parallel must be at least 1")),
            },
        };
        let known_hosts = match ssh.known_hosts {
            Some(k) => self.local_path(&k),
            None => dirs::home_dir()
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".ssh/known_hosts"),
        };
        Ok(Ssh {
            user,
            port,
            identity: ssh.identity.map(|i| self.local_path(&i)),
            known_hosts,
            connect_timeout: ssh.connect_timeout.map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.0),
            command_timeout: ssh.command_timeout.map_or(DEFAULT_COMMAND_TIMEOUT, |d| d.0),
            parallel,
        })
    }

    fn port<T>(&self, at: &Spanned<T>, p: i64) -> Result<u16, ConfigError> {
        match u16::try_from(p) {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(self.err(at, format!("{p} is not a TCP port (1 to 65535)"))),
        }
    }

    fn health(&self, h: raw::RawHealth) -> Result<Health, ConfigError> {
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
        Ok(Health {
            probe,
            interval: h.interval.map_or(DEFAULT_HEALTH_INTERVAL, |d| d.0),
            timeout: h.timeout.map_or(DEFAULT_HEALTH_TIMEOUT, |d| d.0),
            healthy_after,
            gate: h.gate.map_or(DEFAULT_HEALTH_GATE, |d| d.0),
        })
    }

    fn logs(&self, l: raw::RawLogs) -> Result<Logs, ConfigError> {
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
        Ok(Logs {
            files: l.files,
            command: l.command,
            error_pattern,
            buffer_lines,
        })
    }

    fn metrics(&self, m: &raw::RawMetrics) -> Result<Metrics, ConfigError> {
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
    fn latency_selector(
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

    fn hooks(&self, h: raw::RawHooks) -> Result<Hooks, ConfigError> {
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

    fn environment(
        &self,
        name: &str,
        env: Spanned<raw::RawEnvironment>,
        common: &Common<'_>,
    ) -> Result<Environment, ConfigError> {
        let Common {
            names,
            app,
            ssh,
            urls,
            sources,
        } = common;
        if !valid_env_name(name) {
            return Err(self.err(
                &env,
                format!("environment name {name:?} may only use A-Z a-z 0-9 . _ -"),
            ));
        }
        let rules = self.rules(&env)?;
        let env = env.into_inner();
        if env.hosts.get_ref().is_empty() {
            return Err(self.err(&env.hosts, format!("environment {name:?} has no hosts")));
        }
        let mut hosts = Vec::new();
        let mut seen = HashSet::new();
        for h in env.hosts.get_ref() {
            let host = self.host(h, app, ssh, urls)?;
            if !seen.insert((host.target.clone(), host.deploy_to.clone())) {
                return Err(self.err(h, format!("host {:?} is listed twice", host.name)));
            }
            hosts.push(host);
        }
        if let Some(req) = &env.requires {
            if req.get_ref() == name {
                return Err(self.err(req, format!("environment {name:?} cannot require itself")));
            }
            if !names.iter().any(|n| n == req.get_ref()) {
                return Err(self.err(
                    req,
                    format!(
                        "requires = {:?}, but there is no such environment (have: {})",
                        req.get_ref(),
                        names.join(", ")
                    ),
                ));
            }
        }
        let strategy = match &env.strategy {
            None => Strategy::AllAtOnce,
            Some(s) => self.strategy(s, *sources)?,
        };
        if let Strategy::BlueGreen(bg) = &strategy {
            for (raw, host) in env.hosts.get_ref().iter().zip(&hosts) {
                self.check_slot_ports(bg, raw, host)?;
            }
        }
        Ok(Environment {
            name: name.to_owned(),
            hosts,
            requires: env.requires.map(Spanned::into_inner),
            strategy,
            rules,
        })
    }

    /// `window`, `timezone` and `freezes`. Each is first read on its own (with
    /// the zone), so that an error points at the key, or the freeze, at fault.
    fn rules(&self, env: &Spanned<raw::RawEnvironment>) -> Result<WindowRules, ConfigError> {
        const NO_FREEZES: &[&str] = &[];
        let raw = env.get_ref();
        let zone = raw
            .timezone
            .as_ref()
            .map_or(DEFAULT_TIMEZONE, |z| z.get_ref().as_str());
        if let Some(z) = &raw.timezone {
            WindowRules::parse(None, zone, NO_FREEZES).map_err(|m| self.err(z, m))?;
        }
        let window = raw.window.as_ref().map(|w| w.get_ref().as_str());
        if let Some(w) = &raw.window {
            WindowRules::parse(window, zone, NO_FREEZES).map_err(|m| self.err(w, m))?;
        }
        let freezes = raw.freezes.as_ref().map_or(&[][..], |f| f.get_ref());
        for f in freezes {
            WindowRules::parse(None, zone, std::slice::from_ref(f.get_ref()))
                .map_err(|m| self.err(f, m))?;
        }
        let freezes: Vec<&str> = freezes.iter().map(|f| f.get_ref().as_str()).collect();
        WindowRules::parse(window, zone, &freezes).map_err(|m| self.err(env, m))
    }

    fn host(
        &self,
        h: &Spanned<RawHost>,
        app: &App,
        ssh: &Ssh,
        urls: &Urls<'_>,
    ) -> Result<Host, ConfigError> {
        let mut host = self.host_address(h, app, ssh)?;
        if let RawHost::Table(t) = h.get_ref() {
            for (k, v) in &t.vars {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(self.err(h, format!("var name {k:?} may only use A-Z a-z 0-9 _")));
                }
                host.vars.insert(k.clone(), v.clone());
            }
        }
        host.health_http = urls
            .health
            .map(|u| self.http_target(u, &host))
            .transpose()?;
        host.metrics = urls
            .metrics
            .map(|u| self.http_target(u, &host))
            .transpose()?;
        Ok(host)
    }

    /// A URL with this host's `{var}`s filled in.
    fn http_target(&self, url: &Spanned<String>, host: &Host) -> Result<HttpTarget, ConfigError> {
        let mut filled = String::new();
        let mut rest = url.get_ref().as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| self.err(url, "unclosed { in URL"))?
                + open;
            let name = &rest[open + 1..close];
            let value = host.vars.get(name).ok_or_else(|| {
                self.err(url, format!("host {:?} has no var {name:?} for this URL (add vars = {{ {name} = \"...\" }} to the host)", host.name))
            })?;
            filled.push_str(&rest[..open]);
            filled.push_str(value);
            rest = &rest[close + 1..];
        }
        filled.push_str(rest);
        parse_http_url(&filled).map_err(|m| self.err(url, m))
    }

    fn host_address(
        &self,
        h: &Spanned<RawHost>,
        app: &App,
        ssh: &Ssh,
    ) -> Result<Host, ConfigError> {
        let (address, deploy_to, user, port) = match h.get_ref() {
            RawHost::Short(s) => (s.as_str(), None, None, None),
            RawHost::Table(t) => (
                t.address.as_str(),
                t.deploy_to.as_deref(),
                t.user.as_deref(),
                t.port,
            ),
        };
        if let Some(dir) = address.strip_prefix("local:") {
            if deploy_to.is_some() || user.is_some() || port.is_some() {
                return Err(self.err(
                    h,
                    "a local: host takes no deploy_to, user or port: its directory is its deploy_to",
                ));
            }
            if dir.is_empty() {
                return Err(self.err(h, "local: needs a directory, as in \"local:/srv/stage-1\""));
            }
            let dir = self.local_path(dir);
            return Ok(Host {
                name: address.to_owned(),
                deploy_to: dir.to_string_lossy().into_owned(),
                target: Target::Local { dir },
                vars: Default::default(),
                health_http: None,
                metrics: None,
            });
        }
        let parsed = parse_address(address).map_err(|m| self.err(h, m))?;
        let port = match port {
            Some(p) => self.port(h, p)?,
            None => parsed.port.unwrap_or(ssh.port),
        };
        let user = user
            .map(str::to_owned)
            .or(parsed.user)
            .unwrap_or_else(|| ssh.user.clone());
        let deploy_to = match deploy_to {
            Some(d) => self.absolute_remote(&Spanned::new(h.span(), d.to_owned()))?,
            None => app.deploy_to.clone(),
        };
        Ok(Host {
            name: address.to_owned(),
            target: Target::Ssh(SshTarget {
                user,
                host: parsed.host,
                port,
            }),
            deploy_to,
            vars: Default::default(),
            health_http: None,
            metrics: None,
        })
    }

    fn strategy(
        &self,
        s: &Spanned<RawStrategy>,
        sources: Sources,
    ) -> Result<Strategy, ConfigError> {
        let raw = s.get_ref();
        let kind = raw.kind.get_ref().as_str();
        let Some((_, takes)) = STRATEGY_KEYS.iter().find(|(k, _)| *k == kind) else {
            return Err(self.err(
                &raw.kind,
                format!("unknown strategy kind {kind:?}, expected {}", kinds_list()),
            ));
        };
        if let Some(key) = raw.written_keys().into_iter().find(|k| !takes.contains(k)) {
            return Err(self.err(
                s,
                format!("`{key}` does not apply to strategy kind {kind:?}"),
            ));
        }
        match kind {
            "rolling" => self.rolling(raw),
            "canary" => self.canary(s, sources),
            "blue-green" => self.blue_green(s),
            // The only other kind in STRATEGY_KEYS.
            _ => Ok(Strategy::AllAtOnce),
        }
    }

    fn rolling(&self, raw: &RawStrategy) -> Result<Strategy, ConfigError> {
        let batch = match &raw.batch {
            None => HostCount::Count(1),
            Some(b) => match b.get_ref() {
                RawCount::Number(n) => HostCount::parse(&n.to_string()),
                RawCount::Text(t) => HostCount::parse(t),
            }
            .map_err(|m| self.err(b, format!("batch: {m}")))?,
        };
        let max_failures = match &raw.max_failures {
            None => 0,
            Some(m) => usize::try_from(*m.get_ref())
                .map_err(|_| self.err(m, "max_failures must be 0 or more"))?,
        };
        Ok(Strategy::Rolling {
            batch,
            max_failures,
        })
    }

    fn canary(&self, s: &Spanned<RawStrategy>, sources: Sources) -> Result<Strategy, ConfigError> {
        let steps = s.get_ref().steps.as_ref().ok_or_else(|| {
            self.err(
                s,
                "a canary needs `steps`, as in steps = [\"1\", \"pause 60s\", \"25%\", \"pause\", \"100%\"]",
            )
        })?;
        // The message names the step; the rules (order, 100% last) are the
        // list's, so the array is the place to point at.
        let steps = canary::parse_steps(steps.get_ref()).map_err(|m| self.err(steps, m))?;
        Ok(Strategy::Canary {
            steps,
            thresholds: self.thresholds(s, sources)?,
        })
    }

    fn thresholds(
        &self,
        s: &Spanned<RawStrategy>,
        sources: Sources,
    ) -> Result<Thresholds, ConfigError> {
        let raw = s.get_ref();
        let number = |v: &Option<Spanned<RawNumber>>| v.as_ref().map(|v| v.get_ref().get());
        let defaults = Thresholds::default();
        // Without [health] there are no probes, and a pass rate that is on
        // with no data would leave every pause inconclusive.
        let min_health_pass_rate = match (&raw.min_health_pass_rate, sources.health) {
            (Some(m), false) => {
                return Err(self.err(
                    m,
                    "min_health_pass_rate needs a [health] section: without it there are no probes to count",
                ));
            }
            (Some(m), true) => Some(m.get_ref().get()),
            (None, true) => defaults.min_health_pass_rate,
            (None, false) => None,
        };
        let max_latency_ms = match &raw.max_latency_ms {
            None => None,
            Some(m) if !sources.health && !sources.app_latency => {
                return Err(self.err(
                    m,
                    "max_latency_ms needs [health] (the probes' latency) or metrics.latency (the app's own): without either there is no latency to judge",
                ));
            }
            Some(m) => Some(u64::try_from(*m.get_ref()).map_err(|_| {
                self.err(
                    m,
                    "max_latency_ms must be a whole number of milliseconds above 0",
                )
            })?),
        };
        // Lines are counted only when there are logs to read and a pattern
        // that says which are errors; without, the limit could never be met
        // or, worse, would be met by counting nothing.
        if let Some(m) = &raw.max_error_lines_per_min {
            let missing = match (sources.logs, sources.error_pattern) {
                (false, _) => Some("[logs] with `files` or `command`"),
                (true, false) => Some("logs.error_pattern (which lines are errors)"),
                (true, true) => None,
            };
            if let Some(missing) = missing {
                return Err(self.err(
                    m,
                    format!("max_error_lines_per_min needs {missing}: without it there are no error lines to count"),
                ));
            }
        }
        if let Some(m) = &raw.max_error_rate
            && !sources.metrics
        {
            return Err(self.err(
                m,
                "max_error_rate needs [metrics] with `prometheus`: the error rate comes from the app's own request counters",
            ));
        }
        let min_requests = match &raw.min_requests {
            None => defaults.min_requests,
            Some(m) => u64::try_from(*m.get_ref())
                .map_err(|_| self.err(m, "min_requests must be 0 or more"))?,
        };
        let thresholds = Thresholds {
            max_error_rate: number(&raw.max_error_rate),
            max_latency_ms,
            max_relative: number(&raw.max_relative),
            min_health_pass_rate,
            max_error_lines_per_min: number(&raw.max_error_lines_per_min),
            min_requests,
            // A source that is set up and stays silent is missing data, so
            // that no check quietly stops applying (see canary::Expects).
            expects: Expects {
                requests: sources.metrics,
                error_lines: sources.logs && sources.error_pattern,
                app_latency: sources.app_latency,
            },
            ..defaults
        };
        // Its messages start with the key.
        thresholds.validate().map_err(|m| self.err(s, m))?;
        Ok(thresholds)
    }

    fn blue_green(&self, s: &Spanned<RawStrategy>) -> Result<Strategy, ConfigError> {
        let raw = s.get_ref();
        let switch = raw.switch.as_ref().ok_or_else(|| {
            self.err(
                s,
                "a blue-green strategy needs `switch`: the command that moves traffic to the slot in $SHIPDECK_SLOT (port $SHIPDECK_SLOT_PORT)",
            )
        })?;
        let ports = raw.ports.as_ref().map(|p| self.ports(p)).transpose()?;
        Ok(Strategy::BlueGreen(BlueGreen {
            switch: self.command("switch", switch)?,
            stop: raw
                .stop
                .as_ref()
                .map(|c| self.command("stop", c))
                .transpose()?,
            finish_after: raw.finish_after.map(|d| d.0),
            ports,
        }))
    }

    /// A command the strategy runs: blank would run nothing and look fine.
    fn command(&self, key: &str, c: &Spanned<String>) -> Result<String, ConfigError> {
        if c.get_ref().trim().is_empty() {
            return Err(self.err(c, format!("`{key}` must be a command, not empty")));
        }
        Ok(c.get_ref().clone())
    }

    /// `ports = [BLUE, GREEN]`.
    fn ports(&self, ports: &Spanned<Vec<Spanned<i64>>>) -> Result<[u16; 2], ConfigError> {
        let [blue, green] = ports.get_ref().as_slice() else {
            return Err(self.err(
                ports,
                "ports takes two ports, blue then green, as in ports = [8081, 8082]",
            ));
        };
        let blue = self.port(blue, *blue.get_ref())?;
        let green = self.port(green, *green.get_ref())?;
        if blue == green {
            return Err(self.err(
                ports,
                format!("ports = [{blue}, {green}]: the blue and green slots need different ports"),
            ));
        }
        Ok([blue, green])
    }

    /// Every blue/green host needs its own port for each slot, from its vars
    /// or from the strategy's `ports`.
    fn check_slot_ports(
        &self,
        bg: &BlueGreen,
        raw: &Spanned<RawHost>,
        host: &Host,
    ) -> Result<(), ConfigError> {
        let mut ports = [0; 2];
        for (port, slot) in ports.iter_mut().zip([Slot::Blue, Slot::Green]) {
            *port = slot_port(bg, host, slot)
                .map_err(|m| self.err(raw, m))?
                .ok_or_else(|| self.err(raw, missing_slot_port(raw.get_ref(), host, slot)))?;
        }
        if ports[0] == ports[1] {
            return Err(self.err(
                raw,
                format!(
                    "host {:?}: the blue and green slots both get port {}; each slot needs its own",
                    host.name, ports[0]
                ),
            ));
        }
        Ok(())
    }

    fn check_requires_cycles(&self, envs: &[Environment]) -> Result<(), ConfigError> {
        for start in envs {
            let mut seen = vec![start.name.as_str()];
            let mut at = start;
            while let Some(req) = &at.requires {
                if seen.contains(&req.as_str()) {
                    seen.push(req);
                    return Err(ConfigError::at(
                        self.path,
                        self.source,
                        find_requires(self.source, &start.name),
                        format!("`requires` forms a cycle: {}", seen.join(" -> ")),
                    ));
                }
                seen.push(req);
                match envs.iter().find(|e| &e.name == req) {
                    Some(e) => at = e,
                    None => break,
                }
            }
        }
        Ok(())
    }
}

/// The port a blue/green slot listens on, on one host: the host's
/// `vars.blue_port` / `vars.green_port`, else the strategy's `ports`. A loaded
/// config has one for both slots of every host of a blue-green environment.
pub fn slot_port(bg: &BlueGreen, host: &Host, slot: Slot) -> Result<Option<u16>, String> {
    let var = slot.port_var();
    match host.vars.get(var) {
        Some(v) => match v.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(Some(p)),
            _ => Err(format!(
                "host {:?}: vars.{var} = {v:?} is not a TCP port (1 to 65535)",
                host.name
            )),
        },
        None => Ok(bg.ports.map(|[blue, green]| match slot {
            Slot::Blue => blue,
            Slot::Green => green,
        })),
    }
}

/// Says what to write, in the host's own form.
fn missing_slot_port(raw: &RawHost, host: &Host, slot: Slot) -> String {
    let vars = "vars = { blue_port = \"8081\", green_port = \"8082\" }";
    let on_host = match raw {
        RawHost::Short(address) => format!("write the host as {{ address = {address:?}, {vars} }}"),
        RawHost::Table(_) => format!("add {} to its vars, as in {vars}", slot.port_var()),
    };
    format!(
        "host {:?} has no port for the {slot} slot: set ports = [8081, 8082] in the strategy, or {on_host}",
        host.name
    )
}

/// `"a", "b" or "c"`, for the unknown-kind message.
fn kinds_list() -> String {
    let kinds: Vec<String> = STRATEGY_KEYS
        .iter()
        .map(|(k, _)| format!("{k:?}"))
        .collect();
    match kinds.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The `[environments.NAME]` header, to point a cycle error at.
fn find_requires(source: &str, env: &str) -> Option<std::ops::Range<usize>> {
    let header = format!("[environments.{env}]");
    let start = source.find(&header)?;
    Some(start..start + header.len())
}

/// `http://host[:port]/path`, as fetched from the host itself.
fn parse_http_url(u: &str) -> Result<HttpTarget, String> {
    let rest = u.strip_prefix("http://").ok_or_else(|| {
        format!("{u:?}: only plain http:// URLs can be fetched through the SSH connection")
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{u:?}: {p:?} is not a port"))?,
        ),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{u:?} is not a usable http URL"));
    }
    Ok(HttpTarget {
        url: u.to_owned(),
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

#[derive(Debug, PartialEq, Eq)]
struct Address {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

/// `[user@]host[:port]`, with `[v6addr]:port` for IPv6.
fn parse_address(s: &str) -> Result<Address, String> {
    let bad = |why: &str| {
        format!("host {s:?}: {why} (expected \"[user@]host[:port]\" or \"local:/dir\")")
    };
    let (user, rest) = match s.rsplit_once('@') {
        Some((u, r)) => (Some(u), r),
        None => (None, s),
    };
    if let Some(u) = user
        && (u.is_empty()
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
    {
        return Err(bad("bad user name"));
    }
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad("junk after ]")),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b))
    {
        return Err(bad("bad host name"));
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("bad port"))?,
        ),
    };
    Ok(Address {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests;
