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
    pub requests: Option<String>,
    pub errors: Option<String>,
    pub interval: Option<Dur>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSsh {
    pub user: Option<String>,
    pub port: Option<Spanned<i64>>,
    pub identity: Option<String>,
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
}

#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a host: \"[user@]host[:port]\", \"local:/dir\", or a table with `address`"
)]
pub enum RawHost {
    Short(String),
    Table(RawHostTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHostTable {
    pub address: String,
    pub deploy_to: Option<String>,
    pub user: Option<String>,
    pub port: Option<i64>,
    #[serde(default)]
    pub vars: indexmap::IndexMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStrategy {
    pub kind: Spanned<String>,
    pub batch: Option<Spanned<RawCount>>,
    pub max_failures: Option<Spanned<i64>>,
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
