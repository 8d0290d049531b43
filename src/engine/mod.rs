//! The engine: plans changes (pure), runs them over kept-open connections, and
//! reports every step as an `Event`. It knows nothing of terminals.

mod analysis;
pub use crate::model::canary;
pub use strategy::blue_green as bluegreen;
mod change;
mod command;
mod events;
pub use crate::host::health;
pub use crate::model::history;
mod inspect;
pub mod journal {
    //! The journal a change keeps on each host: its format is in `model`, the
    //! liveness of its process is read off this machine by `signal`.
    pub use crate::model::journal::*;
    pub use crate::signal::{liveness, lock_is_dead};
}
mod notify;
mod pause;
pub mod plan;
mod resume;
pub mod strategy;
pub use crate::model::window;

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub use crate::transport::CancelToken;
pub use change::{
    ChangeOptions, ChangeReport, DEFAULT_LOCK_WAIT, HostReport, MIGRATION_MARK, human_duration,
    short_sha,
};
pub use command::{Command, Done};
pub use events::{ChangeKind, ChangeOutcome, Event, EventSink, JSON_SCHEMA, Step, StepStatus};
pub use inspect::{CheckReport, HostCheck, HostStatus, LockReport, bytes};
pub use plan::{HostPlan, Plan, RollbackRefusal};

use crate::config::{Config, Environment};
use crate::model::Operator;
use crate::store::Store;
use crate::transport::Fleet;

/// Why a command did not do what was asked; each maps to an exit code (DESIGN §4).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Bad usage or config (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The change ran and failed, or could not start (exit 1).
    #[error("{0}")]
    Failed(String),
    /// Someone else holds the lock (exit 3).
    #[error("{0}")]
    Locked(String),
    /// Refused by a gate: not promoted, outside a window (exit 4).
    #[error("{0}")]
    Refused(String),
    /// A rollback across a schema migration, refused without `--force`
    /// (exit 4); the console asks for `R` a second time.
    #[error("{0}")]
    Migration(String),
    /// Outside the deploy window or inside a freeze, refused without
    /// `--override --reason` (exit 4); the console offers the override.
    #[error("{0}")]
    Window(String),
}

impl EngineError {
    pub fn exit_code(&self) -> i32 {
        match self {
            EngineError::Failed(_) => 1,
            EngineError::Usage(_) => 2,
            EngineError::Locked(_) => 3,
            EngineError::Refused(_) | EngineError::Migration(_) | EngineError::Window(_) => 4,
        }
    }
}

/// What an operator can tell a paused change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Control {
    /// Go on to the next step.
    Next,
    /// Go through every remaining step without pausing.
    Promote,
    /// Stop and put the canary hosts back.
    Abort,
}

impl Control {
    pub fn as_str(self) -> &'static str {
        match self {
            Control::Next => "next",
            Control::Promote => "promote",
            Control::Abort => "abort",
        }
    }
}

/// The word for the paused change of this process (the console); words
/// from other machines arrive through the hosts (`.shipdeck/signal`). A word
/// holds only for the pause it was meant for: one sent while no pause runs,
/// or for a pause that has ended, is dropped, never carried into the next.
#[derive(Default)]
pub struct Controls {
    state: Mutex<ControlState>,
    wake: Condvar,
}

#[derive(Default)]
struct ControlState {
    /// The batch whose pause is running.
    pause: Option<usize>,
    word: Option<Control>,
}

impl Controls {
    fn state(&self) -> std::sync::MutexGuard<'_, ControlState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tell the pause after `batch`; false when that pause is not running.
    pub fn send(&self, batch: usize, c: Control) -> bool {
        let mut s = self.state();
        if s.pause != Some(batch) {
            return false;
        }
        s.word = Some(c);
        self.wake.notify_all();
        true
    }

    /// The pause after `batch` begins: it takes words from now on.
    fn begin(&self, batch: usize) {
        *self.state() = ControlState {
            pause: Some(batch),
            word: None,
        };
    }

    fn end(&self) {
        *self.state() = ControlState::default();
    }

    /// Wait up to `d` for a word, taking it.
    fn wait(&self, d: Duration) -> Option<Control> {
        let guard = self.state();
        let (mut guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |s| s.word.is_none())
            .unwrap_or_else(|p| p.into_inner());
        guard.word.take()
    }
}

/// How often [`Engine::keep_connected`] checks the connections it keeps.
const KEEP_READY_EVERY: Duration = Duration::from_secs(10);
/// A liveness check that takes longer finds the connection dead.
const KEEP_READY_TIMEOUT: Duration = Duration::from_secs(5);

/// One engine per config: it owns a fleet per environment, so every command
/// of a session (TUI) reuses the same connections.
pub struct Engine {
    pub config: Arc<Config>,
    pub operator: Operator,
    pub store: Store,
    events: EventSink,
    cancel: Mutex<CancelToken>,
    controls: Controls,
    fleets: HashMap<String, Arc<Fleet>>,
}

impl Engine {
    pub fn new(config: Arc<Config>, accept_new_host_keys: bool, events: EventSink) -> Self {
        let settings = config.ssh.settings(accept_new_host_keys);
        let fleets = config
            .environments
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    Arc::new(Fleet::new(e.hosts.clone(), &settings)),
                )
            })
            .collect();
        Engine {
            store: Store::new(&config),
            config,
            operator: Operator::current(),
            events,
            cancel: Mutex::new(CancelToken::new()),
            controls: Controls::default(),
            fleets,
        }
    }

    pub fn with_operator(mut self, operator: Operator) -> Self {
        self.operator = operator;
        self
    }

    /// The token that stops the next (or the running) change.
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A fresh token for a new change: a console cancels one change, not
    /// every change after it.
    pub fn reset_cancel(&self) {
        *self.cancel.lock().unwrap_or_else(|p| p.into_inner()) = CancelToken::new();
        self.controls.end();
    }

    /// Tell the change of this process paused after `batch` what to do next
    /// (the console's `n`, `P` and `R`); false when that pause is over.
    pub fn control(&self, batch: usize, c: Control) -> bool {
        self.controls.send(batch, c)
    }

    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// Connect every host now and keep each connection ready until `stop`,
    /// reopening in the background one that stopped answering: the console's
    /// first `R` after it opens (the one that matters in an incident) runs
    /// on open sessions, as every later one does.
    pub fn keep_connected(&self, stop: &CancelToken) {
        tracing::info!("connecting every host ahead of the first command");
        loop {
            std::thread::scope(|scope| {
                for env in &self.config.environments {
                    let Some(fleet) = self.fleets.get(&env.name) else {
                        continue;
                    };
                    scope.spawn(move || {
                        fleet.all(|_, h| {
                            if let Err(e) = h.keep_ready(KEEP_READY_TIMEOUT) {
                                tracing::debug!(host = %h.host.name, error = %e, "not connected ahead");
                            }
                        })
                    });
                }
            });
            if stop.wait(KEEP_READY_EVERY) {
                return;
            }
        }
    }

    pub fn environment(&self, name: &str) -> Result<(&Environment, &Arc<Fleet>), EngineError> {
        match (self.config.environment(name), self.fleets.get(name)) {
            (Some(env), Some(fleet)) => Ok((env, fleet)),
            _ => Err(EngineError::Usage(format!(
                "no environment {name:?} in {} (have: {})",
                self.config.path.display(),
                self.config.environment_names().join(", ")
            ))),
        }
    }
}

pub use crate::model::time::now_rfc3339;

pub fn rfc3339(t: std::time::SystemTime) -> String {
    crate::model::time::rfc3339(t)
}

/// A change id: sortable, unique enough across operators, safe in any shell.
pub fn new_change_id() -> String {
    let now = std::time::SystemTime::now();
    format!(
        "{}-{}-{}",
        crate::model::time::utc_format(now, "%Y%m%dT%H%M%SZ"),
        std::process::id(),
        crate::model::time::utc_format(now, "%3f")
    )
}
