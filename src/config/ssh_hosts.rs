//! How one SSH host is reached: shipdeck's own settings (the host's entry,
//! then `[environments.NAME.ssh]`, then `[ssh]`) win over ssh_config, which
//! wins over the defaults; each setting keeps where it came from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ssh_config::{Found, Place, Query, SshConfig};
use super::{ConfigError, parse_address};
use crate::model::{Origins, SshTarget};

/// Longest chain of bastions, counting the ones bastions jump through.
const MAX_HOPS: usize = 8;

/// One layer of shipdeck's own settings for a host.
#[derive(Debug, Clone, Default)]
pub struct Own {
    /// Where the layer is written, for `check`: "shipdeck.toml [ssh]".
    pub from: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity: Option<PathBuf>,
    pub identities_only: Option<bool>,
    /// `ProxyJump`'s syntax: `[user@]host[:port]`, comma separated, or `none`.
    pub jump: Option<String>,
    pub known_hosts: Option<PathBuf>,
    pub connect_timeout: Option<Duration>,
}

/// Why a host could not be resolved.
#[derive(Debug)]
pub enum Failure {
    /// At a line of ssh_config.
    SshConfig(ConfigError),
    /// In shipdeck.toml, at the host's entry.
    Here(String),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Self {
        Failure::SshConfig(e)
    }
}

/// What the `%` tokens of a path stand for.
struct Tokens<'a> {
    home: &'a Path,
    host: &'a str,
    alias: &'a str,
    port: u16,
    user: &'a str,
    local_user: &'a str,
}

/// The name of the user running shipdeck: OpenSSH's default remote user.
pub fn local_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".to_owned())
}

/// `~/.ssh/config`, written the short way.
fn describe_place(config: &SshConfig, place: &Place) -> String {
    let file = match place.file.strip_prefix(config.home()) {
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => place.file.display().to_string(),
    };
    format!("{file} line {}", place.line)
}

fn first_own<'a, T>(layers: &'a [Own], get: impl Fn(&'a Own) -> Option<T>) -> Option<(T, &'a str)> {
    layers
        .iter()
        .find_map(|l| get(l).map(|v| (v, l.from.as_str())))
}

/// Resolve `alias` (the host as written in shipdeck.toml) as OpenSSH would.
pub fn resolve(config: &SshConfig, alias: &str, layers: &[Own]) -> Result<SshTarget, Failure> {
    resolve_hop(config, alias, layers, 0)
}

fn resolve_hop(
    config: &SshConfig,
    alias: &str,
    layers: &[Own],
    depth: usize,
) -> Result<SshTarget, Failure> {
    let local = local_user();
    let own_user = first_own(layers, |l| l.user.clone());
    let found = config.lookup(&Query {
        alias,
        user: own_user.as_ref().map(|(u, _)| u.as_str()),
        local_user: &local,
    })?;
    refuse_proxy_command(config, &found, alias)?;
    let mut pick = Picker {
        config,
        found: &found,
        origins: Vec::new(),
    };
    let host = pick
        .value("HostName", None, "hostname", |v, _| {
            Ok(v.replace("%h", alias).replace("%%", "%"))
        })?
        .unwrap_or_else(|| alias.to_owned());
    let user = pick
        .value("User", own_user, "user", |v, _| Ok(v.to_owned()))?
        .unwrap_or_else(|| local.clone());
    let port = pick
        .value("Port", first_own(layers, |l| l.port), "port", |v, place| {
            v.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| config.error_at(place, format!("Port {v:?} is not a TCP port")))
        })?
        .unwrap_or(super::DEFAULT_SSH_PORT);
    let tokens = Tokens {
        home: config.home(),
        host: &host,
        alias,
        port,
        user: &user,
        local_user: &local,
    };
    let mut target = SshTarget::new(user.clone(), host.clone(), port);
    pick.session_settings(layers, &tokens, &mut target)?;
    let spec = pick.value(
        "ProxyJump",
        first_own(layers, |l| l.jump.clone()),
        "proxyjump",
        |v, _| Ok(v.to_owned()),
    )?;
    if let Some(spec) = spec.filter(|s| !s.eq_ignore_ascii_case("none")) {
        target.jump = hops(config, &spec, layers, depth)?;
    }
    target.origins = Origins(pick.origins);
    Ok(target)
}

/// ProxyCommand runs a program of the user's to carry the session, which
/// shipdeck does not: refused at its line, pointing at what works.
fn refuse_proxy_command(config: &SshConfig, found: &Found, alias: &str) -> Result<(), Failure> {
    match found.get("proxycommand") {
        Some((args, place)) if !args[0].eq_ignore_ascii_case("none") => Err(config
            .error_at(
                place,
                format!("ProxyCommand is not supported (for {alias}): reach the host through a bastion with ProxyJump user@bastion:port, or [ssh] jump in shipdeck.toml"),
            )
            .into()),
        _ => Ok(()),
    }
}

/// Takes each setting from shipdeck's layers, else from ssh_config, and
/// notes where it came from.
struct Picker<'a> {
    config: &'a SshConfig,
    found: &'a Found,
    origins: Vec<(&'static str, String)>,
}

impl Picker<'_> {
    /// How the session to this hop is opened and kept: keys, known_hosts,
    /// timeouts and keepalives.
    fn session_settings(
        &mut self,
        layers: &[Own],
        tokens: &Tokens<'_>,
        target: &mut SshTarget,
    ) -> Result<(), Failure> {
        let config = self.config;
        target.identities = self.identities(layers, tokens)?;
        target.identities_only = self
            .value(
                "IdentitiesOnly",
                first_own(layers, |l| l.identities_only),
                "identitiesonly",
                |v, place| yes_no(config, place, "IdentitiesOnly", v),
            )?
            .unwrap_or(false);
        // shipdeck's own known_hosts and timeout go unnamed: `check` shows the file's.
        let own_known = first_own(layers, |l| l.known_hosts.clone()).map(|(p, _)| (p, ""));
        target.known_hosts = self.value(
            "UserKnownHostsFile",
            own_known,
            "userknownhostsfile",
            |v, place| expand_path(config, place, v, tokens),
        )?;
        let own_timeout = first_own(layers, |l| l.connect_timeout).map(|(d, _)| (d, ""));
        target.connect_timeout = self.value(
            "ConnectTimeout",
            own_timeout,
            "connecttimeout",
            |v, place| seconds(config, place, "ConnectTimeout", v),
        )?;
        target.keepalive = self.value(
            "ServerAliveInterval",
            None,
            "serveraliveinterval",
            |v, place| seconds(config, place, "ServerAliveInterval", v),
        )?;
        Ok(())
    }

    /// `own` (with the layer that set it; an empty name is not noted), else
    /// the first value of `keyword` read by `parse`.
    fn value<T>(
        &mut self,
        setting: &'static str,
        own: Option<(T, &str)>,
        keyword: &str,
        parse: impl FnOnce(&str, &Place) -> Result<T, ConfigError>,
    ) -> Result<Option<T>, ConfigError> {
        if let Some((v, from)) = own {
            if !from.is_empty() {
                self.origins.push((setting, from.to_owned()));
            }
            return Ok(Some(v));
        }
        let Some((args, place)) = self.found.get(keyword) else {
            return Ok(None);
        };
        let v = parse(&args[0], place)?;
        self.origins
            .push((setting, describe_place(self.config, place)));
        Ok(Some(v))
    }

    /// shipdeck's key first, then every `IdentityFile`, as `ssh -i` does.
    fn identities(
        &mut self,
        layers: &[Own],
        tokens: &Tokens<'_>,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let mut identities = Vec::new();
        if let Some((path, from)) = first_own(layers, |l| l.identity.clone()) {
            self.origins.push(("IdentityFile", from.to_owned()));
            identities.push(path);
        }
        for (i, (file, place)) in self.found.identity_files.iter().enumerate() {
            if i == 0 && identities.is_empty() {
                self.origins
                    .push(("IdentityFile", describe_place(self.config, place)));
            }
            identities.push(expand_path(self.config, place, file, tokens)?);
        }
        Ok(identities)
    }
}

/// The bastions of a `ProxyJump` value, each resolved through ssh_config
/// too, and the bastions they jump through first. A bastion takes
/// shipdeck's key and known_hosts when ssh_config gives it none.
fn hops(
    config: &SshConfig,
    spec: &str,
    layers: &[Own],
    depth: usize,
) -> Result<Vec<SshTarget>, Failure> {
    if depth >= MAX_HOPS {
        return Err(Failure::Here(format!(
            "ProxyJump goes through more than {MAX_HOPS} bastions: does a bastion jump through itself? (exclude it, as in `Host * !bastion`)"
        )));
    }
    let mut chain = Vec::new();
    for hop in spec.split(',').map(str::trim) {
        let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
        let address = parse_address(hop).map_err(|m| Failure::Here(format!("ProxyJump: {m}")))?;
        let inherited = first_own(layers, |l| l.identity.clone());
        let own = [
            Own {
                from: format!("ProxyJump {hop}"),
                user: address.user.clone(),
                port: address.port,
                ..Own::default()
            },
            Own {
                from: inherited
                    .as_ref()
                    .map_or_else(String::new, |(_, f)| f.to_string()),
                known_hosts: first_own(layers, |l| l.known_hosts.clone()).map(|(p, _)| p),
                connect_timeout: first_own(layers, |l| l.connect_timeout).map(|(d, _)| d),
                ..Own::default()
            },
        ];
        let mut bastion = resolve_hop(config, &address.host, &own, depth + 1)?;
        if bastion.identities.is_empty()
            && let Some((identity, _)) = inherited
        {
            bastion.identities.push(identity);
        }
        chain.append(&mut bastion.jump);
        chain.push(bastion);
    }
    Ok(chain)
}

fn yes_no(config: &SshConfig, place: &Place, key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.to_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(config.error_at(place, format!("{key} must be yes or no, not {v:?}"))),
    }
}

fn seconds(config: &SshConfig, place: &Place, key: &str, v: &str) -> Result<Duration, ConfigError> {
    v.parse::<u64>().map(Duration::from_secs).map_err(|_| {
        config.error_at(
            place,
            format!("{key} must be a number of seconds, not {v:?}"),
        )
    })
}

/// `~/`, `%d`, `%h`, `%n`, `%p`, `%r`, `%u` and `%%`, as OpenSSH fills them in
/// for `IdentityFile` and `UserKnownHostsFile`; a relative path is under the
/// home folder.
fn expand_path(
    config: &SshConfig,
    place: &Place,
    raw: &str,
    t: &Tokens<'_>,
) -> Result<PathBuf, ConfigError> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('d') => out.push_str(&t.home.to_string_lossy()),
            Some('h') => out.push_str(t.host),
            Some('n') => out.push_str(t.alias),
            Some('p') => out.push_str(&t.port.to_string()),
            Some('r') => out.push_str(t.user),
            Some('u') => out.push_str(t.local_user),
            Some(other) => {
                return Err(config.error_at(
                    place,
                    format!("token %{other} in {raw:?} is not supported (shipdeck knows %d %h %n %p %r %u %%)"),
                ));
            }
            None => return Err(config.error_at(place, format!("{raw:?} ends in a lone %"))),
        }
    }
    Ok(match out.strip_prefix("~/") {
        Some(rest) => t.home.join(rest),
        None if out == "~" => t.home.to_owned(),
        None => t.home.join(out),
    })
}
