//! Running a change: lock every host, plan, prepare every host, switch batch by
//! batch, and put every switched host back when the change fails.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::events::{ChangeKind, ChangeOutcome, Event, Step, StepStatus};
use super::health;
use super::history::{migrations_crossed, passed_gate, previous_release, releases_to_remove};
use super::journal::{Journal, PauseState, lock_is_dead};
use super::notify::{self, Notice};
use super::pause::PauseEnd;
use super::plan::{DeployInput, HostPlan, Plan, plan_deploy, plan_rollback};
use super::window;
use super::{Engine, EngineError, new_change_id, now_rfc3339};
use crate::config::Environment;
use crate::host::{self, HookEnv, HostState, Layout, LockAttempt, LockState, StepError};
pub use crate::model::time::human_duration;
use crate::model::{Action, HealthVerdict, HistoryRecord, LockOwner, Outcome, ReleaseId, Strategy};
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
pub(super) enum Progress {
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
pub(super) struct Line<'x> {
    pub(super) action: Action,
    pub(super) release: Option<&'x ReleaseId>,
    pub(super) sha256: Option<&'x str>,
    pub(super) from: Option<&'x ReleaseId>,
    pub(super) outcome: Outcome,
    pub(super) health: HealthVerdict,
    pub(super) message: Option<String>,
}

/// What the operator said when asking for a change.
#[derive(Debug, Clone, Default)]
pub struct ChangeOptions {
    /// `--override --reason R`: start outside the deploy window or in a
    /// freeze; the history records who did and why.
    pub override_reason: Option<String>,
    /// `rollback --force`: roll back across a schema migration.
    pub force: bool,
}

pub(super) struct Run<'a> {
    pub(super) engine: &'a Engine,
    pub(super) env: &'a Environment,
    pub(super) fleet: &'a Fleet,
    pub(super) change: String,
    kind: ChangeKind,
    pub(super) release: Option<ReleaseId>,
    started: Instant,
    pub(super) cancel: super::CancelToken,
    /// Added to every history line of the change (a window override).
    override_note: Option<String>,
    /// Whether a lock held by an interrupted change of this machine may be
    /// taken over (resume and rollback; never a new deploy).
    take_over: bool,
    /// The journal, once planned; each host's copy adds its own steps.
    journal: Mutex<Option<Journal>>,
    /// Steps each host finished in this change.
    done: Mutex<Vec<Vec<Step>>>,
    /// The blue/green slot that took traffic on each host when this change
    /// began there: what its idle slot is, and where going back goes.
    live_slots: Mutex<Vec<Option<crate::model::Slot>>>,
    /// Hosts whose blue/green `switch` this change ran (or began to run).
    traffic: Mutex<Vec<bool>>,
    /// What each host ran before the change, once planned.
    froms: Mutex<Vec<Option<ReleaseId>>>,
    /// What marked the release as carrying a schema migration.
    migration: Mutex<Option<String>>,
    /// The canary pause the change is in, as its journals say.
    pub(super) pause_state: Mutex<Option<PauseState>>,
    /// The hosts that keep a journal of this change: those it changes.
    journalled: Mutex<Vec<usize>>,
    notices: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    pub fn deploy(&self, env: &str, release: &ReleaseId) -> Result<ChangeReport, EngineError> {
        self.deploy_with(env, release, &ChangeOptions::default())
    }

    pub fn deploy_with(
        &self,
        env: &str,
        release: &ReleaseId,
        opts: &ChangeOptions,
    ) -> Result<ChangeReport, EngineError> {
        self.ship(env, release, ChangeKind::Deploy, opts)
    }

    /// Deploy a release that passed the environment `to` requires.
    pub fn promote(&self, release: &ReleaseId, to: &str) -> Result<ChangeReport, EngineError> {
        self.promote_with(release, to, &ChangeOptions::default())
    }

    pub fn promote_with(
        &self,
        release: &ReleaseId,
        to: &str,
        opts: &ChangeOptions,
    ) -> Result<ChangeReport, EngineError> {
        let (env, _) = self.environment(to)?;
        if env.requires.is_none() {
            return Err(EngineError::Usage(format!(
                "{to} has no `requires` environment to promote from; use `shipdeck deploy {to} {release}`"
            )));
        }
        self.ship(to, release, ChangeKind::Promote, opts)
    }

    fn ship(
        &self,
        env_name: &str,
        id: &ReleaseId,
        kind: ChangeKind,
        opts: &ChangeOptions,
    ) -> Result<ChangeReport, EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let release = self
            .store
            .get(id)
            .map_err(|e| EngineError::Usage(e.to_string()))?;
        let override_note = self.check_window(env, opts)?;
        if let Some(required) = &env.requires {
            self.check_promotion_gate(&release, required)?;
        }
        let mut run = Run::new(self, env, fleet, kind, Some(id.clone()));
        run.override_note = override_note;
        run.deploy(&release)
    }

    /// Refuse a change outside the environment's window or inside a freeze,
    /// unless overridden with a reason; the override is what history keeps.
    pub(super) fn check_window(
        &self,
        env: &Environment,
        opts: &ChangeOptions,
    ) -> Result<Option<String>, EngineError> {
        let Err(refusal) = window::check(&env.rules, std::time::SystemTime::now()) else {
            return Ok(None);
        };
        match opts.override_reason.as_deref().map(str::trim) {
            Some(reason) if !reason.is_empty() => {
                let note = format!(
                    "window overridden by {}: {refusal}; reason: {reason}",
                    self.operator
                );
                self.events.note(None, note.clone());
                Ok(Some(note))
            }
            _ => Err(EngineError::Window(format!(
                "{} may not be changed now: {refusal}\n  to change it anyway, add --override --reason \"why\" (the history keeps both)",
                env.name
            ))),
        }
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
        force: bool,
    ) -> Result<ChangeReport, EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let mut run = Run::new(self, env, fleet, ChangeKind::Rollback, to.cloned());
        run.allow_take_over();
        run.rollback(to, force)
    }
}

/// A hook marks its release as carrying a schema migration by printing a
/// line `shipdeck-migration: WHAT`.
pub const MIGRATION_MARK: &str = "shipdeck-migration:";

fn migration_mark(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|l| {
        l.trim()
            .strip_prefix(MIGRATION_MARK)
            .map(|what| what.trim().to_owned())
    })
}

pub fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

impl<'a> Run<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        env: &'a Environment,
        fleet: &'a Arc<Fleet>,
        kind: ChangeKind,
        release: Option<ReleaseId>,
    ) -> Self {
        Self::continuing(engine, env, fleet, kind, release, new_change_id())
    }

    /// A run under a given change id: a resumed change keeps its own.
    pub(super) fn continuing(
        engine: &'a Engine,
        env: &'a Environment,
        fleet: &'a Arc<Fleet>,
        kind: ChangeKind,
        release: Option<ReleaseId>,
        change: String,
    ) -> Self {
        let run = Run {
            engine,
            env,
            fleet,
            change,
            kind,
            release: release.clone(),
            started: Instant::now(),
            cancel: engine.cancel_token(),
            override_note: None,
            take_over: false,
            journal: Mutex::new(None),
            done: Mutex::new(vec![Vec::new(); fleet.len()]),
            froms: Mutex::new(Vec::new()),
            live_slots: Mutex::new(Vec::new()),
            traffic: Mutex::new(vec![false; fleet.len()]),
            migration: Mutex::new(None),
            pause_state: Mutex::new(None),
            journalled: Mutex::new(Vec::new()),
            notices: Mutex::new(Vec::new()),
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

    pub(super) fn set_override(&mut self, note: Option<String>) {
        self.override_note = note;
    }

    pub(super) fn allow_take_over(&mut self) {
        self.take_over = true;
    }

    /// Tell the team (`hooks.notify`), in the background.
    pub(super) fn notify(&self, event: &str, outcome: &str, summary: &str) {
        let cfg = &self.engine.config;
        let notice = Notice {
            event: event.to_owned(),
            env: self.env.name.clone(),
            kind: self.kind.as_str().to_owned(),
            release: self
                .release
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            outcome: outcome.to_owned(),
            who: self.engine.operator.to_string(),
            change: self.change.clone(),
            summary: summary.to_owned(),
        };
        if let Some(h) = notify::send(&cfg.hooks.notify, &cfg.dir, notice) {
            self.notices
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(h);
        }
    }

    pub(super) fn layout(&self, i: usize) -> Layout {
        Layout::new(&self.fleet.hosts[i].host.deploy_to)
    }

    pub(super) fn nonce(&self, i: usize) -> String {
        format!("{}-{i}", self.change)
    }

    /// Run one step of one host, reporting its start and end.
    pub(super) fn step<R>(
        &self,
        i: usize,
        step: Step,
        f: impl FnOnce() -> Result<R, StepError>,
    ) -> Result<R, StepError> {
        let events = &self.engine.events;
        events.step(i, step, StepStatus::Started);
        let t = Instant::now();
        let r = f();
        if r.is_ok() {
            self.done.lock().unwrap_or_else(|p| p.into_inner())[i].push(step);
        }
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

    pub(super) fn skip(&self, i: usize, step: Step, why: &str) {
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
    pub(super) fn lock_all(
        &self,
        release: Option<&ReleaseId>,
    ) -> Result<Vec<HostState>, EngineError> {
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
                h.with(|t| {
                    let layout = self.layout(i);
                    match host::lock(t, &layout, &owner, None)? {
                        LockAttempt::Held(LockState::Owned(dead), _)
                            if self.take_over && lock_is_dead(&dead, &self.engine.operator) =>
                        {
                            self.engine.events.note(
                                Some(i),
                                format!(
                                    "{}: taking over the lock of an interrupted change ({})",
                                    h.host.name,
                                    dead.describe()
                                ),
                            );
                            host::lock(t, &layout, &owner, dead.change.as_deref())
                        }
                        attempt => Ok(attempt),
                    }
                })
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
            // A host this very change had switched before it was interrupted
            // has the new slot live already; the one it left is in finish.json.
            *self.live_slots.lock().unwrap_or_else(|p| p.into_inner()) = states
                .iter()
                .map(|s| match (&s.journal, &s.pending_finish) {
                    (Some(j), Some(p)) if j.change == self.change && j.switched() => p.old,
                    _ => s.live_slot,
                })
                .collect();
            self.notify("started", "", "");
            if let Some(note) = &self.override_note {
                self.notify("override", "", note);
            }
            return Ok(states);
        }
        self.unlock(&acquired, false);
        let outcome = ChangeOutcome::Failed;
        if !held.is_empty() {
            let msg = format!(
                "{} is locked; nothing was changed\n  {}\n  wait for it, or break it with `shipdeck unlock {} --force --reason \"why\"` if its holder is gone",
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

    /// Release the locks; with `end`, the change is over and its journal goes
    /// in the same round trip.
    pub(super) fn unlock(&self, hosts: &[usize], end: bool) {
        self.fleet.each(hosts, |i, h| {
            let layout = self.layout(i);
            let mut scripts = vec![self.unlock_script(i)];
            if end {
                scripts.insert(0, host::clear_journal_script(&layout));
            }
            if let Err(e) = self.step(i, Step::Unlock, || h.with(|t| host::run_together(t, "releasing the lock", &scripts))) {
                self.engine.events.note(
                    Some(i),
                    format!("{}: the lock is still held ({e}); release it with `shipdeck unlock {} --force --reason \"why\"`", h.host.name, self.env.name),
                );
            }
        });
    }

    fn unlock_script(&self, i: usize) -> String {
        host::unlock_script(&self.layout(i), Some(&host::change_marker(&self.change)))
    }

    fn finish_event(&self, outcome: ChangeOutcome, summary: &str) {
        let word = match outcome {
            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo
                if self.kind == ChangeKind::Rollback =>
            {
                "rolled-back"
            }
            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo => "succeeded",
            ChangeOutcome::RolledBack => "rolled-back",
            ChangeOutcome::Cancelled => "cancelled",
            ChangeOutcome::Failed => "failed",
        };
        self.notify("finished", word, summary);
        // The process may exit right after: let the team hear of it first.
        for h in self
            .notices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = h.join();
        }
        self.engine.events.emit(Event::ChangeFinished {
            change: self.change.clone(),
            outcome,
            summary: summary.to_owned(),
        });
    }

    pub(super) fn hook_env(
        &self,
        i: usize,
        release: &ReleaseId,
        previous: Option<&ReleaseId>,
    ) -> HookEnv {
        let h = &self.fleet.hosts[i].host;
        HookEnv {
            env: self.env.name.clone(),
            host: h.name.clone(),
            release: release.clone(),
            previous: previous.cloned(),
            deploy_to: h.deploy_to.clone(),
            release_dir: self.layout(i).release(release),
            host_vars: h.vars.clone(),
            slot: None,
        }
    }

    pub(super) fn record(&self, h: &HostHandle, i: usize, line: Line<'_>) -> Result<(), StepError> {
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
            message: match (line.message, &self.override_note) {
                (Some(m), Some(note)) => Some(format!("{m}; {note}")),
                (m, note) => m.or_else(|| note.clone()),
            },
            // A migration is the schema's, not the host's: it stays applied
            // when the change that ran it failed or was rolled back.
            migration: matches!(line.action, Action::Deploy | Action::Promote)
                .then(|| {
                    self.migration
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                })
                .flatten(),
        }
    }

    fn history_action(&self) -> Action {
        match self.kind {
            ChangeKind::Deploy => Action::Deploy,
            ChangeKind::Promote => Action::Promote,
            ChangeKind::Rollback => Action::Rollback,
            ChangeKind::Finish => Action::Finish,
        }
    }

    fn deploy(&self, release: &LocalRelease) -> Result<ChangeReport, EngineError> {
        let cfg = &self.engine.config;
        let id = &release.manifest.id;
        let sha = release.manifest.sha256.as_str();
        let states = self.lock_all(Some(id))?;
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        if let Some(j) = states.iter().find_map(|s| s.journal.as_ref()) {
            self.unlock(&all, false);
            let msg = format!(
                "{} has a change that did not finish ({} {} by {}, change {}); nothing was changed\n  finish it with `shipdeck resume {env}`, or undo it with `shipdeck rollback {env}`",
                self.env.name,
                j.kind.as_str(),
                j.release,
                j.operator,
                j.change,
                env = self.env.name
            );
            self.finish_event(ChangeOutcome::Failed, &msg);
            return Err(EngineError::Locked(msg));
        }
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
        if plan.is_empty() {
            self.unlock(&all, false);
            return Ok(self.report(
                &plan,
                &vec![Progress::Skipped; plan.hosts.len()],
                ChangeOutcome::NothingToDo,
                format!("every host of {} already runs {id}", self.env.name),
            ));
        }
        let progress: Vec<Progress> = plan
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
        self.start_journal(&plan, release);
        let active: Vec<usize> = plan.active().map(|h| h.host).collect();
        let written = self.fleet.each(&active, |i, h| {
            h.with(|t| host::run_together(t, "writing the journal", &[self.journal_script(i)]))
        });
        if let Some((i, e)) = active
            .iter()
            .zip(written)
            .find_map(|(&i, r)| r.err().map(|e| (i, e)))
        {
            let why = format!("cannot write the change's journal on {}: {e}", names[i]);
            return Ok(self.abort(&plan, progress, release, ChangeOutcome::Failed, why));
        }
        self.execute(&plan, progress, release, 0)
    }

    /// Prepare the hosts that still need it, then switch batch by batch from
    /// `first_batch`, pausing where the plan says. A resumed change enters
    /// here with the progress its journals recorded.
    pub(super) fn execute(
        &self,
        plan: &Plan,
        mut progress: Vec<Progress>,
        release: &LocalRelease,
        first_batch: usize,
    ) -> Result<ChangeReport, EngineError> {
        let cfg = &self.engine.config;
        let id = &release.manifest.id;
        *self.journalled.lock().unwrap_or_else(|p| p.into_inner()) =
            plan.active().map(|h| h.host).collect();
        // Prepare every host before any host switches: a failed upload or hook
        // leaves the whole environment on its old release.
        let pending: Vec<usize> = (0..progress.len())
            .filter(|&i| progress[i] == Progress::Pending)
            .collect();
        let prepared = self
            .fleet
            .each(&pending, |i, h| self.prepare(h, i, &plan.hosts[i], release));
        for (&i, r) in pending.iter().zip(prepared) {
            if let Err(e) = r {
                progress[i] = Progress::FailedUnchanged(e.to_string());
            }
        }
        if let Some(i) = plan.run_once_on
            && progress[i] == Progress::Pending
            && !self.has_done(i, Step::RunOnce)
            && !self.cancel.is_cancelled()
        {
            let h = &self.fleet.hosts[i];
            let env = self.release_env(i, id, plan.hosts[i].from.as_ref());
            let r = self.step(i, Step::RunOnce, || {
                self.run_hooks(h, "run_once", &cfg.hooks.run_once, &env.release_dir, &env)
            });
            match r {
                Err(e) => progress[i] = Progress::FailedUnchanged(e.to_string()),
                Ok(()) => {
                    if cfg.hooks.run_once_migrates {
                        self.mark_migration(format!("run_once: {}", cfg.hooks.run_once.join("; ")));
                    }
                    let _ = h.with(|t| {
                        host::run_together(t, "writing the journal", &[self.journal_script(i)])
                    });
                }
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
            return Ok(self.abort(plan, progress, release, outcome, why));
        }

        let mut failures = 0;
        let mut promote_all = false;
        for (b, batch) in plan.batches.iter().enumerate().skip(first_batch) {
            if self.cancel.is_cancelled() {
                return Ok(self.abort(
                    plan,
                    progress,
                    release,
                    ChangeOutcome::Cancelled,
                    "cancelled by the operator".into(),
                ));
            }
            let todo: Vec<usize> = batch
                .iter()
                .copied()
                .filter(|&i| progress[i] == Progress::Pending)
                .collect();
            if !todo.is_empty() {
                self.engine.events.emit(Event::BatchStarted {
                    index: b,
                    of: plan.batches.len(),
                    hosts: todo.clone(),
                });
            }
            let results = self
                .fleet
                .each(&todo, |i, h| self.publish(h, i, &plan.hosts[i], release));
            for (&i, p) in todo.iter().zip(results) {
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
                return Ok(self.abort(plan, progress, release, ChangeOutcome::RolledBack, why));
            }
            if promote_all {
                continue;
            }
            for pause in plan.pauses.get(b).into_iter().flatten() {
                match self.pause(plan, &progress, b, *pause) {
                    PauseEnd::Next => {}
                    PauseEnd::Promote => {
                        promote_all = true;
                        break;
                    }
                    PauseEnd::Stop(outcome, why) => {
                        return Ok(self.abort(plan, progress, release, outcome, why));
                    }
                }
            }
        }

        let switched: Vec<usize> = (0..progress.len())
            .filter(|&i| matches!(progress[i], Progress::Switched(_)))
            .collect();
        self.fleet.each(&switched, |i, h| {
            let _ = self.step(i, Step::Cleanup, || self.cleanup(h, i));
        });
        let all: Vec<usize> = (0..self.fleet.len()).collect();
        self.unlock(&all, true);
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
        Ok(self.report(plan, &progress, outcome, summary))
    }

    /// The journal every host of this change keeps, without its own steps.
    fn start_journal(&self, plan: &Plan, release: &LocalRelease) {
        let journal = Journal {
            change: self.change.clone(),
            env: self.env.name.clone(),
            kind: self.kind,
            release: release.manifest.id.clone(),
            sha256: release.manifest.sha256.clone(),
            operator: self.engine.operator.clone(),
            pid: std::process::id(),
            started: now_rfc3339(),
            strategy: plan.strategy.clone(),
            hosts: plan.hosts.iter().map(|h| h.name.clone()).collect(),
            batches: plan.batches.clone(),
            pauses: Journal::write_pauses(&plan.pauses),
            run_once_on: plan.run_once_on,
            host: String::new(),
            from: None,
            done: Vec::new(),
            updated: String::new(),
            pause: None,
            migration: None,
        };
        *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(journal);
        *self.froms.lock().unwrap_or_else(|p| p.into_inner()) =
            plan.hosts.iter().map(|h| h.from.clone()).collect();
    }

    /// A resumed change goes on with the journal and steps it left behind.
    pub(super) fn set_journal(&self, plan: &Plan, journal: Journal, done: Vec<Vec<Step>>) {
        if let Some(what) = &journal.migration {
            *self.migration.lock().unwrap_or_else(|p| p.into_inner()) = Some(what.clone());
        }
        *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(journal);
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = done;
        *self.froms.lock().unwrap_or_else(|p| p.into_inner()) =
            plan.hosts.iter().map(|h| h.from.clone()).collect();
    }

    /// Host `i`'s journal as it stands, ready to write in a host's script.
    pub(super) fn journal_script(&self, i: usize) -> String {
        let journal = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let Some(base) = journal.as_ref() else {
            return "true".to_owned();
        };
        let mut j = base.clone();
        j.host = self.fleet.hosts[i].host.name.clone();
        j.from = self.plan_from(i);
        j.done = self.done.lock().unwrap_or_else(|p| p.into_inner())[i].clone();
        j.updated = now_rfc3339();
        j.pause = self
            .pause_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        j.migration = self
            .migration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        host::journal_script(&self.layout(i), &j)
    }

    /// Write every journal of the change again (a pause began or ended, or
    /// its heartbeat); a host that cannot be written to is named.
    pub(super) fn write_journals(&self, hosts: &[usize]) {
        self.fleet.each(hosts, |i, h| self.write_journal(h, i));
    }

    fn plan_from(&self, i: usize) -> Option<ReleaseId> {
        self.froms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(i)
            .cloned()
            .flatten()
    }

    pub(super) fn live_slot(&self, i: usize) -> Option<crate::model::Slot> {
        self.live_slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(i)
            .copied()
            .flatten()
    }

    /// This host's journal as it will be once `step` is done: written in the
    /// same round trip as the step itself.
    pub(super) fn journal_script_with(&self, i: usize, step: Step) -> String {
        self.done.lock().unwrap_or_else(|p| p.into_inner())[i].push(step);
        let script = self.journal_script(i);
        self.done.lock().unwrap_or_else(|p| p.into_inner())[i].pop();
        script
    }

    /// Write one host's journal now (after a step that cannot carry it).
    pub(super) fn write_journal(&self, h: &HostHandle, i: usize) {
        if let Err(e) =
            h.with(|t| host::run_together(t, "writing the journal", &[self.journal_script(i)]))
        {
            self.engine.events.note(
                Some(i),
                format!("{}: cannot write the change's journal: {e}", h.host.name),
            );
        }
    }

    pub(super) fn touch_traffic(&self, i: usize) {
        self.traffic.lock().unwrap_or_else(|p| p.into_inner())[i] = true;
    }

    pub(super) fn traffic_touched(&self, i: usize) -> bool {
        self.traffic.lock().unwrap_or_else(|p| p.into_inner())[i]
    }

    /// Hook variables for a host's new release: in blue/green, with the slot
    /// it starts on.
    fn release_env(&self, i: usize, release: &ReleaseId, previous: Option<&ReleaseId>) -> HookEnv {
        match &self.env.strategy {
            Strategy::BlueGreen(_) => self.idle_slot_env(i, release, previous),
            _ => self.hook_env(i, release, previous),
        }
    }

    pub(super) fn journalled(&self) -> Vec<usize> {
        self.journalled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn has_done(&self, i: usize, step: Step) -> bool {
        self.done.lock().unwrap_or_else(|p| p.into_inner())[i].contains(&step)
    }

    fn mark_migration(&self, what: String) {
        let mut m = self.migration.lock().unwrap_or_else(|p| p.into_inner());
        if m.is_none() {
            self.engine.events.note(
                None,
                format!(
                    "{} carries a schema migration ({what})",
                    self.release
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                ),
            );
            *m = Some(what);
        }
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
            if self.has_done(i, *step) {
                self.skip(i, *step, "done before the change was interrupted");
                continue;
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
                    let env = self.release_env(i, id, hp.from.as_ref());
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
        h.with(|t| host::run_together(t, "writing the journal", &[self.journal_script(i)]))
    }

    /// Switch one host, restart, gate, hooks, record. A failure after the
    /// switch puts the host straight back on what it ran.
    fn publish(&self, h: &HostHandle, i: usize, hp: &HostPlan, release: &LocalRelease) -> Progress {
        let cfg = &self.engine.config;
        let id = &release.manifest.id;
        let sha = Some(release.manifest.sha256.as_str());
        let env = self.release_env(i, id, hp.from.as_ref());
        if self.cancel.is_cancelled() {
            return Progress::FailedUnchanged("cancelled".into());
        }
        // A resumed change does not redo what its journal says was done; each
        // step below writes the journal in (or right after) its round trip.
        let interrupted = "done before the change was interrupted";
        let after_switch = || -> Result<HealthVerdict, StepError> {
            let verdict = if let Strategy::BlueGreen(_) = &self.env.strategy {
                if self.has_done(i, Step::Switch) {
                    // Its gate passed before traffic moved.
                    self.skip(i, Step::Switch, interrupted);
                    if cfg.health.is_some() {
                        HealthVerdict::Passed
                    } else {
                        HealthVerdict::NotConfigured
                    }
                } else {
                    self.switch_slot(h, i, id, hp.from.as_ref(), self.live_slot(i))?
                }
            } else {
                if self.has_done(i, Step::Switch) {
                    self.skip(i, Step::Switch, interrupted);
                } else {
                    let scripts = [
                        host::switch_script(&self.layout(i), Some(id), &self.nonce(i)),
                        self.journal_script_with(i, Step::Switch),
                    ];
                    self.step(i, Step::Switch, || {
                        h.with(|t| host::run_together(t, "switching", &scripts))
                    })?;
                }
                if self.has_done(i, Step::Restart) {
                    self.skip(i, Step::Restart, interrupted);
                } else if cfg.hooks.restart.is_some() {
                    self.restart(h, i, &env)?;
                    self.write_journal(h, i);
                }
                self.health_gate(h, i, &env)?
            };
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
                let record = self.history_line(
                    h,
                    Line {
                        action,
                        release: Some(id),
                        sha256: sha,
                        from: hp.from.as_ref(),
                        outcome: Outcome::Success,
                        health: verdict,
                        message: None,
                    },
                );
                // The journal says Record once the line is written; both go
                // in one round trip, the journal last.
                let journal = self.journal_script_with(i, Step::Record);
                match self.step(i, Step::Record, || {
                    h.with(|t| {
                        host::run_together(
                            t,
                            "recording",
                            &[host::history_script(&self.layout(i), &record), journal],
                        )
                    })
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
                let out = host::run_command(
                    t,
                    &format!("{kind} hook `{hook}`"),
                    dir,
                    hook,
                    env,
                    timeout,
                )?;
                if let Some(what) = migration_mark(&out.stdout) {
                    self.mark_migration(format!("{kind} hook `{hook}`: {what}"));
                }
            }
            Ok(())
        })
    }

    /// `on_rollback` hooks on a host that went back, in the release it now
    /// runs. A failing hook is reported, and does not undo the rollback.
    fn on_rollback(&self, h: &HostHandle, i: usize, env: &HookEnv) -> Option<String> {
        let hooks = &self.engine.config.hooks.on_rollback;
        if hooks.is_empty() {
            return None;
        }
        let dir = self.layout(i).current();
        self.step(i, Step::OnRollback, || {
            self.run_hooks(h, "on_rollback", hooks, &dir, env)
        })
        .err()
        .map(|e| {
            let msg = format!("on_rollback failed: {e}");
            self.engine
                .events
                .note(Some(i), format!("{}: {msg}", h.host.name));
            msg
        })
    }

    /// Releases with a schema migration this rollback would go back across,
    /// over every host it switches.
    fn migrations_crossed(&self, plan: &Plan, states: &[HostState]) -> Vec<String> {
        let mut crossed: Vec<String> = Vec::new();
        for hp in plan.active() {
            let Some(target) = &hp.to else { continue };
            for (id, what) in migrations_crossed(&states[hp.host].history, target) {
                let s = format!("{id} ({what})");
                if !crossed.contains(&s) {
                    crossed.push(s);
                }
            }
        }
        crossed
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
            if let Strategy::BlueGreen(_) = &self.env.strategy {
                // The old slot never stopped: moving traffic back is enough.
                return self.switch_back(h, i, back, id);
            }
            h.with(|t| host::switch(t, &self.layout(i), back, &self.nonce(i)))?;
            if let Some(prev) = back {
                self.run_restart(h, i, &self.hook_env(i, prev, Some(id)))?;
            }
            Ok(())
        });
        let why = match (&r, back) {
            (Ok(()), Some(prev)) => match self.on_rollback(h, i, &self.hook_env(i, prev, Some(id)))
            {
                Some(failed) => format!("{why}; {failed}"),
                None => why,
            },
            _ => why,
        };
        if r.is_ok()
            && let (Some(prev), Some(what)) = (
                back,
                self.migration
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref(),
            )
        {
            self.engine.events.note(
                Some(i),
                format!(
                    "{}: back on {prev}, but the schema migration of {id} ({what}) stays applied: {prev} now runs on the migrated schema",
                    h.host.name
                ),
            );
        }
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
                // The failing host's log lines belong to its own line, not
                // to every host that merely waited.
                _ => format!("not switched: {}", why.lines().next().unwrap_or_default()),
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
        // A host that could not be put back keeps its lock and its journal:
        // the next operator must see what it is in the middle of.
        let (stuck_at, done): (Vec<usize>, Vec<usize>) =
            (0..self.fleet.len()).partition(|&i| matches!(progress[i], Progress::Stuck(_)));
        self.unlock(&done, true);
        let stuck: Vec<&str> = stuck_at
            .iter()
            .map(|&i| self.fleet.hosts[i].host.name.as_str())
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
                "{} {id} to {} stopped: {why}; COULD NOT PUT BACK {}: check them now; they stay locked with the change's journal, for `shipdeck rollback {env}` (or `resume`) to finish the job",
                self.kind.as_str(),
                self.env.name,
                stuck.join(", "),
                env = self.env.name
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

    fn rollback(&self, to: Option<&ReleaseId>, force: bool) -> Result<ChangeReport, EngineError> {
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
                self.unlock(&all, false);
                let msg = format!(
                    "rollback of {} refused, nothing was changed: {refusal}",
                    self.env.name
                );
                self.finish_event(ChangeOutcome::Failed, &msg);
                return Err(EngineError::Failed(msg));
            }
        };
        if let Some(interrupted) = states.iter().find_map(|s| s.journal.as_ref()) {
            self.engine.events.note(
                None,
                format!(
                    "undoing the interrupted change {} ({} {} by {}): its switched hosts go back to what they ran",
                    interrupted.change,
                    interrupted.kind.as_str(),
                    interrupted.release,
                    interrupted.operator
                ),
            );
        }
        let crossed = self.migrations_crossed(&plan, &states);
        if !crossed.is_empty() {
            if !force {
                self.unlock(&all, false);
                let msg = format!(
                    "rollback of {} refused, nothing was changed: it crosses the schema migration of {}; the release it goes back to may not run on the migrated schema\n  roll back anyway with `shipdeck rollback {} --force` (in the console: R again)",
                    self.env.name,
                    crossed.join(", "),
                    self.env.name
                );
                self.finish_event(ChangeOutcome::Failed, &msg);
                return Err(EngineError::Migration(msg));
            }
            self.engine.events.note(
                None,
                format!(
                    "rolling back across the schema migration of {} (--force)",
                    crossed.join(", ")
                ),
            );
        }
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
        self.unlock(&still_locked, true);
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
        let unlock = format!(
            "{}\n{}",
            host::clear_journal_script(&layout),
            self.unlock_script(i)
        );
        let switch = host::switch_script(&layout, Some(target), &self.nonce(i));
        let blue_green = matches!(self.env.strategy, Strategy::BlueGreen(_));
        if cfg.hooks.restart.is_none()
            && cfg.health.is_none()
            && cfg.hooks.on_rollback.is_empty()
            && !blue_green
        {
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
        let result = (|| -> Result<(HealthVerdict, Option<String>), StepError> {
            if blue_green {
                return self.roll_back_slot(h, i, hp.from.as_ref(), target, state);
            }
            self.step(i, Step::Switch, || {
                h.with(|t| host::switch(t, &layout, Some(target), &self.nonce(i)))
            })?;
            self.restart(h, i, &env)?;
            Ok((self.health_gate(h, i, &env)?, None))
        })();
        let message = match &result {
            Ok((_, said)) => {
                let failed = self.on_rollback(h, i, &env);
                match (said.clone(), failed) {
                    (Some(a), Some(b)) => Some(format!("{a}; {b}")),
                    (a, b) => a.or(b),
                }
            }
            Err(_) => None,
        };
        let result = result.map(|(v, _)| v);
        let (record, progress) = match result {
            Ok(v) => (line(Outcome::Success, v, message), Progress::Switched(v)),
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

    /// A report for a change without a plan of switches (finish).
    pub(super) fn plain_report(&self, outcome: ChangeOutcome, summary: String) -> ChangeReport {
        self.finish_event(outcome, &summary);
        ChangeReport {
            change: self.change.clone(),
            env: self.env.name.clone(),
            kind: self.kind,
            release: None,
            outcome,
            summary,
            duration_ms: self.started.elapsed().as_millis() as u64,
            hosts: Vec::new(),
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

impl Engine {
    /// What `deploy` would do, read without touching anything.
    pub fn plan(
        &self,
        env_name: &str,
        id: &ReleaseId,
    ) -> Result<(Plan, Option<EngineError>), EngineError> {
        let (env, _) = self.environment(env_name)?;
        let release = self
            .store
            .get(id)
            .map_err(|e| EngineError::Usage(e.to_string()))?;
        let states = self.read_hosts(env_name)?;
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
