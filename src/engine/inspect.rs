//! Read-mostly commands: status, preflight, history, and the explicit lock.

use std::sync::Arc;

use super::health::probe_once;
use super::history::environment_release;
use super::journal::ChangeInfo;
use super::{Engine, EngineError, new_change_id, now_rfc3339};
use crate::host::{self, HookEnv, HostState, Layout, LockAttempt, StepError};
use crate::model::shell::Program;
use crate::model::{Action, HealthVerdict, HistoryRecord, LockOwner, Outcome, ReleaseId};
use crate::transport::{Fleet, HostHandle};

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostStatus {
    pub env: String,
    pub host: String,
    pub reachable: bool,
    pub error: Option<String>,
    pub current: Option<ReleaseId>,
    /// Where a rollback would go, by history.
    pub previous: Option<ReleaseId>,
    /// The previous release is still on disk.
    pub rollback_ready: bool,
    pub releases: Vec<ReleaseId>,
    /// `healthy`, `unhealthy`, `unknown` or `not-configured`.
    pub health: String,
    pub health_detail: Option<String>,
    pub lock: Option<String>,
    /// A change in progress, or interrupted, by its journal on this host.
    pub change: Option<ChangeInfo>,
    /// Blue/green: the slot taking traffic.
    pub live_slot: Option<crate::model::Slot>,
    /// Blue/green: the old slot still running until the change is finished.
    pub pending_finish: Option<super::bluegreen::PendingFinish>,
    /// The host missed the environment's last change: it runs another
    /// release than the one that change put the other hosts on.
    pub behind: Option<ReleaseId>,
    /// Corrupt history lines, one warning each, naming the host and the line.
    pub history_warnings: Vec<String>,
    #[serde(skip_serializing)]
    pub state: Option<HostState>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostCheck {
    pub env: String,
    pub host: String,
    /// How the host is reached and where each setting came from, for SSH hosts.
    pub reached: Option<String>,
    pub problems: Vec<String>,
    pub lock: Option<String>,
    pub free_bytes: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckReport {
    pub hosts: Vec<HostCheck>,
    /// The artifact size free disk was checked against, if a release exists.
    pub artifact_bytes: Option<u64>,
}

impl CheckReport {
    pub fn exit_code(&self) -> i32 {
        if self.hosts.iter().any(|h| !h.problems.is_empty()) {
            1
        } else if self.hosts.iter().any(|h| h.lock.is_some()) {
            3
        } else {
            0
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LockReport {
    pub env: String,
    pub changed: Vec<String>,
    pub already: Vec<String>,
    /// The hold already in place on the hosts in `already`: a second
    /// `lock` keeps it, and its reason.
    pub kept: Option<String>,
}

/// Disk needed for a release: the upload and its unpacked copy, with room to spare.
const DISK_FACTOR: u64 = 4;

impl Engine {
    /// The environments to look at: one by name, or all in config order.
    pub fn environments_named(
        &self,
        env: Option<&str>,
    ) -> Result<Vec<(String, Arc<Fleet>)>, EngineError> {
        match env {
            Some(name) => {
                let (e, f) = self.environment(name)?;
                Ok(vec![(e.name.clone(), f.clone())])
            }
            None => Ok(self
                .config
                .environments
                .iter()
                .filter_map(|e| {
                    self.fleets
                        .get(&e.name)
                        .map(|f| (e.name.clone(), f.clone()))
                })
                .collect()),
        }
    }

    pub fn status(
        &self,
        env: Option<&str>,
        probe_health: bool,
    ) -> Result<Vec<HostStatus>, EngineError> {
        let mut out = Vec::new();
        for (name, fleet) in self.environments_named(env)? {
            let mut hosts = fleet.all(|_, h| self.host_status(&name, h, probe_health));
            self.mark_environment(&name, &mut hosts);
            out.extend(hosts);
        }
        Ok(out)
    }

    /// What only the environment as a whole tells: a host that missed its
    /// last change (behind), and a lock left by a change that died before it
    /// wrote a journal anywhere (it switched nothing).
    fn mark_environment(&self, env: &str, hosts: &mut [HostStatus]) {
        let states: Vec<&HostState> = hosts.iter().filter_map(|h| h.state.as_ref()).collect();
        if states.iter().any(|s| s.journal.is_some()) {
            // A change is in progress or interrupted: hosts differ by design
            // until it ends, and `status` says where it stands instead.
            return;
        }
        let release = environment_release(states.iter().map(|s| s.history.as_slice()));
        for h in hosts.iter_mut() {
            if h.reachable && h.current.is_some() && h.current != release {
                h.behind = release.clone();
            }
            if let Some(state) = &h.state
                && let Some(crate::host::LockState::Owned(o)) = &state.lock
                && crate::signal::lock_is_dead(o, &self.operator)
            {
                h.lock = Some(format!(
                    "INTERRUPTED before it switched anything (nothing switched): {}; `shipdeck rollback {env}` releases it and rolls nothing back",
                    o.describe()
                ));
            }
        }
    }

    fn host_status(&self, env: &str, h: &HostHandle, probe_health: bool) -> HostStatus {
        let layout = Layout::new(&h.host.deploy_to);
        let mut status = HostStatus {
            env: env.to_owned(),
            host: h.host.shown().to_owned(),
            reachable: false,
            error: None,
            current: None,
            previous: None,
            rollback_ready: false,
            releases: Vec::new(),
            health: "unknown".into(),
            health_detail: None,
            lock: None,
            change: None,
            live_slot: None,
            pending_finish: None,
            behind: None,
            history_warnings: Vec::new(),
            state: None,
        };
        let state = match h.with(|t| host::probe(t, &layout)) {
            Ok(s) => s,
            Err(e) => {
                status.error = Some(e.to_string());
                return status;
            }
        };
        status.reachable = true;
        status.history_warnings =
            state.history_warnings(&h.host.name, "PREVIOUS and ROLLBACK read");
        let standing = state.standing(&self.operator);
        status.current = standing.current;
        status.previous = standing.previous;
        status.rollback_ready = standing.rollback_ready;
        status.releases = standing.releases;
        status.lock = standing.lock;
        status.change = standing.change;
        status.live_slot = standing.live_slot;
        status.pending_finish = standing.pending_finish;
        match (&self.config.health, &status.current) {
            (None, _) => status.health = "not-configured".into(),
            (Some(_), None) => status.health = "unknown".into(),
            (Some(health), Some(current)) if probe_health => {
                let env = HookEnv {
                    env: env.to_owned(),
                    host: h.host.name.clone(),
                    release: current.clone(),
                    previous: status.previous.clone(),
                    deploy_to: h.host.deploy_to.clone(),
                    release_dir: layout.current(),
                    host_vars: h.host.vars.clone(),
                    slot: None,
                };
                match h.with(|t| probe_once(t, health, &h.host, &env, &env.release_dir)) {
                    Ok(p) => {
                        status.health = if p.passed { "healthy" } else { "unhealthy" }.into();
                        status.health_detail =
                            Some(format!("{} in {}ms", p.detail, p.latency.as_millis()));
                    }
                    Err(e) => status.health_detail = Some(e.to_string()),
                }
            }
            (Some(_), Some(_)) => {}
        }
        status.state = Some(state);
        status
    }

    pub fn check(&self, env: Option<&str>) -> Result<CheckReport, EngineError> {
        let artifact_bytes = self
            .store
            .list()
            .ok()
            .and_then(|l| l.last().map(|r| r.manifest.size));
        let mut hosts = Vec::new();
        for (name, fleet) in self.environments_named(env)? {
            let commands = self.commands_run_on_hosts(&name);
            let (on_host, local_problems) = self.locate_programs(&commands);
            hosts.extend(fleet.all(|_, h| {
                let mut check = HostCheck {
                    env: name.clone(),
                    host: h.host.shown().to_owned(),
                    reached: reached(&h.host),
                    problems: local_problems.clone(),
                    lock: None,
                    free_bytes: None,
                };
                let layout = Layout::new(&h.host.deploy_to);
                let programs: Vec<String> = on_host.iter().map(|(p, _)| p.clone()).collect();
                let r = h.with(|t| {
                    Ok::<_, StepError>((
                        host::preflight(t, &layout, &programs)?,
                        host::probe(t, &layout)?,
                    ))
                });
                match r {
                    Err(e) => check.problems.push(e.to_string()),
                    Ok((pre, state)) => {
                        if !pre.writable {
                            check
                                .problems
                                .push(format!("{} is not writable", h.host.deploy_to));
                        }
                        if !pre.missing_commands.is_empty() {
                            check.problems.push(format!(
                                "missing commands: {}",
                                pre.missing_commands.join(", ")
                            ));
                        }
                        for missing in &pre.missing_programs {
                            let used_by = on_host
                                .iter()
                                .find(|(p, _)| p == missing)
                                .map_or("", |(_, by)| by.as_str());
                            check.problems.push(format!(
                                "`{missing}` is not on this host (command -v): {used_by}"
                            ));
                        }
                        check.free_bytes = pre.free_bytes;
                        if let (Some(free), Some(need)) = (pre.free_bytes, artifact_bytes)
                            && free < need * DISK_FACTOR
                        {
                            check.problems.push(format!(
                                "only {} free, a release needs about {}",
                                bytes(free),
                                bytes(need * DISK_FACTOR)
                            ));
                        }
                        check.lock = state.lock.map(|l| l.describe());
                    }
                }
                check
            }));
        }
        Ok(CheckReport {
            hosts,
            artifact_bytes,
        })
    }

    /// Every command the config runs on an environment's hosts, with what
    /// runs it: the hooks, the health command, blue/green's switch and stop.
    fn commands_run_on_hosts(&self, env: &str) -> Vec<(String, String)> {
        let cfg = &self.config;
        let hooks = &cfg.hooks;
        let mut out: Vec<(String, String)> = Vec::new();
        let mut add = |what: &str, commands: &[String]| {
            out.extend(commands.iter().map(|c| (what.to_owned(), c.clone())));
        };
        add("before_switch", &hooks.before_switch);
        add("run_once", &hooks.run_once);
        add("restart", hooks.restart.as_slice());
        add("after_switch", &hooks.after_switch);
        add("on_rollback", &hooks.on_rollback);
        if let Some(crate::config::Health {
            probe: crate::config::Probe::Command(c),
            ..
        }) = &cfg.health
        {
            add("health", std::slice::from_ref(c));
        }
        if let Some(e) = cfg.environments.iter().find(|e| e.name == env)
            && let crate::model::Strategy::BlueGreen(bg) = &e.strategy
        {
            add("blue-green switch", std::slice::from_ref(&bg.switch));
            add("blue-green stop", bg.stop.as_slice());
        }
        out
    }

    /// Which programs of `commands` to look for on each host (name or
    /// absolute path, with what runs it), and the problems found here: a
    /// program run from the release must be in the artifact folder.
    fn locate_programs(
        &self,
        commands: &[(String, String)],
    ) -> (Vec<(String, String)>, Vec<String>) {
        let mut on_host: Vec<(String, String)> = Vec::new();
        let mut problems = Vec::new();
        let artifact = self.config.dir.join(&self.config.app.artifact);
        for (what, command) in commands {
            let by = format!("{what}: `{command}`");
            match crate::model::shell::first_program(command) {
                Some(Program::OnPath(p) | Program::Absolute(p)) => {
                    match on_host.iter_mut().find(|(q, _)| *q == p) {
                        Some((_, seen)) => seen.push_str(&format!("; {by}")),
                        None => on_host.push((p, by)),
                    }
                }
                Some(Program::InRelease(p)) if !artifact.join(&p).is_file() => {
                    let folder = artifact.strip_prefix(&self.config.dir).unwrap_or(&artifact);
                    problems.push(format!(
                        "`{p}` is not in the artifact folder {}: {by}",
                        folder.display()
                    ));
                }
                _ => {}
            }
        }
        (on_host, problems)
    }

    /// Hold an environment: no change can start until it is unlocked.
    pub fn lock(&self, env: &str, reason: &str) -> Result<LockReport, EngineError> {
        let (_, fleet) = self.environment(env)?;
        let change = new_change_id();
        let owner = LockOwner {
            operator: self.operator.clone(),
            pid: std::process::id(),
            since: now_rfc3339(),
            reason: reason.to_owned(),
            change: None,
        };
        let results = fleet
            .all(|_, h| h.with(|t| host::lock(t, &Layout::new(&h.host.deploy_to), &owner, None)));
        let mut report = LockReport {
            env: env.to_owned(),
            changed: Vec::new(),
            already: Vec::new(),
            kept: None,
        };
        let mut others = Vec::new();
        let mut errors = Vec::new();
        for (h, r) in fleet.hosts.iter().zip(results) {
            match r {
                Ok(LockAttempt::Acquired(_)) => report.changed.push(h.host.name.clone()),
                Ok(LockAttempt::Held(lock, _))
                    if lock
                        .owner()
                        .is_some_and(|o| o.operator == self.operator && o.change.is_none()) =>
                {
                    report.already.push(h.host.name.clone());
                    report.kept = Some(lock.describe());
                }
                Ok(LockAttempt::Held(lock, _)) => {
                    others.push(format!("{}: locked by {}", h.host.name, lock.describe()))
                }
                Err(e) => errors.push(format!("{}: {e}", h.host.name)),
            }
        }
        let taken: Vec<usize> = (0..fleet.len())
            .filter(|&i| report.changed.contains(&fleet.hosts[i].host.name))
            .collect();
        if !others.is_empty() || !errors.is_empty() {
            // All or nothing, like a change's lock.
            fleet.each(&taken, |_, h| {
                let _ = h.with(|t| host::unlock(t, &Layout::new(&h.host.deploy_to), None));
            });
            let msg = format!(
                "could not lock {env}; nothing was changed\n  {}",
                [others.clone(), errors].concat().join("\n  ")
            );
            return Err(if others.is_empty() {
                EngineError::Failed(msg)
            } else {
                EngineError::Locked(msg)
            });
        }
        fleet.each(&taken, |_, h| {
            let _ = self.record_plain(&change, env, h, Action::Lock, Some(reason.to_owned()));
        });
        Ok(report)
    }

    /// Release an environment's lock. Without `force`, only a hold taken by
    /// this operator is released; a lock held by someone else, or by a
    /// change, needs `force`, and breaking it is written into history.
    pub fn unlock(
        &self,
        env: &str,
        force: bool,
        reason: Option<&str>,
    ) -> Result<LockReport, EngineError> {
        let (_, fleet) = self.environment(env)?;
        let change = new_change_id();
        let states = fleet.all(|_, h| h.with(|t| host::probe(t, &Layout::new(&h.host.deploy_to))));
        let mut report = LockReport {
            env: env.to_owned(),
            changed: Vec::new(),
            already: Vec::new(),
            kept: None,
        };
        let mut refused = Vec::new();
        let mut errors = Vec::new();
        let mut to_unlock = Vec::new();
        for (i, (h, s)) in fleet.hosts.iter().zip(states).enumerate() {
            match s {
                Err(e) => errors.push(format!("{}: {e}", h.host.name)),
                Ok(state) => match &state.lock {
                    None => report.already.push(h.host.name.clone()),
                    Some(lock) => {
                        let mine = lock
                            .owner()
                            .is_some_and(|o| o.operator == self.operator && o.change.is_none());
                        if mine || force {
                            let marker = lock.owner().map(host::owner_marker);
                            to_unlock.push((i, lock.describe(), mine, marker));
                        } else {
                            refused.push(format!("{}: locked by {}", h.host.name, lock.describe()));
                        }
                    }
                },
            }
        }
        if !refused.is_empty() {
            return Err(EngineError::Locked(format!(
                "{env} is locked by someone else; nothing was changed\n  {}\n  break it with `shipdeck unlock {env} --force --reason \"...\"` if its holder is gone",
                refused.join("\n  ")
            )));
        }
        let indices: Vec<usize> = to_unlock.iter().map(|(i, ..)| *i).collect();
        let results = fleet.each(&indices, |i, h| {
            let Some((_, held_by, mine, marker)) = to_unlock.iter().find(|(j, ..)| *j == i) else {
                return Ok(());
            };
            h.with(|t| host::unlock(t, &Layout::new(&h.host.deploy_to), marker.as_deref()))?;
            let message = if *mine {
                reason.map(str::to_owned)
            } else {
                Some(format!(
                    "broke the lock of {held_by}{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ))
            };
            self.record_plain(&change, env, h, Action::Unlock, message)
        });
        for (&i, r) in indices.iter().zip(results) {
            match r {
                Ok(()) => report.changed.push(fleet.hosts[i].host.name.clone()),
                Err(e) => errors.push(format!("{}: {e}", fleet.hosts[i].host.name)),
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::Failed(format!(
                "could not unlock every host of {env}\n  {}",
                errors.join("\n  ")
            )));
        }
        Ok(report)
    }

    fn record_plain(
        &self,
        change: &str,
        env: &str,
        h: &HostHandle,
        action: Action,
        message: Option<String>,
    ) -> Result<(), StepError> {
        let record = HistoryRecord {
            time: crate::model::time::now_rfc3339_ms(),
            operator: self.operator.clone(),
            change: change.to_owned(),
            action,
            env: env.to_owned(),
            host: h.host.name.clone(),
            release: None,
            sha256: None,
            from: None,
            outcome: Outcome::Success,
            switched: false,
            health: HealthVerdict::NotRun,
            duration_ms: 0,
            message,
            migration: None,
        };
        h.with(|t| host::append_history(t, &Layout::new(&h.host.deploy_to), &record))
    }

    /// Every history line of an environment's hosts, oldest first.
    pub fn history(
        &self,
        env: Option<&str>,
    ) -> Result<(Vec<HistoryRecord>, Vec<String>), EngineError> {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        for (name, fleet) in self.environments_named(env)? {
            for (h, r) in fleet
                .hosts
                .iter()
                .zip(fleet.all(|_, h| h.with(|t| host::probe(t, &Layout::new(&h.host.deploy_to)))))
            {
                match r {
                    Ok(s) => {
                        errors.extend(s.corrupt_history.iter().map(|c| {
                            format!(
                                "{}; the history shown is the other lines",
                                c.describe(&h.host.name)
                            )
                        }));
                        records.extend(s.history.into_iter().filter(|r| r.env == name))
                    }
                    Err(e) => errors.push(format!("{}: {e}", h.host.name)),
                }
            }
        }
        crate::model::history::in_order(&mut records);
        Ok((records, errors))
    }
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// "deploy@10.0.0.5:2222 via ops@bastion:22 (User from ~/.ssh/config line 12, …)".
fn reached(host: &crate::model::Host) -> Option<String> {
    let crate::model::Target::Ssh(t) = &host.target else {
        return None;
    };
    let origins = t.origins.describe();
    Some(if origins.is_empty() {
        t.route()
    } else {
        format!("{} ({origins})", t.route())
    })
}
