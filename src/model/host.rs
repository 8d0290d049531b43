use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where a host lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A directory on this machine; commands run as local processes.
    Local {
        dir: PathBuf,
    },
    Ssh(SshTarget),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}@[{}]:{}", self.user, self.host, self.port)
        } else {
            write!(f, "{}@{}:{}", self.user, self.host, self.port)
        }
    }
}

/// One host of an environment, with every per-host override applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The name shown to the operator: the address as written in the config.
    pub name: String,
    pub target: Target,
    /// Absolute path of the deploy directory on the host.
    pub deploy_to: String,
    /// Per-host values: given to hooks as `SHIPDECK_VAR_<NAME>`, and filled
    /// into `{name}` in the health and metrics URLs.
    pub vars: BTreeMap<String, String>,
    /// `health.http` for this host, if the health check is HTTP.
    pub health_http: Option<HttpTarget>,
    /// `metrics.prometheus` for this host.
    pub metrics: Option<HttpTarget>,
    /// The `name` the config gives it (`{ address = "…", name = "web-1" }`):
    /// what a person reads for it, in place of the address. Records on the
    /// hosts keep naming it by `name`.
    pub label: Option<String>,
}

impl Host {
    /// The host as a person reads it: its configured `name`, else its
    /// address as written.
    pub fn shown(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

/// An HTTP endpoint as seen from the host itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub path: String,
}
