//! The journal a change keeps on each of its hosts (`.shipdeck/change.json`):
//! the plan, and the steps this host has finished. When the operator's
//! process dies, the journal is what `status` shows, what `resume` continues
//! from, and what `rollback` undoes.

use std::time::Duration;

use super::canary::{CanaryStep, PauseKind};
use super::change::{ChangeKind, Step};
use super::{Operator, ReleaseId};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Journal {
    pub change: String,
    pub env: String,
    pub kind: ChangeKind,
    pub release: ReleaseId,
    pub sha256: String,
    pub operator: Operator,
    /// The process that ran the change, on `operator.machine`.
    pub pid: u32,
    pub started: String,
    pub strategy: String,
    /// Every host of the change, in its order.
    pub hosts: Vec<String>,
    /// Indices into `hosts`, switched together.
    pub batches: Vec<Vec<usize>>,
    /// The pauses after each batch, written as in `strategy.steps`.
    pub pauses: Vec<Vec<String>>,
    /// The host `run_once` hooks run on.
    pub run_once_on: Option<usize>,
    /// This host.
    pub host: String,
    /// What this host ran before the change.
    pub from: Option<ReleaseId>,
    /// This host's finished steps, in order.
    pub done: Vec<Step>,
    /// When the running change last wrote this journal (RFC 3339): during a
    /// long pause it writes it again now and then, so another machine can
    /// tell a quiet change from a dead one.
    #[serde(default)]
    pub updated: String,
    /// The canary pause the change is in, if it is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseState>,
    /// What marked the release as carrying a schema migration, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
}

/// A canary pause as the hosts keep it: what `shipdeck continue` from any
/// machine acts on, and what `status` and the console show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PauseState {
    /// The batch just moved, from 0, of `of`.
    pub batch: usize,
    pub of: usize,
    /// When the pause began (RFC 3339).
    pub since: String,
    /// When the next step starts by itself; `None` waits for the operator.
    /// (Written as `null`, not left out: `status --json` shows this struct.)
    #[serde(default)]
    pub until: Option<String>,
    /// Why a timed pause now waits for the operator (analysis undecided).
    #[serde(default)]
    pub why: Option<String>,
}

impl PauseState {
    /// One line, as `status` prints it.
    pub fn describe(&self) -> String {
        let step = format!("paused after step {} of {}", self.batch + 1, self.of);
        match (&self.until, &self.why) {
            (Some(until), _) => format!("{step}, going on by itself at {until}"),
            (None, Some(why)) => format!("{step}, waiting for the operator: {why}"),
            (None, None) => format!("{step}, waiting for the operator"),
        }
    }
}

impl Journal {
    pub fn pause_kinds(&self, batch: usize) -> Vec<PauseKind> {
        self.pauses
            .get(batch)
            .into_iter()
            .flatten()
            .filter_map(|p| match CanaryStep::parse(p) {
                Ok(CanaryStep::Pause(k)) => Some(k),
                _ => None,
            })
            .collect()
    }

    pub fn write_pauses(pauses: &[Vec<PauseKind>]) -> Vec<Vec<String>> {
        pauses
            .iter()
            .map(|ps| {
                ps.iter()
                    .map(|p| CanaryStep::Pause(*p).to_string())
                    .collect()
            })
            .collect()
    }

    pub fn has_done(&self, step: Step) -> bool {
        self.done.contains(&step)
    }

    /// Where this host stands, as an operator reads it.
    pub fn position(&self) -> String {
        let last = self.done.last().map_or_else(
            || "nothing done yet".to_owned(),
            |s| format!("last step {s}"),
        );
        format!("{}: {last}", self.host)
    }

    /// Whether the change had switched this host (its `current`, or its
    /// traffic for blue/green) when the journal was last written.
    pub fn switched(&self) -> bool {
        self.has_done(Step::Switch) || self.has_done(Step::Record)
    }
}

/// Whether the process behind a change still runs, as far as this machine can
/// tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Liveness {
    Running,
    /// Its process is gone: it was started on this machine and its pid is dead.
    Interrupted,
    /// Started on another machine: only its operator can tell.
    Elsewhere,
}

/// What `status` and the console say about a change in progress on a host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChangeInfo {
    pub change: String,
    pub env: String,
    pub kind: ChangeKind,
    pub release: ReleaseId,
    pub operator: Operator,
    /// Its process, on `operator.machine`: how a console on that machine
    /// tells within seconds that it died.
    pub pid: u32,
    pub started: String,
    /// When its process last wrote the journal.
    pub updated: String,
    pub liveness: Liveness,
    pub position: String,
    pub pause: Option<PauseState>,
}

impl ChangeInfo {
    /// `liveness` is read off this machine (see `signal::liveness`).
    pub fn new(j: &Journal, liveness: Liveness) -> Self {
        ChangeInfo {
            change: j.change.clone(),
            env: j.env.clone(),
            kind: j.kind,
            release: j.release.clone(),
            operator: j.operator.clone(),
            pid: j.pid,
            started: j.started.clone(),
            updated: j.updated.clone(),
            liveness,
            position: j.position(),
            pause: j.pause.clone(),
        }
    }

    pub fn describe(&self) -> String {
        self.describe_at(&self.position)
    }

    /// As [`describe`](Self::describe), with where the change stands on
    /// every host that keeps its journal.
    pub fn describe_at(&self, position: &str) -> String {
        let what = format!(
            "{} {} by {} since {}",
            self.kind.as_str(),
            self.release,
            self.operator,
            self.started
        );
        let env = &self.env;
        let paused = self
            .pause
            .as_ref()
            .map(|p| {
                format!(
                    "; {}: `shipdeck continue {env}` goes on, `shipdeck abort {env}` puts the canary back",
                    p.describe()
                )
            })
            .unwrap_or_default();
        let heard = if self.updated.is_empty() {
            String::new()
        } else {
            format!(", last heard from at {}", self.updated)
        };
        match self.liveness {
            Liveness::Running => format!("in progress: {what}{paused}"),
            Liveness::Interrupted => format!(
                "INTERRUPTED: {what}, stopped at {position}; `shipdeck resume {env}` continues it, `shipdeck rollback {env}` undoes it"
            ),
            Liveness::Elsewhere => format!(
                "in progress on {} (or interrupted there){heard}: {what}, at {position}{paused}",
                self.operator.machine
            ),
        }
    }
}

/// How often a paused change writes its journals again, so that another
/// machine sees it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
