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
use raw::{RawConfig, RawCount, RawHost, RawStrategy};
use regex::Regex;
use toml::Spanned;

use crate::engine::window::WindowRules;
use crate::model::{Host, HostCount, HttpTarget, SshTarget, Strategy, Target};
use crate::transport::ssh::SshSettings;

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
    /// Counter of all requests (summed over its series).
    pub requests: String,
    /// Counter of failed requests: a name, optionally with one label match,
    /// as in `http_requests_total{code=~"5.."}`.
    pub errors: String,
    /// A gauge of request latency in seconds (a summary's quantile, as in
    /// `http_request_duration_seconds{quantile="0.99"}`), judged against a
    /// canary's `max_latency_ms` instead of the health probes' latency.
    pub latency: Option<String>,
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
        let metrics = Metrics {
            prometheus: raw.metrics.prometheus.as_ref().map(|p| p.get_ref().clone()),
            requests: raw
                .metrics
                .requests
                .unwrap_or_else(|| "http_requests_total".into()),
            errors: raw
                .metrics
                .errors
                .unwrap_or_else(|| "http_requests_total{code=~\"5..\"}".into()),
            latency: None,
            interval: raw
                .metrics
                .interval
                .map_or(DEFAULT_METRICS_INTERVAL, |d| d.0),
        };
        let urls = Urls {
            health: health_url.as_ref(),
            metrics: raw.metrics.prometheus.as_ref(),
        };
        if raw.environments.get_ref().is_empty() {
            return Err(self.err(&raw.environments, "at least one environment is needed"));
        }
        let names: Vec<String> = raw.environments.get_ref().keys().cloned().collect();
        let mut environments = Vec::new();
        for (name, env) in raw.environments.into_inner() {
            environments.push(self.environment(&name, env, &names, &app, &ssh, &urls)?);
        }
        self.check_requires_cycles(&environments)?;
        Ok(Config {
            path: self.path.to_owned(),
            dir: self.dir.to_owned(),
            app,
            hooks: raw.hooks.into(),
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

    fn environment(
        &self,
        name: &str,
        env: Spanned<raw::RawEnvironment>,
        names: &[String],
        app: &App,
        ssh: &Ssh,
        urls: &Urls<'_>,
    ) -> Result<Environment, ConfigError> {
        if !valid_env_name(name) {
            return Err(self.err(
                &env,
                format!("environment name {name:?} may only use A-Z a-z 0-9 . _ -"),
            ));
        }
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
            Some(s) => self.strategy(s)?,
        };
        Ok(Environment {
            name: name.to_owned(),
            hosts,
            requires: env.requires.map(Spanned::into_inner),
            strategy,
            rules: WindowRules::parse::<&str>(None, "UTC", &[]).expect("UTC is bundled"),
        })
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

    fn strategy(&self, s: &Spanned<RawStrategy>) -> Result<Strategy, ConfigError> {
        let raw = s.get_ref();
        let kind = raw.kind.get_ref().as_str();
        let not_for = |field: &str| -> Result<(), ConfigError> {
            Err(self.err(
                s,
                format!("`{field}` does not apply to strategy kind {kind:?}"),
            ))
        };
        match kind {
            "all-at-once" => {
                if raw.batch.is_some() {
                    not_for("batch")?;
                }
                if raw.max_failures.is_some() {
                    not_for("max_failures")?;
                }
                Ok(Strategy::AllAtOnce)
            }
            "rolling" => {
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
            other => Err(self.err(
                &raw.kind,
                format!("unknown strategy kind {other:?}, expected \"all-at-once\" or \"rolling\""),
            )),
        }
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

impl From<raw::RawHooks> for Hooks {
    fn from(h: raw::RawHooks) -> Self {
        Hooks {
            before_switch: h.before_switch,
            run_once: h.run_once,
            restart: h.restart,
            after_switch: h.after_switch,
            on_rollback: Vec::new(),
            notify: Vec::new(),
            run_once_migrates: false,
        }
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
