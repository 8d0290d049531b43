//! The one owner of the console's state: `update` is the only thing that
//! changes it, views only read it, and what must happen outside (start a
//! change, cancel it, quit) comes back as `Effect`s for the runtime to do.
//!
//! Split by what each part reduces: `update` routes the messages, `change`
//! is the change pane's reducer (engine events), `logs` the logs pane's,
//! `keys` turns keys into actions and pages, `commands` asks the engine,
//! `query` answers what the views and keys ask of the state.

mod change;
mod commands;
mod keys;
mod logs;
mod query;
mod update;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent};

use super::keymap::{self, Action, Page};
use crate::config::Config;
use crate::engine::canary::CanaryStep;
use crate::engine::{ChangeOptions, ChangeReport, Command, Control, EngineError, Event};
use crate::model::Strategy;
use crate::monitor::{HostKey, MonitorEvent, MonitorState};
use crate::store::Manifest;

pub use change::{AnalysisView, ChangeView, HostProgress, PauseView, StepState};
pub use logs::LogView;
pub use query::HistoryRow;

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
    /// Typing a log filter: the logs follow it as it is typed.
    Filter(String),
    /// Typing a host filter: the environments pane follows it as it is typed.
    HostFilter(String),
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
pub struct EnvRow {
    pub name: String,
    pub strategy: String,
    pub requires: Option<String>,
    /// Each host as the screen names it (see [`screen_name`]).
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

/// How a host is named on screen: the `name` the config gives it, else a
/// `local:` host by its folder's name and an SSH host as written.
pub fn screen_name(h: &crate::model::Host) -> String {
    if let Some(label) = &h.label {
        return label.clone();
    }
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
    /// The console, the selected environment's history, or the selected
    /// host's detail.
    pub page: Page,
    /// Lines the page is scrolled: the history from its newest line, a
    /// host's log lines back from its newest.
    pub page_scroll: usize,
    /// Lines the help is scrolled.
    pub help_scroll: usize,
    pub overlay: Overlay,
    pub change: Option<ChangeView>,
    pub logs: LogView,
    /// The hosts the environments pane shows: those whose name holds this
    /// (ignoring case unless it has a capital). A view only: a command still
    /// acts on its whole environment.
    pub host_filter: Option<String>,
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
                hosts: e.hosts.iter().map(screen_name).collect(),
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
            page: Page::Console,
            page_scroll: 0,
            help_scroll: 0,
            overlay: Overlay::None,
            host_filter: None,
            change: None,
            logs: LogView::default(),
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

    /// The screen name of a host.
    pub fn host_name(&self, key: HostKey) -> &str {
        self.envs
            .get(key.env)
            .and_then(|e| e.hosts.get(key.host))
            .map_or("?", String::as_str)
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

    fn say(&mut self, text: impl Into<String>, tone: Tone) {
        self.status = Some((text.into(), tone));
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
