//! Resolving environments and their hosts: addresses, vars, URLs, window
//! rules, and `requires` without cycles.

use super::ssh_config::SshConfig;
use super::ssh_hosts::{self, Failure, Own};
use super::*;
use crate::model::SshTarget;

impl Resolver<'_> {
    pub(super) fn environment(
        &self,
        name: &str,
        env: Spanned<raw::RawEnvironment>,
        common: &Common<'_>,
    ) -> Result<Environment, ConfigError> {
        let Common {
            names,
            urls,
            sources,
            ..
        } = common;
        if !valid_env_name(name) {
            return Err(self.err(
                &env,
                format!("environment name {name:?} may only use A-Z a-z 0-9 . _ -"),
            ));
        }
        let rules = self.rules(&env)?;
        let env = env.into_inner();
        let env_ssh = env
            .ssh
            .as_ref()
            .map(|s| self.env_ssh(name, s))
            .transpose()?;
        if env.hosts.get_ref().is_empty() {
            return Err(self.err(&env.hosts, format!("environment {name:?} has no hosts")));
        }
        let mut hosts = Vec::new();
        let mut seen = HashSet::new();
        for h in env.hosts.get_ref() {
            let host = self.host(h, common, env_ssh.as_ref(), urls)?;
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
    pub(super) fn rules(
        &self,
        env: &Spanned<raw::RawEnvironment>,
    ) -> Result<WindowRules, ConfigError> {
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

    pub(super) fn host(
        &self,
        h: &Spanned<RawHost>,
        common: &Common<'_>,
        env_ssh: Option<&Own>,
        urls: &Urls<'_>,
    ) -> Result<Host, ConfigError> {
        let mut host = self.host_address(h, common, env_ssh)?;
        if let RawHost::Table(t) = h.get_ref() {
            for (k, v) in &t.vars {
                if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err(self.err(h, format!("var name {k:?} may only use A-Z a-z 0-9 _")));
                }
                host.vars.insert(k.clone(), v.clone());
            }
            host.label = self.host_label(h, t.name.as_deref())?;
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
    pub(super) fn http_target(
        &self,
        url: &Spanned<String>,
        host: &Host,
    ) -> Result<HttpTarget, ConfigError> {
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

    pub(super) fn host_address(
        &self,
        h: &Spanned<RawHost>,
        common: &Common<'_>,
        env_ssh: Option<&Own>,
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
            let ssh_keys = matches!(h.get_ref(), RawHost::Table(t) if t.identity.is_some() || t.jump.is_some());
            if deploy_to.is_some() || user.is_some() || port.is_some() || ssh_keys {
                return Err(self.err(
                    h,
                    "a local: host takes no deploy_to, user, port, identity or jump: its directory is its deploy_to",
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
                label: None,
            });
        }
        let target = self.ssh_target(h, address, user, port, common, env_ssh)?;
        let deploy_to = match deploy_to {
            Some(d) => self.absolute_remote(&Spanned::new(h.span(), d.to_owned()))?,
            None => common.app.deploy_to.clone(),
        };
        Ok(Host {
            name: address.to_owned(),
            target: Target::Ssh(target),
            deploy_to,
            vars: Default::default(),
            health_http: None,
            metrics: None,
            label: None,
        })
    }

    /// The host's own settings, then its environment's, then `[ssh]`, over ssh_config.
    fn ssh_target(
        &self,
        h: &Spanned<RawHost>,
        address: &str,
        user: Option<&str>,
        port: Option<i64>,
        common: &Common<'_>,
        env_ssh: Option<&Own>,
    ) -> Result<SshTarget, ConfigError> {
        let parsed = parse_address(address).map_err(|m| self.err(h, m))?;
        let port = port.map(|p| self.port(h, p)).transpose()?;
        let (identity, jump) = match h.get_ref() {
            RawHost::Table(t) => (t.identity.as_deref(), t.jump.clone()),
            RawHost::Short(_) => (None, None),
        };
        if let Some(j) = &jump {
            self.check_jump(&Spanned::new(h.span(), j.clone()))?;
        }
        let own = Own {
            from: "shipdeck.toml (the host's entry)".into(),
            user: user.map(str::to_owned).or(parsed.user),
            port: port.or(parsed.port),
            identity: identity.map(|i| self.local_path(i)),
            jump,
            ..Own::default()
        };
        let ssh = common.ssh;
        let top = Own {
            from: "shipdeck.toml [ssh]".into(),
            user: ssh.user.clone(),
            port: ssh.port,
            identity: ssh.identity.clone(),
            identities_only: ssh.identities_only,
            jump: ssh.jump.clone(),
            known_hosts: ssh.known_hosts.clone(),
            connect_timeout: ssh.connect_timeout,
        };
        let layers: Vec<Own> = [Some(own), env_ssh.cloned(), Some(top)]
            .into_iter()
            .flatten()
            .collect();
        let ssh_config = common
            .ssh_config
            .get_or_init(|| self.load_ssh_config(ssh))
            .as_ref()
            .map_err(Clone::clone)?;
        ssh_hosts::resolve(ssh_config, &parsed.host, &layers).map_err(|f| match f {
            Failure::SshConfig(e) => e,
            Failure::Here(m) => self.err(h, format!("host {address:?}: {m}")),
        })
    }

    fn load_ssh_config(&self, ssh: &Ssh) -> Result<SshConfig, ConfigError> {
        let home = dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"));
        match &ssh.config_file {
            None => Ok(SshConfig::none(&home)),
            Some(path) => {
                // Only the default file may be missing.
                let named = Some(path) != dirs::home_dir().map(|h| h.join(".ssh/config")).as_ref();
                SshConfig::load(path, &home, named)
            }
        }
    }

    /// `[environments.NAME.ssh]`, as the layer between a host's entry and `[ssh]`.
    fn env_ssh(&self, name: &str, s: &Spanned<raw::RawEnvSsh>) -> Result<Own, ConfigError> {
        let raw = s.get_ref();
        if let Some(j) = &raw.jump {
            self.check_jump(j)?;
        }
        Ok(Own {
            from: format!("shipdeck.toml [environments.{name}.ssh]"),
            user: raw.user.clone(),
            port: raw
                .port
                .as_ref()
                .map(|p| self.port(p, *p.get_ref()))
                .transpose()?,
            identity: raw.identity.as_deref().map(|i| self.local_path(i)),
            identities_only: raw.identities_only,
            jump: raw.jump.as_ref().map(|j| j.get_ref().clone()),
            ..Own::default()
        })
    }

    pub(super) fn check_requires_cycles(&self, envs: &[Environment]) -> Result<(), ConfigError> {
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

impl Resolver<'_> {
    /// A host's `name`: something to read (1 to 40 characters, none of
    /// them a control character or a space at either end), given to one
    /// host only in the whole file.
    fn host_label(
        &self,
        h: &Spanned<RawHost>,
        name: Option<&str>,
    ) -> Result<Option<String>, ConfigError> {
        let Some(name) = name else { return Ok(None) };
        if name.trim().is_empty() || name.trim() != name || name.chars().count() > 40 {
            return Err(self.err(
                h,
                format!(
                    "host name {name:?} must be 1 to 40 characters, without spaces at either end"
                ),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(self.err(h, format!("host name {name:?} holds a control character")));
        }
        let mut given = self.host_labels.borrow_mut();
        if given.iter().any(|n| n == name) {
            return Err(self.err(
                h,
                format!("host name {name:?} is given to two hosts; each host needs its own, the console tells them apart by it"),
            ));
        }
        given.push(name.to_owned());
        Ok(Some(name.to_owned()))
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
pub(super) fn missing_slot_port(raw: &RawHost, host: &Host, slot: Slot) -> String {
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
pub(super) fn kinds_list() -> String {
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

pub(super) fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The `[environments.NAME]` header, to point a cycle error at.
pub(super) fn find_requires(source: &str, env: &str) -> Option<std::ops::Range<usize>> {
    let header = format!("[environments.{env}]");
    let start = source.find(&header)?;
    Some(start..start + header.len())
}

/// `http://host[:port]/path`, as fetched from the host itself.
pub(super) fn parse_http_url(u: &str) -> Result<HttpTarget, String> {
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
pub(super) struct Address {
    pub(super) user: Option<String>,
    pub(super) host: String,
    pub(super) port: Option<u16>,
}

/// `[user@]host[:port]`, with `[v6addr]:port` for IPv6.
pub(super) fn parse_address(s: &str) -> Result<Address, String> {
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
