use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::Duration;

/// Where a host lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A directory on this machine; commands run as local processes.
    Local {
        dir: PathBuf,
    },
    Ssh(SshTarget),
}

/// How to reach one SSH host, resolved from shipdeck.toml and ssh_config, so
/// the transport never reads a config file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshTarget {
    pub user: String,
    /// The address connected to (ssh_config's `HostName`), and the name its
    /// host key is looked up by in known_hosts.
    pub host: String,
    pub port: u16,
    /// Private keys in the order to try them; empty: the default keys.
    pub identities: Vec<PathBuf>,
    /// Offer only `identities`, from the agent or from the file.
    pub identities_only: bool,
    /// known_hosts for this host; `None`: the process-wide one.
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
    /// ssh_config's `ServerAliveInterval`; `None`: the transport's default.
    pub keepalive: Option<Duration>,
    /// Bastions to go through, the first one connected to directly.
    pub jump: Vec<SshTarget>,
    pub origins: Origins,
}

impl SshTarget {
    pub fn new(user: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        SshTarget {
            user: user.into(),
            host: host.into(),
            port,
            identities: Vec::new(),
            identities_only: false,
            known_hosts: None,
            connect_timeout: None,
            keepalive: None,
            jump: Vec::new(),
            origins: Origins::default(),
        }
    }

    /// `deploy@10.0.0.5:2222 via ops@bastion:22`: the way the host is reached.
    pub fn route(&self) -> String {
        if self.jump.is_empty() {
            return self.to_string();
        }
        let hops: Vec<String> = self.jump.iter().map(ToString::to_string).collect();
        format!("{self} via {}", hops.join(" then "))
    }
}

/// Where each connection setting of a host came from, as
/// `("User", "~/.ssh/config line 12")`, for `shipdeck check`. Two targets
/// that differ only in where their settings were written are the same host,
/// so this never takes part in comparisons.
#[derive(Debug, Clone, Default)]
pub struct Origins(pub Vec<(&'static str, String)>);

impl Origins {
    pub fn describe(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(setting, from)| format!("{setting} from {from}"))
            .collect();
        parts.join(", ")
    }
}

impl PartialEq for Origins {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Origins {}

impl Hash for Origins {
    fn hash<H: Hasher>(&self, _: &mut H) {}
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
