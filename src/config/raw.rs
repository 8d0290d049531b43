//! The file as written: serde structs that refuse unknown keys. Positions are
//! kept (`Spanned`) on every value a later check may need to point at.

use serde::Deserialize;
use toml::Spanned;

use super::duration::Dur;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub app: RawApp,
    #[serde(default)]
    pub hooks: RawHooks,
    pub health: Option<RawHealth>,
    #[serde(default)]
    pub logs: RawLogs,
    #[serde(default)]
    pub ssh: RawSsh,
    #[serde(default)]
    pub metrics: RawMetrics,
    pub environments: Spanned<indexmap::IndexMap<String, Spanned<RawEnvironment>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub name: Spanned<String>,
    pub build: Option<String>,
    pub artifact: Spanned<String>,
    pub deploy_to: Spanned<String>,
    pub keep_releases: Option<Spanned<i64>>,
    #[serde(default)]
    pub shared: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    #[serde(default)]
    pub before_switch: Vec<String>,
    #[serde(default)]
    pub run_once: Vec<String>,
    pub restart: Option<String>,
    #[serde(default)]
    pub after_switch: Vec<String>,
    #[serde(default)]
    pub on_rollback: Vec<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    pub run_once_migrates: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    pub http: Option<Spanned<String>>,
    pub command: Option<Spanned<String>>,
    pub interval: Option<Dur>,
    pub timeout: Option<Dur>,
    pub healthy_after: Option<Spanned<i64>>,
    pub gate: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogs {
    #[serde(default)]
    pub files: Vec<String>,
    pub command: Option<String>,
    pub error_pattern: Option<Spanned<String>>,
    pub buffer_lines: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    pub prometheus: Option<Spanned<String>>,
    /// Counter of requests, and of failed requests, in the Prometheus page.
    pub requests: Option<Spanned<String>>,
    pub errors: Option<Spanned<String>>,
    /// Request latency in seconds: a gauge, a summary's quantile or
    /// `histogram_quantile(q, histogram)`.
    pub latency: Option<Spanned<String>>,
    pub interval: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    pub user: Option<String>,
    pub port: Option<Spanned<i64>>,
    pub identity: Option<String>,
    pub identities_only: Option<bool>,
    /// Bastions, as ssh_config's `ProxyJump`.
    pub jump: Option<Spanned<String>>,
    /// The ssh_config file to read, or "none".
    pub config: Option<Spanned<String>>,
    pub known_hosts: Option<String>,
    pub connect_timeout: Option<Dur>,
    pub command_timeout: Option<Dur>,
    pub parallel: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvironment {
    pub hosts: Spanned<Vec<Spanned<RawHost>>>,
    pub requires: Option<Spanned<String>>,
    pub strategy: Option<Spanned<RawStrategy>>,
    pub window: Option<Spanned<String>>,
    pub timezone: Option<Spanned<String>>,
    /// An `Option` rather than a default, to keep the array's position.
    pub freezes: Option<Spanned<Vec<Spanned<String>>>>,
    pub ssh: Option<Spanned<RawEnvSsh>>,
}

/// `[environments.NAME.ssh]`: what `[ssh]` sets per host, for one environment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnvSsh {
    pub user: Option<String>,
    pub port: Option<Spanned<i64>>,
    pub identity: Option<String>,
    pub identities_only: Option<bool>,
    pub jump: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a host: \"[user@]host[:port]\", \"local:/dir\", or a table with `address`"
)]
pub enum RawHost {
    Short(String),
    Table(Box<RawHostTable>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHostTable {
    pub address: String,
    pub deploy_to: Option<String>,
    pub user: Option<String>,
    pub port: Option<i64>,
    pub identity: Option<String>,
    pub jump: Option<String>,
    #[serde(default)]
    pub vars: indexmap::IndexMap<String, String>,
    /// What the console and the tables call the host instead of its address.
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStrategy {
    pub kind: Spanned<String>,
    // rolling
    pub batch: Option<Spanned<RawCount>>,
    pub max_failures: Option<Spanned<i64>>,
    // canary
    pub steps: Option<Spanned<Vec<String>>>,
    pub max_error_rate: Option<Spanned<RawNumber>>,
    pub max_latency_ms: Option<Spanned<i64>>,
    pub max_relative: Option<Spanned<RawNumber>>,
    pub min_health_pass_rate: Option<Spanned<RawNumber>>,
    pub max_error_lines_per_min: Option<Spanned<RawNumber>>,
    pub min_requests: Option<Spanned<i64>>,
    // blue-green
    pub switch: Option<Spanned<String>>,
    pub stop: Option<Spanned<String>>,
    pub finish_after: Option<Dur>,
    pub ports: Option<Spanned<Vec<Spanned<i64>>>>,
}

impl RawStrategy {
    /// The keys written besides `kind`, in the order of the struct, so that
    /// one check can refuse those a kind does not take.
    pub fn written_keys(&self) -> Vec<&'static str> {
        [
            ("batch", self.batch.is_some()),
            ("max_failures", self.max_failures.is_some()),
            ("steps", self.steps.is_some()),
            ("max_error_rate", self.max_error_rate.is_some()),
            ("max_latency_ms", self.max_latency_ms.is_some()),
            ("max_relative", self.max_relative.is_some()),
            ("min_health_pass_rate", self.min_health_pass_rate.is_some()),
            (
                "max_error_lines_per_min",
                self.max_error_lines_per_min.is_some(),
            ),
            ("min_requests", self.min_requests.is_some()),
            ("switch", self.switch.is_some()),
            ("stop", self.stop.is_some()),
            ("finish_after", self.finish_after.is_some()),
            ("ports", self.ports.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, written)| written.then_some(key))
        .collect()
    }
}

/// A number where a fraction is expected: TOML keeps `2` and `2.0` apart, and
/// an operator writing `max_relative = 2` means the same thing.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged, expecting = "a number, as in 0.01 or 2")]
pub enum RawNumber {
    Float(f64),
    Integer(i64),
}

impl RawNumber {
    pub fn get(self) -> f64 {
        match self {
            RawNumber::Float(f) => f,
            RawNumber::Integer(i) => i as f64,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a number of hosts (2) or a percentage (\"25%\")"
)]
pub enum RawCount {
    Number(i64),
    Text(String),
}
