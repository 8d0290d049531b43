//! Running a change: lock every host, plan, prepare every host, switch batch by
//! batch, and put every switched host back when the change fails.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::events::{ChangeKind, ChangeOutcome, Event, Step, StepStatus};
use super::health;
use super::history::{passed_gate, previous_release, releases_to_remove};
use super::plan::{DeployInput, HostPlan, Plan, plan_deploy, plan_rollback};
use super::{Engine, EngineError, new_change_id, now_rfc3339};
use crate::config::Environment;
use crate::host::{self, HookEnv, HostState, Layout, LockAttempt, StepError};
use crate::model::{Action, HealthVerdict, HistoryRecord, LockOwner, Outcome, ReleaseId};
use crate::store::LocalRelease;
use crate::transport::{Fleet, HostHandle};

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostReport {
    pub host: String,
    pub from: Option<ReleaseId>,
    pub to: Option<ReleaseId>,
    /// `switched`, `unchanged`, `reverted`, `failed`, `skipped`.
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeReport {
    pub change: String,
    pub env: String,
    pub kind: ChangeKind,
    pub release: Option<ReleaseId>,
    pub outcome: ChangeOutcome,
    pub summary: String,
    pub duration_ms: u64,
    pub hosts: Vec<HostReport>,
}

impl ChangeReport {
    pub fn exit_code(&self) -> i32 {
        match self.outcome {
            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo => 0,
            _ => 1,
        }
    }
}

/// Per-host progress of a running change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Progress {
    Pending,
    Skipped,
    /// `current` now points at the target and the host passed its gate.
    Switched(HealthVerdict),
    /// Failed before its switch: it still runs what it ran.
    FailedUnchanged(String),
    /// Failed after its switch and was put back.
    Reverted(String),
    /// Failed, and could not be put back: needs a human.
    Stuck(String),
}

/// What one history line of this change says about one host.
struct Line<'x> {
    action: Action,
    release: Option<&'x ReleaseId>,
    sha256: Option<&'x str>,
    from: Option<&'x ReleaseId>,
    outcome: Outcome,
    health: HealthVerdict,
    message: Option<String>,
}

struct Run<'a> {
    engine: &'a Engine,
    env: &'a Environment,
    fleet: &'a Fleet,
    change: String,
    kind: ChangeKind,
    started: Instant,
    cancel: super::CancelToken,
}

impl Engine {
    pub fn deploy(&self, env: &str, release: &ReleaseId) -> Result<ChangeReport, EngineError> {
        self.ship(env, release, ChangeKind::Deploy)
    }

    /// Deploy a release that passed the environment `to` requires.
    pub fn promote(&self, release: &ReleaseId, to: &str) -> Result<ChangeReport, EngineError> {
        let (env, _) = self.environment(to)?;
        if env.requires.is_none() {
            return Err(EngineError::Usage(format!(
                "{to} has no `requires` environment to promote from; use `shipdeck deploy {to} {release}`"
            )));
        }
        self.ship(to, release, ChangeKind::Promote)
    }

    fn ship(
        &self,
        env_name: &str,
        id: &ReleaseId,
        kind: ChangeKind,
    ) -> Result<ChangeReport, EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let release = self
            .store
            .get(id)
            .map_err(|e| EngineError::Usage(e.to_string()))?;
        if let Some(required) = &env.requires {
            self.check_promotion_gate(&release, required)?;
        }
        let run = Run::new(self, env, fleet, kind, Some(id.clone()));
        run.deploy(&release)
    }

    /// Refuse unless every host of `required` passed its gate with exactly this artifact.
    pub fn check_promotion_gate(
        &self,
        release: &LocalRelease,
        required: &str,
    ) -> Result<(), EngineError> {
        let (_, fleet) = self.environment(required)?;
        let id = &release.manifest.id;
        let sha = &release.manifest.sha256;
        let results = fleet.all(|_, h| h.with(|t| host::probe(t, &Layout::new(&h.host.deploy_to))));
        let mut missing = Vec::new();
        for (h, r) in fleet.hosts.iter().zip(results) {
            match r {
                Ok(state) if passed_gate(&state.history, id, sha) => {}
                Ok(_) => missing.push(h.host.name.clone()),
                Err(e) => {
                    return Err(EngineError::Failed(format!(
                        "cannot check that {id} passed {required}: {}: {e}",
                        h.host.name
                    )));
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Refused(format!(
                "{id} (sha256 {}) has not passed {required} on {}: deploy it to {required} first and let its health gate pass",
                short_sha(sha),
                missing.join(", ")
            )))
        }
    }

    pub fn rollback(
        &self,
        env_name: &str,
        to: Option<&ReleaseId>,
    ) -> Result<ChangeReport, EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let run = Run::new(self, env, fleet, ChangeKind::Rollback, to.cloned());
        run.rollback(to)
    }
}

pub fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

impl<'a> Run<'a> {
    fn new(
        engine: &'a Engine,
        env: &'a Environment,
        fleet: &'a Arc<Fleet>,
        kind: ChangeKind,
        release: Option<ReleaseId>,
    ) -> Self {
        let run = Run {
            engine,
            env,
            fleet,
            change: new_change_id(),
            kind,
            started: Instant::now(),
            cancel: engine.cancel_token(),
        };
        engine.events.emit(Event::ChangeStarted {
            change: run.change.clone(),
            env: env.name.clone(),
            kind,
            release,
            hosts: env.hosts.iter().map(|h| h.name.clone()).collect(),
        });
        run
    }

    fn layout(&self, i: usize) -> Layout {
        Layout::new(&self.fleet.hosts[i].host.deploy_to)
    }

    fn nonce(&self, i: usize) -> String {
        format!("{}-{i}", self.change)
    }

    /// Run one step of one host, reporting its start and end.
    fn step<R>(
        &self,
        i: usize,
        step: Step,
        f: impl FnOnce() -> Result<R, StepError>,
    ) -> Result<R, StepError> {
        let events = &self.engine.events;
        events.step(i, step, StepStatus::Started);
        let t = Instant::now();
        let r = f();
        events.step(
            i,
            step,
            match &r {
                Ok(_) => StepStatus::Done {
                    elapsed: t.elapsed(),
                    detail: None,
                },
                Err(e) => StepStatus::Failed {
                    elapsed: t.elapsed(),
                    error: e.to_string(),
                },
            },
        );
        r
    }

    /// Several steps done in one round trip: reported together.
    fn steps<R>(
        &self,
        i: usize,
        steps: &[Step],
        f: impl FnOnce() -> Result<R, StepError>,
    ) -> Result<R, StepError> {
        let (first, rest) = steps.split_first().expect("at least one step");
        let r = self.step(i, *first, f);
        if r.is_ok() {
            for step in rest {
                self.engine.events.step(
                    i,
                    *step,
                    StepStatus::Done {
                        elapsed: Duration::ZERO,
                        detail: Some(format!("with {first}")),
                    },
                );
            }
        }
        r
    }

    fn skip(&self, i: usize, step: Step, why: &str) {
        self.engine.events.step(
            i,
            step,
            StepStatus::Skipped {
                why: why.to_owned(),
            },
        );
    }

    fn lock_reason(&self, release: Option<&ReleaseId>) -> String {
        match release {
            Some(r) => format!("{} {r} to {}", self.kind.as_str(), self.env.name),
            None => format!("{} {}", self.kind.as_str(), self.env.name),
        }
    }

    /// Connect and lock every host, reading each one's state under the lock.
    /// All or nothing: if any host cannot be locked, the others are released.
    fn lock_all(&self, release: Option<&ReleaseId>) -> Result<Vec<HostState>, EngineError> {
        let owner = LockOwner {
            operator: self.engine.operator.clone(),
            pid: std::process::id(),
            since: now_rfc3339(),
            reason: self.lock_reason(release),
            change: Some(self.change.clone()),
        };
        let results = self.fleet.all(|i, h| {
            self.step(i, Step::Connect, || h.connect().map_err(StepError::from))?;
            self.step(i, Step::Lock, || {
                h.with(|t| host::lock(t, &self.layout(i), &owner))
            })
        });
        let mut states = Vec::new();
        let mut held = Vec::new();
        let mut broken = Vec::new();
        let mut acquired = Vec::new();
        for (i, r) in results.into_iter().enumerate() {
            let name = &self.fleet.hosts[i].host.name;
            match r {
                Ok(LockAttempt::Acquired(state)) => {
                    acquired.push(i);
                    states.push(state);
                }
                Ok(LockAttempt::Held(lock, _)) => {
                    held.push(format!("{name}: locked by {}", lock.describe()))
                }
                Err(e) => broken.push(format!("{name}: {e}")),
            }
        }
        if held.is_empty() && broken.is_empty() {
            return Ok(states);
        }
        self.unlock(&acquired);
        let outcome = ChangeOutcome::Failed;
        if !held.is_empty() {
            let msg = format!(
                "{} is locked; nothing was changed\n  {}\n  wait for it, or break it with `shipdeck unlock {} --force` if its holder is gone",
                self.env.name,
                held.join("\n  "),
                self.env.name
            );
            self.finish_event(outcome, &msg);
            return Err(EngineError::Locked(msg));
        }
        let msg = format!(
            "cannot reach every host of {}; nothing was changed\n  {}",
            self.env.name,
            broken.join("\n  ")
        );
        self.finish_event(outcome, &msg);
        Err(EngineError::Failed(msg))
    }

    fn unlock(&self, hosts: &[usize]) {
        let marker = host::change_marker(&self.change);
        self.fleet.each(hosts, |i, h| {
            if let Err(e) = self.step(i, Step::Unlock, || h.with(|t| host::unlock(t, &self.layout(i), Some(&marker)))) {
                self.engine.events.note(
                    Some(i),
                    format!("{}: the lock is still held ({e}); release it with `shipdeck unlock {} --force`", h.host.name, self.env.name),
                );
            }
        });
    }

    fn finish_event(&self, outcome: ChangeOutcome, summary: &str) {
        self.engine.events.emit(Event::ChangeFinished {
            change: self.change.clone(),
            outcome,
            summary: summary.to_owned(),
        });
    }

    fn hook_env(&self, i: usize, release: &ReleaseId, previous: Option<&ReleaseId>) -> HookEnv {
        let h = &self.fleet.hosts[i].host;
        HookEnv {
            env: self.env.name.clone(),
            host: h.name.clone(),
            release: release.clone(),
            previous: previous.cloned(),
            deploy_to: h.deploy_to.clone(),
            release_dir: self.layout(i).release(release),
            host_vars: h.vars.clone(),
        }
    }

    fn record(&self, h: &HostHandle, i: usize, line: Line<'_>) -> Result<(), StepError> {
        let record = self.history_line(h, line);
        h.with(|t| host::append_history(t, &self.layout(i), &record))
    }

    fn history_line(&self, h: &HostHandle, line: Line<'_>) -> HistoryRecord {
        HistoryRecord {
            time: now_rfc3339(),
            operator: self.engine.operator.clone(),
            change: self.change.clone(),
            action: line.action,
            env: self.env.name.clone(),
            host: h.host.name.clone(),
            release: line.release.cloned(),
            sha256: line.sha256.map(str::to_owned),
            from: line.from.cloned(),
            outcome: line.outcome,
            health: line.health,
            duration_ms: self.started.elapsed().as_millis() as u64,
            message: line.message,
        }
    }

    fn history_action(&self) -> Action {
        match self.kind {
            ChangeKind::Deploy => Action::Deploy,
            ChangeKind::Promote => Action::Promote,
            ChangeKind::Rollback => Action::Rollback,
        }
    }

    fn deploy(&self, release: &LocalRelease) -> Result<ChangeReport, EngineError> {
        let cfg = &self.engine.config;
        let id = &release.manifest.id;
        let sha = release.manifest.sha256.as_str();
        let states = self.lock_all(Some(id))?;
        let names: Vec<String> = self.env.hosts.iter().map(|h| h.name.clone()).collect();
        let plan = plan_deploy(&DeployInput {
            env: &self.env.name,
            kind: self.kind,
            strategy: &self.env.strategy,
            names: &names,
            states: &states,
            release: id,
            sha256: sha,
            hooks: &cfg.hooks,
            has_health: cfg.health.is_some(),
            has_shared: !cfg.app.shared.is_empty(),
        });
        self.engine.events.emit(Event::Planned(plan.clone()));
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        if plan.is_empty() {
            self.unlock(&all);
            return Ok(self.report(
                &plan,
                &vec![Progress::Skipped; plan.hosts.len()],
                ChangeOutcome::NothingToDo,
                format!("every host of {} already runs {id}", self.env.name),
            ));
        }
        let mut progress: Vec<Progress> = plan
            .hosts
            .iter()
            .map(|h| {
                if h.skip.is_some() {
                    Progress::Skipped
                } else {
                    Progress::Pending
                }
            })
            .collect();

        // Prepare every host before any host switches: a failed upload or hook
        // leaves the whole environment on its old release.
        let active: Vec<usize> = plan.active().map(|h| h.host).collect();
        let prepared = self
            .fleet
            .each(&active, |i, h| self.prepare(h, i, &plan.hosts[i], release));
        for (&i, r) in active.iter().zip(prepared) {
            if let Err(e) = r {
                progress[i] = Progress::FailedUnchanged(e.to_string());
            }
        }
        if let Some(i) = plan.run_once_on
            && progress[i] == Progress::Pending
            && !self.cancel.is_cancelled()
        {
            let h = &self.fleet.hosts[i];
            let env = self.hook_env(i, id, plan.hosts[i].from.as_ref());
            let r = self.step(i, Step::RunOnce, || {
                self.run_hooks(h, "run_once", &cfg.hooks.run_once, &env.release_dir, &env)
            });
            if let Err(e) = r {
                progress[i] = Progress::FailedUnchanged(e.to_string());
            }
        }
        let prepare_failed = progress
            .iter()
            .any(|p| matches!(p, Progress::FailedUnchanged(_)));
        if prepare_failed || self.cancel.is_cancelled() {
            let (outcome, why) = if prepare_failed {
                (
                    ChangeOutcome::RolledBack,
                    "a host failed before switching".to_owned(),
                )
            } else {
                (
                    ChangeOutcome::Cancelled,
                    "cancelled before switching".to_owned(),
                )
            };
            return Ok(self.abort(&plan, progress, release, outcome, why));
        }

        let mut failures = 0;
        for (b, batch) in plan.batches.iter().enumerate() {
            if self.cancel.is_cancelled() {
                return Ok(self.abort(
                    &plan,
                    progress,
                    release,
                    ChangeOutcome::Cancelled,
                    "cancelled by the operator".into(),
                ));
            }
            self.engine.events.emit(Event::BatchStarted {
                index: b,
                of: plan.batches.len(),
                hosts: batch.clone(),
            });
            let results = self
                .fleet
                .each(batch, |i, h| self.publish(h, i, &plan.hosts[i], release));
            for (&i, p) in batch.iter().zip(results) {
                if !matches!(p, Progress::Switched(_)) {
                    failures += 1;
                }
                progress[i] = p;
            }
            if failures > plan.max_failures {
                let why = format!(
                    "{failures} host{} failed (max_failures = {})",
                    if failures == 1 { "" } else { "s" },
                    plan.max_failures
                );
                return Ok(self.abort(&plan, progress, release, ChangeOutcome::RolledBack, why));
            }
        }

        let switched: Vec<usize> = (0..progress.len())
            .filter(|&i| matches!(progress[i], Progress::Switched(_)))
            .collect();
        self.fleet.each(&switched, |i, h| {
            let _ = self.step(i, Step::Cleanup, || self.cleanup(h, i));
        });
        self.unlock(&all);
        let (outcome, summary) = if failures == 0 {
            (
                ChangeOutcome::Succeeded,
                format!(
                    "{} {id} to {}: {} host{} switched",
                    self.kind.as_str(),
                    self.env.name,
                    switched.len(),
                    if switched.len() == 1 { "" } else { "s" }
                ),
            )
        } else {
            (
                ChangeOutcome::Failed,
                format!(
                    "{} {id} to {}: {} switched, {failures} failed and went back (within max_failures = {})",
                    self.kind.as_str(),
                    self.env.name,
                    switched.len(),
                    plan.max_failures
                ),
            )
        };
        Ok(self.report(&plan, &progress, outcome, summary))
    }

    fn prepare(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        release: &LocalRelease,
    ) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        let id = &release.manifest.id;
        let layout = self.layout(i);
        for step in &hp.prepare {
            if self.cancel.is_cancelled() {
                return Err(StepError::Refused("cancelled".into()));
            }
            match step {
                Step::Upload => self.step(i, Step::Upload, || {
                    h.with(|t| {
                        host::upload_and_unpack(
                            t,
                            &layout,
                            &release.tarball,
                            id,
                            &release.manifest.sha256,
                            &self.nonce(i),
                            cfg.ssh.command_timeout,
                        )
                    })
                })?,
                Step::Link => self.step(i, Step::Link, || {
                    h.with(|t| host::link_shared(t, &layout, id, &cfg.app.shared))
                })?,
                Step::BeforeSwitch => {
                    let env = self.hook_env(i, id, hp.from.as_ref());
                    self.step(i, Step::BeforeSwitch, || {
                        self.run_hooks(
                            h,
                            "before_switch",
                            &cfg.hooks.before_switch,
                            &env.release_dir,
                            &env,
                        )
                    })?
                }
                // run_once runs after every host is prepared, on its own.
                _ => {}
            }
        }
        if !hp.prepare.contains(&Step::Upload) {
            self.skip(
                i,
                Step::Upload,
                "release already on the host, sha256 verified",
            );
        }
        Ok(())
    }

    /// Switch one host, restart, gate, hooks, record. A failure after the
    /// switch puts the host straight back on what it ran.
    fn publish(&self, h: &HostHandle, i: usize, hp: &HostPlan, release: &LocalRelease) -> Progress {
        let cfg = &self.engine.config;
        let id = &release.manifest.id;
        let sha = Some(release.manifest.sha256.as_str());
        let env = self.hook_env(i, id, hp.from.as_ref());
        if self.cancel.is_cancelled() {
            return Progress::FailedUnchanged("cancelled".into());
        }
        let after_switch = || -> Result<HealthVerdict, StepError> {
            self.step(i, Step::Switch, || {
                h.with(|t| host::switch(t, &self.layout(i), Some(id), &self.nonce(i)))
            })?;
            self.restart(h, i, &env)?;
            let verdict = self.health_gate(h, i, &env)?;
            if !cfg.hooks.after_switch.is_empty() {
                let dir = self.layout(i).current();
                self.step(i, Step::AfterSwitch, || {
                    self.run_hooks(h, "after_switch", &cfg.hooks.after_switch, &dir, &env)
                })?;
            }
            Ok(verdict)
        };
        match after_switch() {
            Ok(verdict) => {
                let action = self.history_action();
                match self.step(i, Step::Record, || {
                    self.record(
                        h,
                        i,
                        Line {
                            action,
                            release: Some(id),
                            sha256: sha,
                            from: hp.from.as_ref(),
                            outcome: Outcome::Success,
                            health: verdict,
                            message: None,
                        },
                    )
                }) {
                    Ok(()) => Progress::Switched(verdict),
                    // Without its history line the host's state is not what
                    // history says; put it back rather than leave it unexplained.
                    Err(e) => self.revert(h, i, hp, release, e.to_string()),
                }
            }
            Err(e) => self.revert(h, i, hp, release, e.to_string()),
        }
    }

    /// Run a hook list in order on one host; the first failure stops it.
    fn run_hooks(
        &self,
        h: &HostHandle,
        kind: &str,
        hooks: &[String],
        dir: &str,
        env: &HookEnv,
    ) -> Result<(), StepError> {
        let timeout = self.engine.config.ssh.command_timeout;
        h.with(|t| {
            for hook in hooks {
                host::run_command(t, &format!("{kind} hook `{hook}`"), dir, hook, env, timeout)?;
            }
            Ok(())
        })
    }

    /// The restart hook, as a step of its own.
    fn restart(&self, h: &HostHandle, i: usize, env: &HookEnv) -> Result<(), StepError> {
        if self.engine.config.hooks.restart.is_some() {
            self.step(i, Step::Restart, || self.run_restart(h, i, env))?;
        }
        Ok(())
    }

    /// Run the restart hook, if any, in `current`.
    fn run_restart(&self, h: &HostHandle, i: usize, env: &HookEnv) -> Result<(), StepError> {
        let cfg = &self.engine.config;
        if let Some(restart) = &cfg.hooks.restart {
            let dir = self.layout(i).current();
            h.with(|t| {
                host::run_command(t, "restart", &dir, restart, env, cfg.ssh.command_timeout)
            })?;
        }
        Ok(())
    }

    fn health_gate(
        &self,
        h: &HostHandle,
        i: usize,
        env: &HookEnv,
    ) -> Result<HealthVerdict, StepError> {
        match &self.engine.config.health {
            None => Ok(HealthVerdict::NotConfigured),
            Some(health) => self.step(i, Step::Health, || {
                h.with(|t| health::gate(t, health, &h.host, env, &self.cancel))
            }),
        }
    }

    /// Put a host back on the release it ran before this change.
    fn revert(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        release: &LocalRelease,
        why: String,
    ) -> Progress {
        let id = &release.manifest.id;
        let back = hp.from.as_ref();
        let r = self.step(i, Step::Revert, || {
            h.with(|t| host::switch(t, &self.layout(i), back, &self.nonce(i)))?;
            if let Some(prev) = back {
                self.run_restart(h, i, &self.hook_env(i, prev, Some(id)))?;
            }
            Ok(())
        });
        let (message, progress) = match r {
            Ok(()) => (why.clone(), Progress::Reverted(why.clone())),
            Err(e) => {
                let stuck = format!(
                    "{why}; putting it back on {} also failed: {e}",
                    back.map_or("nothing".into(), |b| b.to_string())
                );
                (stuck.clone(), Progress::Stuck(stuck))
            }
        };
        let _ = self.record(
            h,
            i,
            Line {
                action: self.history_action(),
                release: Some(id),
                sha256: Some(release.manifest.sha256.as_str()),
                from: back,
                outcome: Outcome::Failed,
                health: HealthVerdict::Failed,
                message: Some(message),
            },
        );
        if matches!(progress, Progress::Reverted(_)) {
            let _ = self.record(
                h,
                i,
                Line {
                    action: Action::Revert,
                    release: back,
                    sha256: None,
                    from: Some(id),
                    outcome: Outcome::Success,
                    health: HealthVerdict::NotRun,
                    message: Some(format!("{id} failed: {why}")),
                },
            );
        }
        progress
    }

    /// Stop the change: every switched host goes back, every host gets a
    /// history line saying so, every lock is released.
    fn abort(
        &self,
        plan: &Plan,
        mut progress: Vec<Progress>,
        release: &LocalRelease,
        mut outcome: ChangeOutcome,
        why: String,
    ) -> ChangeReport {
        let id = &release.manifest.id;
        self.engine.events.note(
            None,
            format!("stopping: {why}; putting switched hosts back"),
        );
        let switched: Vec<usize> = (0..progress.len())
            .filter(|&i| matches!(progress[i], Progress::Switched(_)))
            .collect();
        let reverted = self.fleet.each(&switched, |i, h| {
            self.revert(
                h,
                i,
                &plan.hosts[i],
                release,
                format!("change stopped: {why}"),
            )
        });
        for (&i, p) in switched.iter().zip(reverted) {
            progress[i] = p;
        }
        let action = self.history_action();
        let untouched: Vec<usize> = (0..progress.len())
            .filter(|&i| {
                matches!(
                    progress[i],
                    Progress::Pending | Progress::FailedUnchanged(_)
                )
            })
            .collect();
        self.fleet.each(&untouched, |i, h| {
            let msg = match &progress[i] {
                Progress::FailedUnchanged(e) => e.clone(),
                _ => format!("not switched: {why}"),
            };
            let _ = self.record(
                h,
                i,
                Line {
                    action,
                    release: Some(id),
                    sha256: Some(&release.manifest.sha256),
                    from: plan.hosts[i].from.as_ref(),
                    outcome: Outcome::Failed,
                    health: HealthVerdict::NotRun,
                    message: Some(msg),
                },
            );
        });
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        self.unlock(&all);
        let stuck: Vec<&str> = progress
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p, Progress::Stuck(_)))
            .map(|(i, _)| self.fleet.hosts[i].host.name.as_str())
            .collect();
        let summary = if stuck.is_empty() {
            format!(
                "{} {id} to {} stopped: {why}; every host runs what it ran before",
                self.kind.as_str(),
                self.env.name
            )
        } else {
            outcome = ChangeOutcome::Failed;
            format!(
                "{} {id} to {} stopped: {why}; COULD NOT PUT BACK {}: check them now",
                self.kind.as_str(),
                self.env.name,
                stuck.join(", ")
            )
        };
        self.report(plan, &progress, outcome, summary)
    }

    fn cleanup(&self, h: &HostHandle, i: usize) -> Result<(), StepError> {
        let layout = self.layout(i);
        let keep = self.engine.config.app.keep_releases;
        h.with(|t| {
            let state = host::probe(t, &layout)?;
            let current = state.current();
            let previous = previous_release(&state.history, current.as_ref());
            let remove = releases_to_remove(
                &state.releases,
                &state.history,
                current.as_ref(),
                previous.as_ref(),
                keep,
            );
            host::remove_releases(t, &layout, &remove)
        })
    }

    fn rollback(&self, to: Option<&ReleaseId>) -> Result<ChangeReport, EngineError> {
        let cfg = &self.engine.config;
        let states = self.lock_all(to)?;
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        let names: Vec<String> = self.env.hosts.iter().map(|h| h.name.clone()).collect();
        let plan = match plan_rollback(
            &self.env.name,
            &names,
            &states,
            to,
            &cfg.hooks,
            cfg.health.is_some(),
        ) {
            Ok(p) => p,
            Err(refusal) => {
                self.unlock(&all);
                let msg = format!(
                    "rollback of {} refused, nothing was changed: {refusal}",
                    self.env.name
                );
                self.finish_event(ChangeOutcome::Failed, &msg);
                return Err(EngineError::Failed(msg));
            }
        };
        self.engine.events.emit(Event::Planned(plan.clone()));
        let mut progress: Vec<Progress> = plan
            .hosts
            .iter()
            .map(|h| {
                if h.skip.is_some() {
                    Progress::Skipped
                } else {
                    Progress::Pending
                }
            })
            .collect();
        let mut still_locked = all.clone();
        for batch in &plan.batches {
            let results = self.fleet.each(batch, |i, h| {
                self.roll_back_host(h, i, &plan.hosts[i], &states[i])
            });
            for (&i, (p, unlocked)) in batch.iter().zip(results) {
                progress[i] = p;
                if unlocked {
                    still_locked.retain(|&h| h != i);
                }
            }
        }
        self.unlock(&still_locked);
        let failed: Vec<String> = progress
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Progress::Stuck(e) | Progress::FailedUnchanged(e) | Progress::Reverted(e) => {
                    Some(format!("{}: {e}", names[i]))
                }
                _ => None,
            })
            .collect();
        let target = plan
            .release
            .as_ref()
            .map_or_else(|| "their previous releases".to_owned(), ToString::to_string);
        let (outcome, summary) = if plan.is_empty() {
            (
                ChangeOutcome::NothingToDo,
                format!("every host of {} already runs {target}", self.env.name),
            )
        } else if failed.is_empty() {
            let from: Vec<String> = plan
                .active()
                .filter_map(|h| h.from.as_ref().map(ToString::to_string))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            (
                ChangeOutcome::Succeeded,
                format!(
                    "rolled {} back from {} to {target}",
                    self.env.name,
                    from.join(", ")
                ),
            )
        } else {
            (
                ChangeOutcome::Failed,
                format!(
                    "rollback of {} to {target} failed on {} host(s):\n  {}",
                    self.env.name,
                    failed.len(),
                    failed.join("\n  ")
                ),
            )
        };
        Ok(self.report(&plan, &progress, outcome, summary))
    }

    /// Rolling back a host that fails its gate leaves it on the rollback
    /// target: the release it came from is the one being abandoned.
    /// Rolling back a host that fails its gate leaves it on the rollback
    /// target: the release it came from is the one being abandoned. The
    /// history line and the unlock travel with the last step, and with no
    /// restart or gate to wait for, the switch travels with them too: over
    /// many hosts, round trips are what a rollback costs.
    fn roll_back_host(
        &self,
        h: &HostHandle,
        i: usize,
        hp: &HostPlan,
        state: &HostState,
    ) -> (Progress, bool) {
        let Some(target) = hp.to.as_ref() else {
            return (Progress::Skipped, false);
        };
        let cfg = &self.engine.config;
        let layout = self.layout(i);
        let env = self.hook_env(i, target, hp.from.as_ref());
        let sha = state.verified.get(target).cloned();
        let line = |outcome, health, message| Line {
            action: Action::Rollback,
            release: Some(target),
            sha256: sha.as_deref(),
            from: hp.from.as_ref(),
            outcome,
            health,
            message,
        };
        let unlock = host::unlock_script(&layout, Some(&host::change_marker(&self.change)));
        let switch = host::switch_script(&layout, Some(target), &self.nonce(i));
        if cfg.hooks.restart.is_none() && cfg.health.is_none() {
            let record = self.history_line(
                h,
                line(Outcome::Success, HealthVerdict::NotConfigured, None),
            );
            let done = self.steps(i, &[Step::Switch, Step::Record, Step::Unlock], || {
                h.with(|t| {
                    host::run_together(
                        t,
                        "switching, recording and unlocking",
                        &[switch, host::history_script(&layout, &record), unlock],
                    )
                })
            });
            return match done {
                Ok(()) => (Progress::Switched(HealthVerdict::NotConfigured), true),
                Err(e) => {
                    let _ = self.record(
                        h,
                        i,
                        line(Outcome::Failed, HealthVerdict::NotRun, Some(e.to_string())),
                    );
                    (Progress::Stuck(e.to_string()), false)
                }
            };
        }
        let result = (|| -> Result<HealthVerdict, StepError> {
            self.step(i, Step::Switch, || {
                h.with(|t| host::switch(t, &layout, Some(target), &self.nonce(i)))
            })?;
            self.restart(h, i, &env)?;
            self.health_gate(h, i, &env)
        })();
        let (record, progress) = match result {
            Ok(v) => (line(Outcome::Success, v, None), Progress::Switched(v)),
            Err(e) => (
                line(Outcome::Failed, HealthVerdict::Failed, Some(e.to_string())),
                Progress::Stuck(e.to_string()),
            ),
        };
        let record = self.history_line(h, record);
        let recorded = self.steps(i, &[Step::Record, Step::Unlock], || {
            h.with(|t| {
                host::run_together(
                    t,
                    "recording and unlocking",
                    &[host::history_script(&layout, &record), unlock],
                )
            })
        });
        match (progress, recorded) {
            (Progress::Switched(_), Err(e)) => (
                Progress::Stuck(format!(
                    "switched, but its history line could not be written: {e}"
                )),
                false,
            ),
            (p, r) => (p, r.is_ok()),
        }
    }

    fn report(
        &self,
        plan: &Plan,
        progress: &[Progress],
        outcome: ChangeOutcome,
        summary: String,
    ) -> ChangeReport {
        let hosts = plan
            .hosts
            .iter()
            .zip(progress)
            .map(|(hp, p)| {
                let (result, error) = match p {
                    Progress::Pending => ("unchanged", None),
                    Progress::Skipped => ("skipped", hp.skip.clone()),
                    Progress::Switched(_) => ("switched", None),
                    Progress::FailedUnchanged(e) => ("failed", Some(e.clone())),
                    Progress::Reverted(e) => ("reverted", Some(e.clone())),
                    Progress::Stuck(e) => ("needs attention", Some(e.clone())),
                };
                HostReport {
                    host: hp.name.clone(),
                    from: hp.from.clone(),
                    to: hp.to.clone(),
                    result: result.to_owned(),
                    error,
                }
            })
            .collect();
        self.finish_event(outcome, &summary);
        ChangeReport {
            change: self.change.clone(),
            env: self.env.name.clone(),
            kind: self.kind,
            release: plan.release.clone(),
            outcome,
            summary,
            duration_ms: self.started.elapsed().as_millis() as u64,
            hosts,
        }
    }
}

/// Elapsed time as operators read it.
pub fn human_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

impl Engine {
    /// What `deploy` would do, read without touching anything.
    pub fn plan(
        &self,
        env_name: &str,
        id: &ReleaseId,
    ) -> Result<(Plan, Option<EngineError>), EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let release = self
            .store
            .get(id)
            .map_err(|e| EngineError::Usage(e.to_string()))?;
        let results = fleet.all(|_, h| h.with(|t| host::probe(t, &Layout::new(&h.host.deploy_to))));
        let mut states = Vec::new();
        let mut errors = Vec::new();
        for (h, r) in fleet.hosts.iter().zip(results) {
            match r {
                Ok(s) => states.push(s),
                Err(e) => errors.push(format!("{}: {e}", h.host.name)),
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::Failed(format!(
                "cannot read every host of {env_name}\n  {}",
                errors.join("\n  ")
            )));
        }
        let names: Vec<String> = env.hosts.iter().map(|h| h.name.clone()).collect();
        let cfg = &self.config;
        let plan = plan_deploy(&DeployInput {
            env: env_name,
            kind: ChangeKind::Deploy,
            strategy: &env.strategy,
            names: &names,
            states: &states,
            release: id,
            sha256: &release.manifest.sha256,
            hooks: &cfg.hooks,
            has_health: cfg.health.is_some(),
            has_shared: !cfg.app.shared.is_empty(),
        });
        let gate = match &env.requires {
            Some(req) => self.check_promotion_gate(&release, req).err(),
            None => None,
        };
        Ok((plan, gate))
    }
}
