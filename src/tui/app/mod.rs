//! The one owner of the console's state: `update` is the only thing that
//! changes it, views only read it, and what must happen outside (start a
//! change, cancel it, quit) comes back as `Effect`s for the runtime to do.

mod commands;
mod keys;
mod update;

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
            // At 3 a.m. a dead host is often why: `R` rolls back every host
            // that answers, and the change pane names the ones left out.
            ChangeOptions {
                force,
                skip_unreachable: true,
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
    /// The store has been read once: before, "no releases" would be false.
    pub releases_read: bool,
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
            releases_read: false,
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

    /// Time since the change started (or how long it took).
    pub fn change_elapsed(&self) -> Option<Duration> {
        let c = self.change.as_ref()?;
        let end = c.finished.as_ref().map_or(self.now, |f| f.2);
        end.duration_since(c.started).ok()
    }
}

#[cfg(test)]
mod tests;
