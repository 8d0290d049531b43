//! Running a change: lock every host, plan, prepare every host, switch batch by
//! batch, and put every switched host back when the change fails.

mod finishing;
mod journal;
mod publishing;
mod reverting;
mod rolling_back;
mod starting;
mod updating;

pub(in crate::engine) use starting::Locked;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::events::{ChangeKind, ChangeOutcome, Event, Step, StepStatus};
use super::health;
use super::history::{
    migrations_crossed, passed_gate, previous_release, release_stack, releases_to_remove,
};
use super::journal::{Journal, PauseState, lock_is_dead};
use super::notify::{self, Notice};
use super::pause::PauseEnd;
use super::plan::{DeployInput, HostPlan, Plan, plan_deploy, plan_rollback_of};
use super::strategy::{Traffic, rollout};
use super::window;
use super::{Engine, EngineError, new_change_id, now_rfc3339};
use crate::config::Environment;
use crate::host::{self, HookEnv, HostState, Layout, LockAttempt, LockState, StepError};
pub use crate::model::time::human_duration;
use crate::model::{Action, HealthVerdict, HistoryRecord, LockOwner, Outcome, ReleaseId};
use crate::store::{LocalRelease, StoreError};
use crate::transport::{Fleet, HostHandle};

#[derive(Debug, Clone, serde::Serialize)]
pub struct HostReport {
    pub host: String,
    pub from: Option<ReleaseId>,
    pub to: Option<ReleaseId>,
    /// `switched`, `unchanged`, `reverted`, `failed`, `skipped`.
    pub result: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ChangeReport {
    pub change: String,
    pub env: String,
    /// `"action"` in JSON: the objects `--json` prints use `"kind"` for their own type.
    #[serde(rename = "action")]
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

impl Progress {
    /// Where every host of a plan starts: pending, or skipped by the plan.
    pub(super) fn planned(plan: &Plan) -> Vec<Progress> {
        plan.hosts
            .iter()
            .map(|h| {
                if h.skip.is_some() {
                    Progress::Skipped
                } else {
                    Progress::Pending
                }
            })
            .collect()
    }
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeOptions {
    /// `--override --reason R`: start outside the deploy window or in a
    /// freeze; the history records who did and why.
    pub override_reason: Option<String>,
    /// `rollback --force`: roll back across a schema migration.
    pub force: bool,
    /// `rollback --skip-unreachable`: roll back every host that answers;
    /// the others are named, and marked behind once they are back.
    pub skip_unreachable: bool,
    /// `--lock-wait`: how long to queue behind a running change's lock
    /// (default [`DEFAULT_LOCK_WAIT`]).
    pub lock_wait: Option<Duration>,
}

/// How long a change queues behind another running change's lock by default:
/// long enough for two operators pressing at once to go one after the other,
/// short enough that a held environment is reported while someone looks.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(5);

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
    /// How long to queue behind a running change's lock.
    lock_wait: Duration,
    /// Whether hosts that cannot be reached are left out (a rollback's
    /// `--skip-unreachable`) instead of stopping the change.
    pub(super) skip_unreachable: bool,
    /// The journal, once planned; each host's copy adds its own steps.
    journal: Mutex<Option<Journal>>,
    /// Where each host of the change stands, one record per host.
    hosts: Mutex<Vec<HostRun>>,
    /// What marked the release as carrying a schema migration.
    migration: Mutex<Option<String>>,
    /// The canary pause the change is in, as its journals say.
    pub(super) pause_state: Mutex<Option<PauseState>>,
    notices: Mutex<Vec<JoinHandle<()>>>,
}

/// Where one host of a running change stands. Every host's is kept behind
/// the one lock of [`Run::hosts`], so what the change knows of a host is
/// read and written in one place.
#[derive(Debug, Clone, Default)]
pub(super) struct HostRun {
    /// Steps the host finished in this change.
    done: Vec<Step>,
    /// The blue/green slot that took traffic when this change began here:
    /// what its idle slot is, and where going back goes.
    live_slot: Option<crate::model::Slot>,
    /// This change ran (or began to run) the host's blue/green `switch`.
    traffic: bool,
    /// What the host ran before the change, and what the change takes it
    /// to, once planned.
    from: Option<ReleaseId>,
    to: Option<ReleaseId>,
    /// The host keeps a journal of this change (the change changes it).
    journalled: bool,
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
        // The tarball is checked against its manifest before any host is
        // reached: a changed one is refused with nothing locked.
        let release = self.store.get_verified(id).map_err(|e| match e {
            StoreError::Changed { .. } => EngineError::Failed(e.to_string()),
            e => EngineError::Usage(e.to_string()),
        })?;
        let override_note = self.check_window(env, opts)?;
        if let Some(required) = &env.requires {
            self.check_promotion_gate(&release, required)?;
        }
        let mut run = Run::new(self, env, fleet, kind, Some(id.clone()));
        run.override_note = override_note;
        run.set_options(opts);
        run.deploy(&release)
    }

    pub fn rollback(
        &self,
        env_name: &str,
        to: Option<&ReleaseId>,
        force: bool,
    ) -> Result<ChangeReport, EngineError> {
        let opts = ChangeOptions {
            force,
            ..ChangeOptions::default()
        };
        self.rollback_with(env_name, to, &opts)
    }

    pub fn rollback_with(
        &self,
        env_name: &str,
        to: Option<&ReleaseId>,
        opts: &ChangeOptions,
    ) -> Result<ChangeReport, EngineError> {
        let (env, fleet) = self.environment(env_name)?;
        let mut run = Run::new(self, env, fleet, ChangeKind::Rollback, to.cloned());
        run.allow_take_over();
        run.set_options(opts);
        run.rollback(to, opts.force)
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
            lock_wait: DEFAULT_LOCK_WAIT,
            skip_unreachable: false,
            journal: Mutex::new(None),
            hosts: Mutex::new(vec![HostRun::default(); fleet.len()]),
            migration: Mutex::new(None),
            pause_state: Mutex::new(None),
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

    /// What the operator said with the command that bears on every change.
    pub(in crate::engine) fn set_options(&mut self, opts: &ChangeOptions) {
        self.lock_wait = opts.lock_wait.unwrap_or(DEFAULT_LOCK_WAIT);
        self.skip_unreachable = opts.skip_unreachable;
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
        self.step_judged(i, step, f, |_| None)
    }

    /// As [`step`](Self::step), where an answer may still be a failure to
    /// report (a lock held by someone else is an answer, not an error).
    pub(super) fn step_judged<R>(
        &self,
        i: usize,
        step: Step,
        f: impl FnOnce() -> Result<R, StepError>,
        failed: impl FnOnce(&R) -> Option<String>,
    ) -> Result<R, StepError> {
        let events = &self.engine.events;
        events.step(i, step, StepStatus::Started);
        let t = Instant::now();
        let r = f();
        let error = match &r {
            Ok(answer) => failed(answer),
            Err(e) => Some(e.to_string()),
        };
        if error.is_none() {
            self.host(i, |h| h.done.push(step));
        }
        events.step(
            i,
            step,
            match error {
                None => StepStatus::Done {
                    elapsed: t.elapsed(),
                    detail: None,
                },
                Some(error) => StepStatus::Failed {
                    elapsed: t.elapsed(),
                    error,
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
        let progress = Progress::planned(&plan);
        self.start_journal(&plan, id, sha);
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
    /// here with the progress its journals recorded. The phases are
    /// Capistrano's: updating, publishing, finishing.
    pub(super) fn execute(
        &self,
        plan: &Plan,
        mut progress: Vec<Progress>,
        release: &LocalRelease,
        first_batch: usize,
    ) -> Result<ChangeReport, EngineError> {
        self.set_journalled(&plan.active().map(|h| h.host).collect::<Vec<_>>());
        if let Some((outcome, why)) = self.update_hosts(plan, &mut progress, release) {
            return Ok(self.abort(plan, progress, release, outcome, why));
        }
        match self.publish_batches(plan, &mut progress, release, first_batch) {
            Ok(failures) => Ok(self.finish_deploy(plan, &progress, release, failures)),
            Err((outcome, why)) => Ok(self.abort(plan, progress, release, outcome, why)),
        }
    }

    /// Hook variables for a host's new release: in blue/green, with the slot
    /// it starts on.
    fn release_env(&self, i: usize, release: &ReleaseId, previous: Option<&ReleaseId>) -> HookEnv {
        match self.traffic() {
            Traffic::Slots => self.idle_slot_env(i, release, previous),
            Traffic::Symlink => self.hook_env(i, release, previous),
        }
    }

    /// How this change's strategy moves a host's traffic.
    pub(in crate::engine) fn traffic(&self) -> Traffic {
        rollout(&self.env.strategy).traffic()
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
