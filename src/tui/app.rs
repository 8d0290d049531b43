//! The one owner of the console's state: `update` is the only thing that
//! changes it, views only read it, and what must happen outside (start a
//! change, cancel it, quit) comes back as `Effect`s for the runtime to do.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent};

use super::keymap::{self, Action};
use crate::config::Config;
use crate::engine::bluegreen::PendingFinish;
use crate::engine::canary::{CanaryStep, Verdict};
use crate::engine::journal::{ChangeInfo, Liveness, PauseState};
use crate::engine::{
    ChangeKind, ChangeOptions, ChangeOutcome, ChangeReport, Command, Control, EngineError, Event,
    Step, StepStatus,
};
use crate::model::{ReleaseId, Strategy};
use crate::monitor::{HostKey, MonitorEvent, MonitorState};
use crate::store::Manifest;

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    /// The terminal's size: at start and whenever it changes.
    Resize(u16, u16),
    Engine(Event),
    Monitor(MonitorEvent),
    /// The local release store, read again.
    Releases(Vec<Manifest>),
    /// A change's thread ended.
    ChangeDone(Result<ChangeReport, ChangeError>),
    /// What leaving a word for a change paused elsewhere did.
    Told(Result<String, String>),
    /// Time moved on (only sent while a change runs or `R` is armed, for
    /// their clocks).
    Tick,
}

/// Why a change's thread gave up, as far as the console must tell apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeError {
    /// A rollback across a release that carries a schema migration, refused
    /// without force: `R` a second time forces it.
    Migration(String),
    /// Outside the deploy window or in a freeze: `O` overrides, with a reason.
    Window(String),
    /// Anything else; the text says what.
    Other(String),
}

impl From<&EngineError> for ChangeError {
    fn from(e: &EngineError) -> Self {
        match e {
            EngineError::Migration(msg) => ChangeError::Migration(msg.clone()),
            EngineError::Window(msg) => ChangeError::Window(msg.clone()),
            other => ChangeError::Other(other.to_string()),
        }
    }
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::Migration(msg) | ChangeError::Window(msg) | ChangeError::Other(msg) => {
                f.write_str(msg)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// A command for the engine, the same the headless CLI sends: `d`, `p`,
    /// `R` (with `force` across a migration, the second `R`), `r`, `F` or a
    /// `finish_after` falling due, and `n`/`P`/`R` for a change paused by
    /// another process or machine. `override_reason` (`O`) starts it outside
    /// the deploy window.
    Run(Command, ChangeOptions),
    /// A word for the change of this console paused after `batch` (`n`,
    /// `P`, `R`).
    Control {
        batch: usize,
        word: Control,
    },
    Cancel,
    Quit,
}

impl Effect {
    /// `R`: the environment back to its previous release; `force` across a
    /// schema migration.
    pub fn rollback(env: impl Into<String>, force: bool) -> Effect {
        Effect::Run(
            Command::Rollback {
                env: env.into(),
                to: None,
            },
            ChangeOptions {
                force,
                ..ChangeOptions::default()
            },
        )
    }
}

/// How long a refused rollback waits for the second `R` that forces it.
pub const FORCE_WINDOW: Duration = Duration::from_secs(10);

/// A change the deploy window refused: `O` asks for a reason and starts it
/// anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The refused change, to ask for again with the reason.
    pub effect: Effect,
    pub message: String,
}

/// A rollback refused because it crosses a schema migration: `R` again on
/// the same environment before `until` forces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Armed {
    pub env: String,
    pub message: String,
    pub until: SystemTime,
}

/// A canary pause, as the engine's `Paused` events tell it.
#[derive(Debug, Clone)]
pub struct PauseView {
    /// The batch just moved, from 0, of `of`.
    pub batch: usize,
    pub of: usize,
    /// Hosts on the new release, by index.
    pub canary: Vec<usize>,
    /// When the next step starts by itself; `None`: it waits for the operator.
    pub until: Option<SystemTime>,
    /// Why the analysis could not decide.
    pub why: Option<String>,
    /// What this console already told the change during this pause: one
    /// word per pause, so a second `n` cannot carry over into the next one.
    pub sent: Option<Control>,
}

/// The latest canary analysis of a change.
#[derive(Debug, Clone)]
pub struct AnalysisView {
    pub verdict: Verdict,
    /// On a breach: the last log lines of the host that breached.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Environments,
    Releases,
    Logs,
}

const PANES: [Pane; 3] = [Pane::Environments, Pane::Releases, Pane::Logs];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Output,
    /// `q` while a change runs: asks before cancelling it.
    ConfirmQuit,
    /// `c` while a change runs: `y` cancels it, any other key leaves it.
    ConfirmCancel,
    /// Typing a log filter.
    Filter(String),
    /// Typing the reason for overriding the deploy window.
    Reason(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Good,
    Bad,
}

#[derive(Debug, Clone)]
pub struct HostProgress {
    pub name: String,
    pub step: Option<Step>,
    pub state: StepState,
    pub steps_done: usize,
    /// Steps the plan gives this host (connect and lock before, unlock after).
    pub steps_total: usize,
    pub error: Option<String>,
    /// A step failed; stays set while the host is put back.
    pub failed: bool,
    /// The host was put back on what it ran.
    pub reverted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Waiting,
    Running,
    Done,
    Skipped,
    Failed,
}

/// The change in flight, or the last one, as the engine's events told it.
#[derive(Debug, Clone)]
pub struct ChangeView {
    /// The engine's change id.
    pub id: String,
    pub env: String,
    pub kind: ChangeKind,
    pub release: Option<ReleaseId>,
    pub started: SystemTime,
    pub hosts: Vec<HostProgress>,
    pub batch: Option<(usize, usize)>,
    pub notes: Vec<String>,
    /// While the canary waits between steps.
    pub pause: Option<PauseView>,
    /// Kept after the change ends, so a breach stays on screen.
    pub analysis: Option<AnalysisView>,
    /// A rollback refused because it crosses a schema migration.
    pub refused: Option<String>,
    /// A canary pause ended in an abort: its hosts are going back.
    pub aborting: bool,
    pub finished: Option<(ChangeOutcome, String, SystemTime)>,
}

impl ChangeView {
    pub fn running(&self) -> bool {
        self.finished.is_none()
    }

    /// The pause of a change still running.
    pub fn paused(&self) -> Option<&PauseView> {
        self.pause.as_ref().filter(|_| self.running())
    }

    /// The change as questions and messages name it: `promote v2 → production`.
    pub fn label(&self) -> String {
        match &self.release {
            Some(r) => format!("{} {r} → {}", self.kind.as_str(), self.env),
            None => format!("{} {}", self.kind.as_str(), self.env),
        }
    }

    /// Host names of `indices`, in order.
    pub fn names(&self, indices: &[usize]) -> Vec<&str> {
        indices
            .iter()
            .filter_map(|&i| self.hosts.get(i).map(|h| h.name.as_str()))
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct EnvRow {
    pub name: String,
    pub strategy: String,
    pub requires: Option<String>,
    pub hosts: Vec<String>,
}

/// A strategy as the environment list shows it: short, with a canary's steps.
pub fn strategy_label(strategy: &Strategy) -> String {
    match strategy {
        Strategy::AllAtOnce => "all at once".to_owned(),
        Strategy::Rolling {
            batch,
            max_failures: 0,
        } => format!("rolling, {batch} at a time"),
        Strategy::Rolling {
            batch,
            max_failures,
        } => format!("rolling, {batch} at a time, tolerates {max_failures}"),
        Strategy::Canary { steps, .. } => {
            let moves: Vec<String> = steps
                .iter()
                .filter_map(|s| match s {
                    CanaryStep::Move(n) => Some(n.to_string()),
                    CanaryStep::Pause(_) => None,
                })
                .collect();
            format!("canary {}", moves.join(" → "))
        }
        Strategy::BlueGreen(_) => "blue/green".to_owned(),
    }
}

/// A key typed into a line being edited (the log filter, a reason).
fn type_into(text: &mut String, code: KeyCode) {
    match code {
        KeyCode::Backspace => {
            text.pop();
        }
        KeyCode::Char(c) => text.push(c),
        _ => {}
    }
}

/// An RFC 3339 time, as the hosts write them.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    crate::model::time::parse_rfc3339(s)
}

/// How a host is named on screen: a `local:` host by its folder's name, an
/// SSH host as written in the config.
fn display_name(h: &crate::model::Host) -> String {
    match &h.target {
        crate::model::Target::Local { dir } => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| h.name.clone()),
        crate::model::Target::Ssh(_) => h.name.clone(),
    }
}

pub struct App {
    pub config: Arc<Config>,
    pub readonly: bool,
    pub envs: Vec<EnvRow>,
    pub monitor: MonitorState,
    pub releases: Vec<Manifest>,
    pub env_cursor: usize,
    /// Into `envs[env_cursor].hosts`.
    pub host_cursor: usize,
    pub release_cursor: usize,
    pub focus: Pane,
    pub overlay: Overlay,
    pub change: Option<ChangeView>,
    pub follow_logs: bool,
    /// While paused: only lines older than this arrival number are shown, so
    /// the view holds still while lines keep coming.
    pub log_anchor: Option<u64>,
    /// Lines scrolled back from the anchor (or from the newest).
    pub log_scroll: usize,
    pub one_host_logs: bool,
    pub log_filter: Option<String>,
    pub status: Option<(String, Tone)>,
    /// A rollback refused for a schema migration, waiting for the second `R`.
    pub armed: Option<Armed>,
    /// The environment of the rollback this console started last, until its
    /// thread ends.
    pub rollback_env: Option<String>,
    /// The change this console asked for last, until its thread ends: what
    /// an override would ask for again.
    pub requested: Option<Effect>,
    /// A change the deploy window refused, until another key is used.
    pub offer: Option<Offer>,
    /// Finishes this console asked for, by change id: a due `finish_after`
    /// is asked for once.
    pub finishing: Vec<String>,
    /// The word this console left for a pause elsewhere: (change, batch).
    pub told: Option<(String, usize)>,
    pub quitting: bool,
    /// Until the operator presses a key, a change starts, or every host has
    /// been read once: the selection follows the environment changed last.
    pub select_latest: bool,
    /// The terminal's size, once the runtime told it (tests draw any size).
    pub screen: Option<(u16, u16)>,
    /// The clock views read; set by the runtime, fixed by tests.
    pub now: SystemTime,
}

impl App {
    pub fn new(config: Arc<Config>, readonly: bool) -> Self {
        let envs: Vec<EnvRow> = config
            .environments
            .iter()
            .map(|e| EnvRow {
                name: e.name.clone(),
                strategy: strategy_label(&e.strategy),
                requires: e.requires.clone(),
                hosts: e.hosts.iter().map(display_name).collect(),
            })
            .collect();
        // Until the hosts say which was changed last: the last environment
        // (usually production), what an on-call engineer looks at first.
        let last = envs.len().saturating_sub(1);
        App {
            monitor: MonitorState::new(&config),
            config,
            readonly,
            envs,
            releases: Vec::new(),
            env_cursor: last,
            host_cursor: 0,
            release_cursor: 0,
            focus: Pane::Environments,
            overlay: Overlay::None,
            change: None,
            follow_logs: true,
            log_anchor: None,
            log_scroll: 0,
            one_host_logs: false,
            log_filter: None,
            status: None,
            armed: None,
            rollback_env: None,
            requested: None,
            offer: None,
            finishing: Vec::new(),
            told: None,
            quitting: false,
            select_latest: true,
            screen: None,
            now: SystemTime::now(),
        }
    }

    pub fn selected_env(&self) -> &EnvRow {
        &self.envs[self.env_cursor]
    }

    pub fn selected_host(&self) -> HostKey {
        HostKey {
            env: self.env_cursor,
            host: self.host_cursor,
        }
    }

    pub fn selected_release(&self) -> Option<&Manifest> {
        self.releases.get(self.release_cursor)
    }

    pub fn change_running(&self) -> bool {
        self.change.as_ref().is_some_and(ChangeView::running)
    }

    /// The change of this console still running.
    pub fn running_change(&self) -> Option<&ChangeView> {
        self.change.as_ref().filter(|c| c.running())
    }

    /// The pause of this console's running change, if it is paused.
    pub fn paused(&self) -> Option<&PauseView> {
        self.change.as_ref().and_then(ChangeView::paused)
    }

    /// The pause of this console's change, when its environment is the
    /// selected one: only then do `n`, `P` and `R` steer it.
    pub fn paused_here(&self) -> Option<&PauseView> {
        self.change
            .as_ref()
            .filter(|c| c.env == self.selected_env().name)
            .and_then(ChangeView::paused)
    }

    /// The environment the hosts say was changed last (their newest history
    /// record or journal); on a tie the later one; none: the last one.
    pub fn latest_env(&self) -> usize {
        let mut latest: Option<(SystemTime, usize)> = None;
        for (env, row) in self.envs.iter().enumerate() {
            for host in 0..row.hosts.len() {
                let Some(v) = self
                    .monitor
                    .host(HostKey { env, host })
                    .and_then(|h| h.view.as_ref())
                else {
                    continue;
                };
                let journal = v.change.iter().map(|c| c.updated.as_str());
                let times = v.history.iter().map(|r| r.time.as_str()).chain(journal);
                for t in times.filter_map(parse_time) {
                    if latest.is_none_or(|(l, _)| t >= l) {
                        latest = Some((t, env));
                    }
                }
            }
        }
        latest.map_or(self.envs.len().saturating_sub(1), |(_, e)| e)
    }

    /// What `R` would do now, as the footer names it: the selected
    /// environment and what its hosts go back to; `None` while a change runs
    /// (`R` is refused then).
    pub fn rollback_hint(&self) -> Option<String> {
        if self.change_running() {
            return None;
        }
        let env = &self.selected_env().name;
        let mut to: Vec<String> = self
            .rollback_preview(self.env_cursor)
            .into_iter()
            .filter_map(|(_, _, prev)| prev.map(|p| p.to_string()))
            .collect();
        to.sort();
        to.dedup();
        Some(if to.is_empty() {
            format!("roll back {env}")
        } else {
            format!("roll back {env} → {}", to.join(","))
        })
    }

    /// What `c` would cancel, as the footer names it: the environment too
    /// when it is not the selected one.
    pub fn cancel_hint(&self) -> Option<String> {
        let c = self.running_change()?;
        Some(if c.env == self.selected_env().name {
            "cancel".to_owned()
        } else {
            format!("cancel {}", c.env)
        })
    }

    /// The change a host of environment `env` carries that is not this
    /// console's: an interrupted one first, then one on another machine, then
    /// one of another process here.
    pub fn foreign_change(&self, env: usize) -> Option<&ChangeInfo> {
        let ours = self.change.as_ref().map(|c| c.id.as_str());
        let infos: Vec<&ChangeInfo> = self
            .host_changes(env)
            .filter(|c| Some(c.change.as_str()) != ours)
            .collect();
        [
            Liveness::Interrupted,
            Liveness::Elsewhere,
            Liveness::Running,
        ]
        .into_iter()
        .find_map(|l| infos.iter().copied().find(|c| c.liveness == l))
    }

    /// Where the change another process runs on `env` is paused, by the
    /// newest pause any of its hosts' journals records.
    pub fn foreign_pause(&self, env: usize) -> Option<(&ChangeInfo, &PauseState)> {
        let c = self.foreign_change(env)?;
        if c.liveness == Liveness::Interrupted {
            return None;
        }
        let pause = self
            .host_changes(env)
            .filter(|o| o.change == c.change)
            .filter_map(|o| o.pause.as_ref())
            .max_by_key(|p| p.batch)?;
        Some((c, pause))
    }

    /// What the journals on the hosts of `env` say of a change, host by host.
    fn host_changes(&self, env: usize) -> impl Iterator<Item = &ChangeInfo> {
        (0..self.envs[env].hosts.len())
            .filter_map(move |host| self.monitor.host(HostKey { env, host }))
            .filter_map(|h| h.view.as_ref()?.change.as_deref())
    }

    /// The old slots a blue/green environment still runs, by host.
    pub fn unfinished(&self, env: usize) -> Vec<(usize, &PendingFinish)> {
        (0..self.envs[env].hosts.len())
            .filter_map(|host| {
                let v = self.monitor.host(HostKey { env, host })?.view.as_ref()?;
                Some((host, v.pending_finish.as_deref()?))
            })
            .collect()
    }

    /// What the key bindings hold for now.
    pub fn moment(&self) -> keymap::Moment {
        let env = self.env_cursor;
        keymap::Moment {
            paused: self.paused_here().is_some()
                || (!self.change_running() && self.foreign_pause(env).is_some()),
            interrupted: self
                .foreign_change(env)
                .is_some_and(|c| c.liveness == Liveness::Interrupted),
            unfinished: !self.unfinished(env).is_empty(),
            offered: self.offer.is_some(),
            running: self.change_running(),
        }
    }

    /// The terminal is too small for the console: it shows one line, and
    /// keys that change hosts do nothing (what they would do is not on screen).
    pub fn too_small(&self) -> bool {
        self.screen.is_some_and(|(w, h)| !super::view::fits(w, h))
    }

    /// The armed second `R`, unless its time ran out.
    pub fn armed(&self) -> Option<&Armed> {
        self.armed.as_ref().filter(|a| self.now < a.until)
    }

    /// Something on screen counts seconds, or a blue/green `finish_after`
    /// falls due: the runtime sends `Tick`s.
    pub fn needs_clock(&self) -> bool {
        self.change_running() || self.armed.is_some() || self.next_finish().is_some()
    }

    /// The first blue/green change whose `finish_after` this console will
    /// finish when it falls due: (environment, change, when).
    pub fn next_finish(&self) -> Option<(usize, &PendingFinish, SystemTime)> {
        if self.readonly {
            return None;
        }
        (0..self.envs.len())
            .flat_map(|e| self.unfinished(e).into_iter().map(move |(_, p)| (e, p)))
            .filter(|(_, p)| !self.finishing.contains(&p.change))
            .filter_map(|(e, p)| Some((e, p, parse_time(p.finish_at.as_deref()?)?)))
            .min_by_key(|(_, _, at)| *at)
    }

    fn say(&mut self, text: impl Into<String>, tone: Tone) {
        self.status = Some((text.into(), tone));
    }

    /// What a rollback of `env` would do, host by host, from what the hosts say.
    pub fn rollback_preview(
        &self,
        env: usize,
    ) -> Vec<(String, Option<ReleaseId>, Option<ReleaseId>)> {
        self.envs[env]
            .hosts
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let view = self
                    .monitor
                    .host(HostKey { env, host: i })
                    .and_then(|h| h.view.as_ref());
                (
                    name.clone(),
                    view.and_then(|v| v.current.clone()),
                    view.and_then(|v| v.previous.clone()),
                )
            })
            .collect()
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => self.key(key),
            Msg::Resize(width, height) => {
                self.screen = Some((width, height));
                Vec::new()
            }
            Msg::Tick => {
                if let Some(a) = self.armed.take_if(|a| self.now >= a.until) {
                    self.say(
                        format!(
                            "{} (not rolled back; R twice within {}s rolls back anyway)",
                            a.message,
                            FORCE_WINDOW.as_secs()
                        ),
                        Tone::Bad,
                    );
                }
                self.finish_when_due()
            }
            Msg::Told(result) => {
                match result {
                    Ok(said) => self.say(said, Tone::Info),
                    Err(e) => {
                        self.told = None;
                        self.say(e, Tone::Bad);
                    }
                }
                Vec::new()
            }
            Msg::Monitor(ev) => {
                let state = matches!(ev, MonitorEvent::State { .. });
                self.monitor.apply(ev);
                if state && self.select_latest {
                    self.select_env(self.latest_env());
                    // Every host read once: the selection settles there.
                    let read = |(env, row): (usize, &EnvRow)| {
                        (0..row.hosts.len()).all(|host| {
                            self.monitor
                                .host(HostKey { env, host })
                                .is_some_and(|h| h.view.is_some())
                        })
                    };
                    if self.envs.iter().enumerate().all(read) {
                        self.select_latest = false;
                    }
                }
                Vec::new()
            }
            Msg::Releases(list) => {
                let first = self.releases.is_empty();
                self.releases = list;
                if first || self.release_cursor >= self.releases.len() {
                    self.release_cursor = self.releases.len().saturating_sub(1);
                }
                Vec::new()
            }
            Msg::Engine(ev) => {
                self.engine_event(ev);
                Vec::new()
            }
            Msg::ChangeDone(result) => {
                let rollback_env = self.rollback_env.take();
                let requested = self.requested.take();
                match result {
                    Ok(report) => {
                        let tone = match report.outcome {
                            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo => Tone::Good,
                            _ => Tone::Bad,
                        };
                        self.say(report.summary.clone(), tone);
                    }
                    Err(ChangeError::Migration(msg)) => {
                        if let Some(c) = self
                            .change
                            .as_mut()
                            .filter(|c| c.kind == ChangeKind::Rollback)
                        {
                            if c.running() {
                                c.finished = Some((ChangeOutcome::Failed, msg.clone(), self.now));
                            }
                            c.refused = Some(msg.clone());
                        }
                        self.say(msg.clone(), Tone::Bad);
                        if let Some(env) = rollback_env {
                            self.armed = Some(Armed {
                                env,
                                message: msg,
                                until: self.now + FORCE_WINDOW,
                            });
                        }
                    }
                    Err(ChangeError::Window(msg)) => {
                        // While `O` is offered the status shows the refusal
                        // with the key; this stays once the offer is gone.
                        self.say(msg.lines().next().unwrap_or_default(), Tone::Bad);
                        if let Some(effect) = requested {
                            self.offer = Some(Offer {
                                effect,
                                message: msg,
                            });
                        }
                    }
                    Err(ChangeError::Other(e)) => {
                        if let Some(c) = self.change.as_mut().filter(|c| c.running()) {
                            c.finished = Some((ChangeOutcome::Failed, e.clone(), self.now));
                        }
                        self.say(e, Tone::Bad);
                    }
                }
                if self.quitting {
                    return vec![Effect::Quit];
                }
                Vec::new()
            }
        }
    }

    fn engine_event(&mut self, ev: Event) {
        match ev {
            Event::ChangeStarted {
                change,
                env,
                kind,
                release,
                hosts,
            } => {
                self.select_latest = false;
                let names = self
                    .envs
                    .iter()
                    .find(|e| e.name == env)
                    .map(|e| e.hosts.clone())
                    .unwrap_or(hosts);
                self.change = Some(ChangeView {
                    id: change,
                    env,
                    kind,
                    release,
                    started: self.now,
                    hosts: names
                        .into_iter()
                        .map(|name| HostProgress {
                            name,
                            step: None,
                            state: StepState::Waiting,
                            steps_done: 0,
                            steps_total: 3,
                            error: None,
                            failed: false,
                            reverted: false,
                        })
                        .collect(),
                    batch: None,
                    notes: Vec::new(),
                    pause: None,
                    analysis: None,
                    refused: None,
                    aborting: false,
                    finished: None,
                });
            }
            Event::Planned(plan) => {
                if let Some(c) = &mut self.change {
                    if c.release.is_none() {
                        c.release = plan.release.clone();
                    }
                    for (h, hp) in c.hosts.iter_mut().zip(&plan.hosts) {
                        h.steps_total = 3 + hp.prepare.len() + hp.publish.len();
                        if let Some(why) = &hp.skip {
                            h.state = StepState::Skipped;
                            h.error = Some(why.clone());
                        }
                    }
                }
            }
            Event::BatchStarted { index, of, .. } => {
                if let Some(c) = &mut self.change {
                    c.batch = Some((index + 1, of));
                }
            }
            Event::HostStep { host, step, status } => {
                let Some(h) = self.change.as_mut().and_then(|c| c.hosts.get_mut(host)) else {
                    return;
                };
                h.step = Some(step);
                match status {
                    StepStatus::Started if !h.failed => h.state = StepState::Running,
                    StepStatus::Started => {}
                    StepStatus::Done { .. } => {
                        h.state = if h.failed {
                            StepState::Failed
                        } else {
                            StepState::Done
                        };
                        h.steps_done += 1;
                        if step == Step::Revert {
                            h.reverted = true;
                        }
                    }
                    StepStatus::Skipped { .. } => {}
                    StepStatus::Failed { error, .. } => {
                        h.state = StepState::Failed;
                        h.failed = true;
                        h.error = Some(error);
                    }
                }
            }
            Event::Note { message, .. } => {
                if let Some(c) = &mut self.change {
                    c.notes.push(message);
                }
            }
            Event::Paused {
                batch,
                of,
                canary,
                wait,
                why,
            } => {
                let Some(c) = &mut self.change else { return };
                // Sent again within one pause (a timed pause the analysis
                // could not decide now waits for the operator): what this
                // console said still stands. A new pause starts afresh.
                let same = c.pause.as_ref().filter(|p| p.batch == batch);
                let sent = same.and_then(|p| p.sent);
                if same.is_none() {
                    c.analysis = None;
                }
                c.pause = Some(PauseView {
                    batch,
                    of,
                    canary,
                    until: wait.map(|w| self.now + w),
                    why,
                    sent,
                });
            }
            Event::Analysis { verdict, lines } => {
                if let Some(c) = &mut self.change {
                    // A breach ends the pause: the canary is being put back.
                    if matches!(verdict, Verdict::Breach { .. }) {
                        c.pause = None;
                    }
                    c.analysis = Some(AnalysisView { verdict, lines });
                }
            }
            Event::Continued { by, control } => {
                if let Some(c) = &mut self.change
                    && let Some(p) = c.pause.take()
                {
                    let how = match control {
                        Control::Next => "continued",
                        Control::Promote => "continued through every remaining step",
                        Control::Abort => "ABORTED: the canary hosts go back",
                    };
                    c.notes
                        .push(format!("step {} of {}: {how} by {by}", p.batch + 1, p.of));
                    c.aborting = control == Control::Abort;
                }
            }
            Event::ChangeFinished {
                outcome, summary, ..
            } => {
                if let Some(c) = &mut self.change {
                    c.pause = None;
                    c.finished = Some((outcome, summary, self.now));
                }
            }
        }
    }

    /// Select environment `env`, on its first host.
    pub fn select_env(&mut self, env: usize) {
        if env < self.envs.len() && env != self.env_cursor {
            self.env_cursor = env;
            self.host_cursor = 0;
        }
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        // The operator is here: the selection is theirs from now on.
        self.select_latest = false;
        // Any key but the second `R` disarms a forced rollback.
        let armed = self.armed.take().filter(|a| self.now < a.until);
        match &mut self.overlay {
            Overlay::Filter(text) => {
                match key.code {
                    KeyCode::Enter => {
                        let t = std::mem::take(text);
                        self.log_filter = (!t.is_empty()).then_some(t);
                        self.overlay = Overlay::None;
                    }
                    KeyCode::Esc => {
                        self.log_filter = None;
                        self.overlay = Overlay::None;
                    }
                    code => type_into(text, code),
                }
                return Vec::new();
            }
            Overlay::Reason(text) => {
                match key.code {
                    KeyCode::Enter if !text.trim().is_empty() => {
                        let reason = text.trim().to_owned();
                        self.overlay = Overlay::None;
                        return self.override_with(reason);
                    }
                    KeyCode::Enter => {}
                    KeyCode::Esc => {
                        self.overlay = Overlay::None;
                        self.offer = None;
                        self.say("not overridden; nothing was changed", Tone::Info);
                    }
                    code => type_into(text, code),
                }
                return Vec::new();
            }
            Overlay::ConfirmQuit => {
                self.overlay = Overlay::None;
                let yes = matches!(key.code, KeyCode::Char('q') | KeyCode::Char('y'));
                if yes && !self.change_running() {
                    // It ended while the question was open.
                    return vec![Effect::Quit];
                }
                if yes {
                    self.quitting = true;
                    self.say(
                        "cancelling the change before quitting: switched hosts go back…",
                        Tone::Bad,
                    );
                    return vec![Effect::Cancel];
                }
                self.say("still here; the change goes on", Tone::Info);
                return Vec::new();
            }
            Overlay::ConfirmCancel => {
                self.overlay = Overlay::None;
                let Some(what) = self.running_change().map(ChangeView::label) else {
                    self.say("the change already ended: nothing to cancel", Tone::Info);
                    return Vec::new();
                };
                if key.code == KeyCode::Char('y') {
                    self.say(
                        format!("CANCELLING {what}: it stops after the current step and switched hosts go back"),
                        Tone::Bad,
                    );
                    return vec![Effect::Cancel];
                }
                self.say(format!("not cancelled: {what} goes on"), Tone::Info);
                return Vec::new();
            }
            Overlay::Help | Overlay::Output => {
                // Any key closes an overlay; only `q` also acts.
                self.overlay = Overlay::None;
                if key.code != KeyCode::Char('q') {
                    return Vec::new();
                }
            }
            Overlay::None => {}
        }
        let Some(action) = keymap::action_for(&key, self.moment()) else {
            return Vec::new();
        };
        if self.readonly && keymap::binding(action).changes_hosts {
            self.say(
                "read-only console: nothing can be changed from here",
                Tone::Info,
            );
            return Vec::new();
        }
        // What a key would change cannot be read on a terminal this small.
        if self.too_small() && keymap::binding(action).changes_hosts {
            return Vec::new();
        }
        if action == Action::Rollback {
            return self.rollback(armed);
        }
        self.act(action)
    }

    fn act(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Up | Action::Down => {
                self.move_cursor(if action == Action::Up { -1 } else { 1 });
                Vec::new()
            }
            Action::NextPane | Action::PrevPane => {
                let i = PANES.iter().position(|p| *p == self.focus).unwrap_or(0);
                let n = PANES.len();
                let next = if action == Action::NextPane {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.focus = PANES[next];
                Vec::new()
            }
            Action::Deploy | Action::Promote => self.ship(action == Action::Promote),
            Action::Rollback => self.rollback(None),
            Action::NextStep => self.control(Control::Next),
            Action::PromoteAll => self.control(Control::Promote),
            Action::AbortCanary => self.control(Control::Abort),
            Action::Resume => self.resume(),
            Action::Finish => self.finish(),
            Action::Override => {
                self.overlay = Overlay::Reason(String::new());
                Vec::new()
            }
            Action::Cancel => {
                if self.change_running() {
                    self.overlay = Overlay::ConfirmCancel;
                }
                Vec::new()
            }
            Action::Back => {
                if self.offer.take().is_some() {
                    self.say("not overridden; nothing was changed", Tone::Info);
                } else if self.log_filter.take().is_some() {
                    self.say("log filter cleared", Tone::Info);
                }
                Vec::new()
            }
            Action::ShowOutput => {
                self.overlay = Overlay::Output;
                Vec::new()
            }
            Action::Filter => {
                self.overlay = Overlay::Filter(self.log_filter.clone().unwrap_or_default());
                Vec::new()
            }
            Action::ToggleFollow => {
                if self.follow_logs {
                    self.pause_logs();
                } else {
                    self.follow_logs = true;
                    self.log_anchor = None;
                }
                self.log_scroll = 0;
                Vec::new()
            }
            Action::ToggleHostLogs => {
                self.one_host_logs = !self.one_host_logs;
                Vec::new()
            }
            Action::Help => {
                self.overlay = Overlay::Help;
                Vec::new()
            }
            Action::Quit => {
                if self.change_running() {
                    self.overlay = Overlay::ConfirmQuit;
                    Vec::new()
                } else {
                    vec![Effect::Quit]
                }
            }
        }
    }

    fn move_cursor(&mut self, delta: isize) {
        let step = |v: usize, len: usize| -> usize {
            if len == 0 {
                0
            } else {
                (v as isize - delta).clamp(0, len as isize - 1) as usize
            }
        };
        match self.focus {
            Pane::Environments => {
                // Walk hosts, crossing into the next environment at the ends.
                let hosts = self.envs[self.env_cursor].hosts.len();
                if delta > 0 && self.host_cursor + 1 < hosts {
                    self.host_cursor += 1;
                } else if delta > 0 && self.env_cursor + 1 < self.envs.len() {
                    self.env_cursor += 1;
                    self.host_cursor = 0;
                } else if delta < 0 && self.host_cursor > 0 {
                    self.host_cursor -= 1;
                } else if delta < 0 && self.env_cursor > 0 {
                    self.env_cursor -= 1;
                    self.host_cursor = self.envs[self.env_cursor].hosts.len().saturating_sub(1);
                }
            }
            // Shown newest first: down goes to older releases.
            Pane::Releases => {
                self.release_cursor = step(self.release_cursor, self.releases.len());
            }
            Pane::Logs => {
                // Scrolling back pauses following; coming back to the end resumes it.
                if delta < 0 {
                    if self.follow_logs {
                        self.pause_logs();
                    }
                    self.log_scroll += 1;
                } else if self.log_scroll > 0 {
                    self.log_scroll -= 1;
                } else if !self.follow_logs {
                    self.follow_logs = true;
                    self.log_anchor = None;
                }
            }
        }
    }

    fn pause_logs(&mut self) {
        self.follow_logs = false;
        self.log_anchor = Some(self.monitor.last_log_seq() + 1);
    }

    fn ship(&mut self, promote: bool) -> Vec<Effect> {
        if self.change_running() {
            self.say(
                "a change is already running: wait for it, or cancel it with c",
                Tone::Info,
            );
            return Vec::new();
        }
        let Some(release) = self.selected_release().map(|m| m.id.clone()) else {
            self.say(
                "no release to ship: build one with `shipdeck build`",
                Tone::Info,
            );
            return Vec::new();
        };
        let env = self.selected_env().name.clone();
        let verb = if promote { "promoting" } else { "deploying" };
        self.say(format!("{verb} {release} to {env}…"), Tone::Info);
        self.request(Effect::Run(
            if promote {
                Command::Promote { release, to: env }
            } else {
                Command::Deploy { env, release }
            },
            ChangeOptions::default(),
        ))
    }

    /// Ask for a change, remembering it: the deploy window may refuse it,
    /// and `O` then asks for it again.
    fn request(&mut self, effect: Effect) -> Vec<Effect> {
        self.offer = None;
        self.requested = Some(effect.clone());
        vec![effect]
    }

    /// The refused change again, with the operator's reason.
    fn override_with(&mut self, reason: String) -> Vec<Effect> {
        let Some(offer) = self.offer.take() else {
            return Vec::new();
        };
        if self.change_running() {
            self.say("a change is already running: wait for it", Tone::Info);
            return Vec::new();
        }
        let mut effect = offer.effect;
        match &mut effect {
            Effect::Run(
                Command::Deploy { .. } | Command::Promote { .. } | Command::Resume { .. },
                opts,
            ) => opts.override_reason = Some(reason.clone()),
            _ => return Vec::new(),
        }
        self.say(
            format!("OVERRIDING the deploy window: {reason} (the history keeps it)"),
            Tone::Bad,
        );
        self.request(effect)
    }

    /// `r`: continue the selected environment's interrupted change.
    fn resume(&mut self) -> Vec<Effect> {
        if self.change_running() {
            self.say("a change is already running: wait for it", Tone::Info);
            return Vec::new();
        }
        let env = self.selected_env().name.clone();
        let what = self
            .foreign_change(self.env_cursor)
            .map(|c| format!("{} {} by {}", c.kind.as_str(), c.release, c.operator))
            .unwrap_or_default();
        self.say(
            format!("resuming {what} on {env} from where it stopped…"),
            Tone::Info,
        );
        self.request(Effect::Run(
            Command::Resume { env },
            ChangeOptions::default(),
        ))
    }

    /// `F`: stop the old slots of the selected blue/green environment.
    fn finish(&mut self) -> Vec<Effect> {
        if self.change_running() {
            self.say("a change is already running: wait for it", Tone::Info);
            return Vec::new();
        }
        let env = self.selected_env().name.clone();
        self.say(
            format!("finishing {env}: stopping the old slots; a rollback will start the old release again"),
            Tone::Info,
        );
        self.request(Effect::Run(
            Command::Finish { env, change: None },
            ChangeOptions::default(),
        ))
    }

    /// A blue/green change whose `finish_after` is up is finished once, as
    /// soon as no other change of this console runs.
    fn finish_when_due(&mut self) -> Vec<Effect> {
        if self.change_running() {
            return Vec::new();
        }
        let Some((e, p, at)) = self.next_finish() else {
            return Vec::new();
        };
        if at > self.now {
            return Vec::new();
        }
        let env = self.envs[e].name.clone();
        let change = p.change.clone();
        self.finishing.push(change.clone());
        self.say(
            format!("finish_after is up: stopping the old slots of {env}"),
            Tone::Info,
        );
        self.request(Effect::Run(
            Command::Finish {
                env,
                change: Some(change),
            },
            ChangeOptions::default(),
        ))
    }

    /// Tell the paused change what to do: once per pause, though `R` (abort)
    /// may still follow an `n` or a `P` the change has not taken yet. A
    /// change paused by another process or machine hears it through its
    /// hosts.
    fn control(&mut self, word: Control) -> Vec<Effect> {
        if self.paused_here().is_none() {
            return self.signal(word);
        }
        let Some(c) = self.change.as_mut().filter(|c| c.running()) else {
            return Vec::new();
        };
        let canary = c
            .paused()
            .map(|p| c.names(&p.canary).join(", "))
            .unwrap_or_default();
        let Some(p) = c.pause.as_mut() else {
            return Vec::new();
        };
        if let Some(sent) = p.sent
            && (sent == Control::Abort || word != Control::Abort)
        {
            self.say(
                format!(
                    "already told the change: {}; waiting for it to act",
                    sent.as_str()
                ),
                Tone::Info,
            );
            return Vec::new();
        }
        p.sent = Some(word);
        let batch = p.batch;
        let (text, tone) = match word {
            Control::Next => (
                format!(
                    "next step: moving on from step {} of {}…",
                    p.batch + 1,
                    p.of
                ),
                Tone::Info,
            ),
            Control::Promote => (
                "promoting: every remaining step, no more pauses…".to_owned(),
                Tone::Info,
            ),
            Control::Abort => (
                format!("ABORTING the canary: {canary} go back to what they ran…"),
                Tone::Bad,
            ),
        };
        self.say(text, tone);
        vec![Effect::Control { batch, word }]
    }

    /// A word for the change paused on the selected environment elsewhere.
    fn signal(&mut self, word: Control) -> Vec<Effect> {
        let env = self.env_cursor;
        let Some((c, p)) = self.foreign_pause(env) else {
            return Vec::new();
        };
        let key = (c.change.clone(), p.batch);
        let what = format!(
            "{} {} by {}, paused after step {} of {}",
            c.kind.as_str(),
            c.release,
            c.operator,
            p.batch + 1,
            p.of
        );
        if self.told.as_ref() == Some(&key) && word != Control::Abort {
            self.say(
                format!("already told {what}; waiting for it to act"),
                Tone::Info,
            );
            return Vec::new();
        }
        self.told = Some(key);
        let (text, tone) = match word {
            Control::Next => (format!("telling {what}: next step…"), Tone::Info),
            Control::Promote => (format!("telling {what}: every remaining step…"), Tone::Info),
            Control::Abort => (
                format!("ABORTING {what}: its canary hosts go back…"),
                Tone::Bad,
            ),
        };
        self.say(text, tone);
        vec![Effect::Run(
            Command::Signal {
                env: self.envs[env].name.clone(),
                control: word,
            },
            ChangeOptions::default(),
        )]
    }

    /// `R`: roll the selected environment back; `armed` is the refusal of a
    /// rollback across a schema migration, which a second `R` on the same
    /// environment forces.
    fn rollback(&mut self, armed: Option<Armed>) -> Vec<Effect> {
        let env = self.selected_env().name.clone();
        if let Some(c) = self.running_change() {
            let what = c.label();
            let text = if c.env == env {
                format!(
                    "not rolled back: {what} is running; c cancels it (asks first), switched hosts go back"
                )
            } else {
                format!(
                    "{env} not rolled back: {what} is running; roll {env} back once it ends (c cancels it, asking first)"
                )
            };
            self.say(text, Tone::Info);
            return Vec::new();
        }
        let force = armed.is_some_and(|a| a.env == env);
        let preview = self.rollback_preview(self.env_cursor);
        let mut moves: Vec<String> = preview
            .iter()
            .filter_map(|(_, cur, prev)| match (cur, prev) {
                (Some(c), Some(p)) => Some(format!("{c} → {p}")),
                _ => None,
            })
            .collect();
        moves.sort();
        moves.dedup();
        let what = if moves.is_empty() {
            "to the previous release".to_owned()
        } else {
            moves.join(", ")
        };
        let across = if force {
            ", ACROSS THE SCHEMA MIGRATION"
        } else {
            ""
        };
        self.say(format!("ROLLING BACK {env}{across}: {what}"), Tone::Bad);
        self.rollback_env = Some(env.clone());
        vec![Effect::rollback(env, force)]
    }

    /// Time since the change started (or how long it took).
    pub fn change_elapsed(&self) -> Option<Duration> {
        let c = self.change.as_ref()?;
        let end = c.finished.as_ref().map_or(self.now, |f| f.2);
        end.duration_since(c.started).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crossterm::event::KeyModifiers;

    use super::*;

    const CONFIG: &str = r#"
[app]
name = "hello"
artifact = "dist"
deploy_to = "/srv/hello"

[environments.staging]
hosts = ["local:hosts/stage-1"]

[environments.production]
hosts = ["local:hosts/web-1", "local:hosts/web-2", "local:hosts/web-3"]
strategy = { kind = "canary", steps = ["1", "pause 60s", "2", "pause", "100%"] }
"#;

    fn app(readonly: bool) -> App {
        let config = Config::parse(Path::new("/t/shipdeck.toml"), CONFIG).unwrap();
        let mut app = App::new(Arc::new(config), readonly);
        app.now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        app
    }

    fn press(app: &mut App, c: char) -> Vec<Effect> {
        app.update(Msg::Key(KeyEvent::new(
            KeyCode::Char(c),
            KeyModifiers::NONE,
        )))
    }

    fn start(app: &mut App, kind: ChangeKind) {
        app.update(Msg::Engine(Event::ChangeStarted {
            change: "c1".into(),
            env: "production".into(),
            kind,
            release: Some(ReleaseId::parse("v2").unwrap()),
            hosts: vec!["web-1".into(), "web-2".into(), "web-3".into()],
        }));
    }

    fn pause(app: &mut App, batch: usize, wait: Option<Duration>) {
        app.update(Msg::Engine(Event::Paused {
            batch,
            of: 3,
            canary: (0..=batch).collect(),
            wait,
            why: None,
        }));
    }

    /// A refusal to roll `production` back across a schema migration.
    fn refuse(app: &mut App) {
        app.update(Msg::ChangeDone(Err(ChangeError::Migration(
            "rollback of production refused, nothing was changed: it crosses the schema migration of v2 (run_once_migrates)".into(),
        ))));
    }

    #[test]
    fn strategies_read_shortly() {
        let a = app(false);
        assert_eq!(a.envs[0].strategy, "all at once");
        assert_eq!(a.envs[1].strategy, "canary 1 → 2 → 100%");
    }

    #[test]
    fn n_p_r_steer_the_change_only_while_it_is_paused() {
        let mut a = app(false);
        a.env_cursor = 1;
        start(&mut a, ChangeKind::Deploy);
        // Running, not paused: n and P mean nothing, R refuses to roll back.
        assert!(press(&mut a, 'n').is_empty());
        assert!(press(&mut a, 'P').is_empty());
        assert!(press(&mut a, 'R').is_empty());
        pause(&mut a, 0, Some(Duration::from_secs(60)));
        assert_eq!(
            press(&mut a, 'n'),
            [Effect::Control {
                batch: 0,
                word: Control::Next
            }]
        );
        // One word per pause: a second n must not skip the next pause.
        assert!(press(&mut a, 'n').is_empty());
        assert!(press(&mut a, 'P').is_empty());
        // The same pause sent again (now waiting for the operator) keeps it.
        pause(&mut a, 0, None);
        assert!(press(&mut a, 'n').is_empty());
        // Abort may still follow, once.
        assert_eq!(
            press(&mut a, 'R'),
            [Effect::Control {
                batch: 0,
                word: Control::Abort
            }]
        );
        assert!(press(&mut a, 'R').is_empty());

        let mut a = app(false);
        start(&mut a, ChangeKind::Deploy);
        pause(&mut a, 0, None);
        assert_eq!(
            press(&mut a, 'P'),
            [Effect::Control {
                batch: 0,
                word: Control::Promote
            }]
        );
        a.update(Msg::Engine(Event::Continued {
            by: "the console".into(),
            control: Control::Promote,
        }));
        assert!(a.paused().is_none());
        assert!(press(&mut a, 'P').is_empty());
        assert!(press(&mut a, 'n').is_empty());
        // A new pause takes a word again.
        pause(&mut a, 1, None);
        assert_eq!(
            press(&mut a, 'n'),
            [Effect::Control {
                batch: 1,
                word: Control::Next
            }]
        );
        // Once finished, R is the rollback of the environment again.
        a.update(Msg::Engine(Event::ChangeFinished {
            change: "c1".into(),
            outcome: ChangeOutcome::Succeeded,
            summary: "done".into(),
        }));
        assert!(press(&mut a, 'n').is_empty());
        assert_eq!(press(&mut a, 'R'), [Effect::rollback("production", false)]);
    }

    fn key(a: &mut App, code: KeyCode) -> Vec<Effect> {
        a.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
    }

    #[test]
    fn esc_closes_clears_and_goes_back_but_never_cancels() {
        let mut a = app(false);
        start(&mut a, ChangeKind::Deploy);
        assert!(key(&mut a, KeyCode::Esc).is_empty());
        // `?` Esc Esc: the help closes, then Esc again is only Esc.
        assert!(press(&mut a, '?').is_empty());
        assert_eq!(a.overlay, Overlay::Help);
        assert!(key(&mut a, KeyCode::Esc).is_empty());
        assert_eq!(a.overlay, Overlay::None);
        assert!(key(&mut a, KeyCode::Esc).is_empty());
        // In a pause too, and in the question `q` asks.
        pause(&mut a, 0, None);
        assert!(key(&mut a, KeyCode::Esc).is_empty());
        assert!(press(&mut a, 'q').is_empty());
        assert!(key(&mut a, KeyCode::Esc).is_empty());
        assert!(!a.quitting);
        assert!(a.change_running() && a.paused().is_some());
        // What Esc does: clear the log filter.
        a.log_filter = Some("ERROR".into());
        assert!(key(&mut a, KeyCode::Esc).is_empty());
        assert_eq!(a.log_filter, None);
    }

    #[test]
    fn c_cancels_only_after_y() {
        let mut a = app(false);
        // Nothing running: c means nothing.
        assert!(press(&mut a, 'c').is_empty());
        assert_eq!(a.overlay, Overlay::None);
        start(&mut a, ChangeKind::Deploy);
        assert!(press(&mut a, 'c').is_empty());
        assert_eq!(a.overlay, Overlay::ConfirmCancel);
        // Any key but y leaves it running: n, Esc, c again, q.
        for code in [
            KeyCode::Char('n'),
            KeyCode::Esc,
            KeyCode::Char('c'),
            KeyCode::Char('q'),
        ] {
            assert_eq!(a.overlay, Overlay::ConfirmCancel);
            assert!(key(&mut a, code).is_empty(), "{code:?}");
            assert_eq!(a.overlay, Overlay::None);
            assert!(a.status.as_ref().unwrap().0.contains("not cancelled"));
            press(&mut a, 'c');
        }
        assert_eq!(press(&mut a, 'y'), [Effect::Cancel]);
        assert!(
            a.status
                .as_ref()
                .unwrap()
                .0
                .starts_with("CANCELLING deploy v2 → production")
        );
        // The question outlived the change: y cancels nothing.
        let mut a = app(false);
        start(&mut a, ChangeKind::Deploy);
        press(&mut a, 'c');
        a.update(Msg::Engine(Event::ChangeFinished {
            change: "c1".into(),
            outcome: ChangeOutcome::Succeeded,
            summary: "done".into(),
        }));
        assert!(press(&mut a, 'y').is_empty());
        // Read-only: no question at all.
        let mut a = app(true);
        start(&mut a, ChangeKind::Deploy);
        assert!(press(&mut a, 'c').is_empty());
        assert_eq!(a.overlay, Overlay::None);
    }

    #[test]
    fn r_n_p_act_on_the_selected_environment_only() {
        let mut a = app(false);
        a.env_cursor = 1;
        start(&mut a, ChangeKind::Deploy);
        pause(&mut a, 0, None);
        // Staging selected: R is staging's rollback, refused while
        // production's canary runs; n and P steer nothing.
        a.env_cursor = 0;
        for c in ['R', 'n', 'P'] {
            assert!(press(&mut a, c).is_empty(), "{c}");
        }
        let (text, _) = a.status.clone().unwrap();
        assert!(
            text.starts_with("staging not rolled back: deploy v2 → production is running"),
            "{text}"
        );
        assert_eq!(a.paused().unwrap().sent, None, "the canary heard nothing");
        assert_eq!(a.cancel_hint().as_deref(), Some("cancel production"));
        assert_eq!(a.rollback_hint(), None, "R is refused: not offered");
        // c still cancels production's change, naming it, after y.
        press(&mut a, 'c');
        assert_eq!(press(&mut a, 'y'), [Effect::Cancel]);
        // Production selected: R aborts its canary.
        let mut a = app(false);
        a.env_cursor = 1;
        start(&mut a, ChangeKind::Deploy);
        pause(&mut a, 0, None);
        assert_eq!(a.cancel_hint().as_deref(), Some("cancel"));
        assert_eq!(
            press(&mut a, 'R'),
            [Effect::Control {
                batch: 0,
                word: Control::Abort
            }]
        );
        // Once it ended, R on staging rolls staging back.
        a.update(Msg::Engine(Event::ChangeFinished {
            change: "c1".into(),
            outcome: ChangeOutcome::RolledBack,
            summary: "aborted".into(),
        }));
        a.env_cursor = 0;
        assert_eq!(a.rollback_hint().as_deref(), Some("roll back staging"));
        assert_eq!(press(&mut a, 'R'), [Effect::rollback("staging", false)]);
    }

    #[test]
    fn a_breach_stays_on_the_finished_change() {
        let mut a = app(false);
        start(&mut a, ChangeKind::Deploy);
        pause(&mut a, 0, Some(Duration::from_secs(60)));
        a.update(Msg::Engine(Event::Analysis {
            verdict: Verdict::Inconclusive { why: "x".into() },
            lines: Vec::new(),
        }));
        // A new pause forgets the analysis of the one before.
        pause(&mut a, 1, None);
        assert!(a.change.as_ref().unwrap().analysis.is_none());
        a.update(Msg::Engine(Event::Analysis {
            verdict: Verdict::Breach {
                metric: crate::engine::canary::Metric::ErrorRate,
                value: 0.2,
                threshold: 0.01,
                host: Some("web-1".into()),
                detail: String::new(),
            },
            lines: vec!["ERROR boom".into()],
        }));
        a.update(Msg::Engine(Event::ChangeFinished {
            change: "c1".into(),
            outcome: ChangeOutcome::RolledBack,
            summary: "stopped".into(),
        }));
        let c = a.change.as_ref().unwrap();
        assert!(c.paused().is_none() && c.pause.is_none());
        assert_eq!(c.analysis.as_ref().unwrap().lines, ["ERROR boom"]);
    }

    #[test]
    fn r_twice_rolls_back_across_a_migration() {
        let mut a = app(false);
        a.env_cursor = 1;
        let first = Effect::rollback("production", false);
        assert_eq!(press(&mut a, 'R'), std::slice::from_ref(&first));
        refuse(&mut a);
        assert!(a.armed().is_some());
        assert!(a.needs_clock(), "the armed R counts down");
        a.now += Duration::from_secs(9);
        assert_eq!(press(&mut a, 'R'), [Effect::rollback("production", true)]);
        assert!(a.armed.is_none());

        // Too late: a plain rollback again (which may be refused again).
        press(&mut a, 'R');
        refuse(&mut a);
        a.now += FORCE_WINDOW;
        a.update(Msg::Tick);
        assert!(a.armed.is_none());
        assert!(!a.needs_clock());
        assert_eq!(press(&mut a, 'R'), std::slice::from_ref(&first));

        // Anything else disarms: another key, or R on another environment.
        refuse(&mut a);
        press(&mut a, 'j');
        a.env_cursor = 1;
        assert_eq!(press(&mut a, 'R'), std::slice::from_ref(&first));
        refuse(&mut a);
        a.env_cursor = 0;
        assert_eq!(press(&mut a, 'R'), [Effect::rollback("staging", false)]);
        // Another error never arms.
        a.update(Msg::ChangeDone(Err(ChangeError::Other("locked".into()))));
        assert!(a.armed.is_none());
    }

    #[test]
    fn a_terminal_too_small_to_show_what_a_key_does_changes_nothing() {
        let mut a = app(false);
        a.env_cursor = 1;
        a.update(Msg::Resize(80, 11));
        assert!(a.too_small());
        for c in ['R', 'd', 'p'] {
            assert!(press(&mut a, c).is_empty(), "{c}");
        }
        // Quitting still works (and asks while a change runs).
        assert_eq!(press(&mut a, 'q'), [Effect::Quit]);
        a.update(Msg::Resize(80, 24));
        assert_eq!(press(&mut a, 'R'), [Effect::rollback("production", false)]);
    }

    #[test]
    fn a_readonly_console_sends_nothing() {
        let mut a = app(true);
        a.env_cursor = 1;
        start(&mut a, ChangeKind::Deploy);
        pause(&mut a, 0, None);
        for c in ['n', 'P', 'R', 'd', 'p', 'c'] {
            assert!(press(&mut a, c).is_empty(), "{c}");
        }
        a.update(Msg::Engine(Event::ChangeFinished {
            change: "c1".into(),
            outcome: ChangeOutcome::Succeeded,
            summary: "done".into(),
        }));
        assert!(press(&mut a, 'R').is_empty());
        assert!(a.armed.is_none());
    }
}
