//! What the engine says while it works. The headless printer, the TUI and the
//! tests all read this one stream.

use std::time::Duration;

use super::canary::Verdict;
use super::plan::Plan;
use crate::model::ReleaseId;
pub use crate::model::change::{ChangeKind, Step};

/// The version of every JSON object shipdeck prints or hands to a hook
/// (docs/json.md): bumped when a field changes meaning or goes away.
pub const JSON_SCHEMA: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepStatus {
    Started,
    Done {
        elapsed: Duration,
        detail: Option<String>,
    },
    Skipped {
        why: String,
    },
    Failed {
        elapsed: Duration,
        error: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeOutcome {
    /// Every host runs the target release.
    Succeeded,
    /// Nothing needed doing.
    NothingToDo,
    /// A host failed; switched hosts went back to what they ran before.
    RolledBack,
    /// Stopped by the operator; switched hosts went back.
    Cancelled,
    /// A host failed and could not be put back; it needs attention.
    Failed,
}

#[derive(Debug, Clone)]
pub enum Event {
    ChangeStarted {
        change: String,
        env: String,
        kind: ChangeKind,
        release: Option<ReleaseId>,
        hosts: Vec<String>,
    },
    Planned(Plan),
    BatchStarted {
        index: usize,
        of: usize,
        hosts: Vec<usize>,
    },
    HostStep {
        host: usize,
        step: Step,
        status: StepStatus,
    },
    /// Something the operator should read (a warning, a decision the engine took).
    Note {
        host: Option<usize>,
        message: String,
    },
    /// A canary pause began, or changed: `wait` is how long until the next
    /// step starts by itself; `None` waits for the operator (`n`, `P`, `R`,
    /// `shipdeck continue`/`abort`), with `why` when the analysis could not
    /// decide.
    Paused {
        batch: usize,
        of: usize,
        /// Hosts on the new release (the canary), by index.
        canary: Vec<usize>,
        wait: Option<Duration>,
        why: Option<String>,
    },
    /// The latest analysis of the canary hosts during a pause. On a breach,
    /// `lines` are the last log lines of the host that breached.
    Analysis {
        verdict: Verdict,
        lines: Vec<String>,
    },
    /// The pause is over: the operator (or its timer) moved the change on
    /// (`Next`), through every remaining step (`Promote`), or aborted it
    /// (`Abort`: the canary hosts go back next).
    Continued {
        by: String,
        control: super::Control,
    },
    ChangeFinished {
        change: String,
        outcome: ChangeOutcome,
        summary: String,
    },
}

/// Where events go. Sending never blocks and never fails the change: a view
/// that went away must not stop a deploy half-way.
#[derive(Clone)]
pub struct EventSink(Option<std::sync::Arc<dyn Fn(Event) + Send + Sync>>);

impl EventSink {
    pub fn new(tx: tokio::sync::mpsc::UnboundedSender<Event>) -> Self {
        Self::from_fn(move |e| {
            let _ = tx.send(e);
        })
    }

    /// Deliver events to a function (the TUI wraps them into its own messages).
    pub fn from_fn(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        EventSink(Some(std::sync::Arc::new(f)))
    }

    pub fn discard() -> Self {
        EventSink(None)
    }

    pub fn emit(&self, event: Event) {
        if let Some(f) = &self.0 {
            f(event);
        }
    }

    pub fn step(&self, host: usize, step: Step, status: StepStatus) {
        self.emit(Event::HostStep { host, step, status });
    }

    pub fn note(&self, host: Option<usize>, message: impl Into<String>) {
        self.emit(Event::Note {
            host,
            message: message.into(),
        });
    }
}
