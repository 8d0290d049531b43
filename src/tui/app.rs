//! The one owner of the console's state: `update` is the only thing that
//! changes it, views only read it, and what must happen outside (start a
//! change, cancel it, quit) comes back as `Effect`s for the runtime to do.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent};

use super::keymap::{self, Action};
use crate::config::Config;
use crate::engine::{ChangeKind, ChangeOutcome, ChangeReport, Event, Step, StepStatus};
use crate::model::ReleaseId;
use crate::monitor::{HostKey, MonitorEvent, MonitorState};
use crate::store::Manifest;

#[derive(Debug)]
pub enum Msg {
    Key(KeyEvent),
    Resize,
    Engine(Event),
    Monitor(MonitorEvent),
    /// The local release store, read again.
    Releases(Vec<Manifest>),
    /// A change's thread ended.
    ChangeDone(Result<ChangeReport, String>),
    /// Time moved on (only sent while a change runs, for its clock).
    Tick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Deploy { env: String, release: ReleaseId },
    Promote { env: String, release: ReleaseId },
    Rollback { env: String },
    Cancel,
    Quit,
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
    /// Typing a log filter.
    Filter(String),
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
    pub env: String,
    pub kind: ChangeKind,
    pub release: Option<ReleaseId>,
    pub started: SystemTime,
    pub hosts: Vec<HostProgress>,
    pub batch: Option<(usize, usize)>,
    pub notes: Vec<String>,
    pub finished: Option<(ChangeOutcome, String, SystemTime)>,
}

impl ChangeView {
    pub fn running(&self) -> bool {
        self.finished.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct EnvRow {
    pub name: String,
    pub strategy: String,
    pub requires: Option<String>,
    pub hosts: Vec<String>,
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
    pub quitting: bool,
    /// The clock views read; set by the runtime, fixed by tests.
    pub now: SystemTime,
}

impl App {
    pub fn new(config: Arc<Config>, readonly: bool) -> Self {
        let envs = config
            .environments
            .iter()
            .map(|e| EnvRow {
                name: e.name.clone(),
                strategy: match &e.strategy {
                    crate::model::Strategy::AllAtOnce => "all at once".to_owned(),
                    crate::model::Strategy::Rolling {
                        batch,
                        max_failures: 0,
                    } => format!("rolling, {batch} at a time"),
                    crate::model::Strategy::Rolling {
                        batch,
                        max_failures,
                    } => {
                        format!("rolling, {batch} at a time, tolerates {max_failures}")
                    }
                    other => other.to_string(),
                },
                requires: e.requires.clone(),
                hosts: e.hosts.iter().map(display_name).collect(),
            })
            .collect();
        App {
            monitor: MonitorState::new(&config),
            config,
            readonly,
            envs,
            releases: Vec::new(),
            env_cursor: 0,
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
            quitting: false,
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
            Msg::Resize | Msg::Tick => Vec::new(),
            Msg::Monitor(ev) => {
                self.monitor.apply(ev);
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
                match result {
                    Ok(report) => {
                        let tone = match report.outcome {
                            ChangeOutcome::Succeeded | ChangeOutcome::NothingToDo => Tone::Good,
                            _ => Tone::Bad,
                        };
                        self.say(report.summary.clone(), tone);
                    }
                    Err(e) => {
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
                env,
                kind,
                release,
                hosts,
                ..
            } => {
                let names = self
                    .envs
                    .iter()
                    .find(|e| e.name == env)
                    .map(|e| e.hosts.clone())
                    .unwrap_or(hosts);
                self.change = Some(ChangeView {
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
            Event::ChangeFinished {
                outcome, summary, ..
            } => {
                if let Some(c) = &mut self.change {
                    c.finished = Some((outcome, summary, self.now));
                }
            }
        }
    }

    fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
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
                    KeyCode::Backspace => {
                        text.pop();
                    }
                    KeyCode::Char(c) => text.push(c),
                    _ => {}
                }
                return Vec::new();
            }
            Overlay::ConfirmQuit => {
                self.overlay = Overlay::None;
                if matches!(key.code, KeyCode::Char('q') | KeyCode::Char('y')) {
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
            Overlay::Help | Overlay::Output => {
                // Any key closes an overlay; only `q` also acts.
                self.overlay = Overlay::None;
                if key.code != KeyCode::Char('q') {
                    return Vec::new();
                }
            }
            Overlay::None => {}
        }
        let Some(action) = keymap::action_for(&key) else {
            return Vec::new();
        };
        if self.readonly && keymap::binding(action).changes_hosts {
            self.say(
                "read-only console: nothing can be changed from here",
                Tone::Info,
            );
            return Vec::new();
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
            Action::Rollback => self.rollback(),
            Action::Cancel => {
                if self.change_running() {
                    self.say("cancelling: the change stops after the current step and switched hosts go back", Tone::Bad);
                    vec![Effect::Cancel]
                } else {
                    self.log_filter = None;
                    Vec::new()
                }
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
        vec![if promote {
            Effect::Promote { env, release }
        } else {
            Effect::Deploy { env, release }
        }]
    }

    fn rollback(&mut self) -> Vec<Effect> {
        if self.change_running() {
            self.say(
                "a change is running: cancel it with c (switched hosts go back by themselves)",
                Tone::Info,
            );
            return Vec::new();
        }
        let env = self.selected_env().name.clone();
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
        self.say(format!("ROLLING BACK {env}: {what}"), Tone::Bad);
        vec![Effect::Rollback { env }]
    }

    /// Time since the change started (or how long it took).
    pub fn change_elapsed(&self) -> Option<Duration> {
        let c = self.change.as_ref()?;
        let end = c.finished.as_ref().map_or(self.now, |f| f.2);
        end.duration_since(c.started).ok()
    }
}
