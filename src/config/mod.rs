//! `shipdeck.toml`: read, checked and resolved into plain values the rest of
//! the program can trust. Every error names the file, line and column.

mod duration;
mod environments;
mod error;
mod raw;
mod sections;
pub mod ssh_config;
mod ssh_hosts;
mod strategies;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::parse as parse_duration;
pub use environments::slot_port;
use environments::*;
pub use error::{ConfigError, line_col};
use raw::{RawConfig, RawCount, RawHost, RawNumber, RawStrategy};
use regex::Regex;
use toml::Spanned;

use crate::model::canary::{self, Expects, Thresholds};
use crate::model::prometheus::{LatencyQuery, Selector};
use crate::model::window::WindowRules;
use crate::model::{BlueGreen, Host, HostCount, HttpTarget, Slot, Strategy, Target};

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
    /// Run on the host in `current` (in blue/green, in the slot being
    /// gated); exit 0 passes.
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

/// `[ssh]` as written: what it leaves out comes from ssh_config, then the
/// defaults, host by host (each host's own is in its `SshTarget`).
#[derive(Debug, Clone)]
pub struct Ssh {
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    pub identities_only: Option<bool>,
    pub jump: Option<String>,
    /// The ssh_config file read, if any.
    pub config_file: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
    pub command_timeout: Duration,
    pub parallel: usize,
}

/// What every connection of this process shares; what differs by host
/// travels in its `SshTarget`.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// known_hosts of hosts whose ssh_config names none.
    pub known_hosts: PathBuf,
    /// Add keys of hosts not yet in `known_hosts` (never replaces a changed key).
    pub accept_new_host_keys: bool,
    /// For hosts whose ssh_config sets no `ConnectTimeout`.
    pub connect_timeout: Duration,
    /// Most hosts worked at once.
    pub parallel: usize,
}

impl Ssh {
    pub fn settings(&self, accept_new_host_keys: bool) -> SshSettings {
        SshSettings {
            known_hosts: self.known_hosts.clone().unwrap_or_else(default_known_hosts),
            accept_new_host_keys,
            connect_timeout: self.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            parallel: self.parallel,
        }
    }
}

pub fn default_known_hosts() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("/"))
        .join(".ssh/known_hosts")
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
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "; `shipdeck init` writes one, `shipdeck demo` opens the console on a sandbox of local hosts to try it"
            } else {
                ""
            };
            ConfigError::whole_file(path, format!("cannot read the config file: {e}{hint}"))
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
            host_labels: Default::default(),
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
    /// Read when the first SSH host needs it, so a config of local hosts
    /// alone never reads ssh_config.
    ssh_config: std::cell::OnceCell<Result<ssh_config::SshConfig, ConfigError>>,
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
    /// The hosts' `name`s given so far: each one once in the file.
    host_labels: std::cell::RefCell<Vec<String>>,
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
            ssh_config: std::cell::OnceCell::new(),
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
}

#[cfg(test)]
mod tests;
