//! The journal a change keeps on each of its hosts (`.shipdeck/change.json`):
//! the plan, and the steps this host has finished. When the operator's
//! process dies, the journal is what `status` shows, what `resume` continues
//! from, and what `rollback` undoes.

use std::time::Duration;

use super::canary::{CanaryStep, PauseKind};
use super::events::{ChangeKind, Step};
use crate::model::{LockOwner, Operator, ReleaseId};

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

/// A process on this machine is alive when signal 0 reaches it.
pub fn liveness(operator: &Operator, pid: u32, this_machine: &Operator) -> Liveness {
    if operator.machine != this_machine.machine {
        return Liveness::Elsewhere;
    }
    // kill(pid, 0) fails with EPERM for another user's live process: that is
    // still a live process.
    let alive = crate::signal::process(pid, 0)
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if alive {
        Liveness::Running
    } else {
        Liveness::Interrupted
    }
}

/// What `status` and the console say about a change in progress on a host.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChangeInfo {
    pub change: String,
    pub kind: ChangeKind,
    pub release: ReleaseId,
    pub operator: Operator,
    pub started: String,
    pub liveness: Liveness,
    pub position: String,
}

impl ChangeInfo {
    pub fn new(j: &Journal, this_machine: &Operator) -> Self {
        ChangeInfo {
            change: j.change.clone(),
            kind: j.kind,
            release: j.release.clone(),
            operator: j.operator.clone(),
            started: j.started.clone(),
            liveness: liveness(&j.operator, j.pid, this_machine),
            position: j.position(),
        }
    }

    pub fn describe(&self) -> String {
        let what = format!(
            "{} {} by {} since {}",
            self.kind.as_str(),
            self.release,
            self.operator,
            self.started
        );
        match self.liveness {
            Liveness::Running => format!("in progress: {what}"),
            Liveness::Interrupted => format!(
                "INTERRUPTED: {what}, stopped at {}; `shipdeck resume` continues it, `shipdeck rollback` undoes it",
                self.position
            ),
            Liveness::Elsewhere => format!(
                "in progress or interrupted on {}: {what}, at {}",
                self.operator.machine, self.position
            ),
        }
    }
}

/// The lock of `owner` belongs to an interrupted change of this machine.
pub fn lock_is_dead(owner: &LockOwner, this_machine: &Operator) -> bool {
    owner.change.is_some()
        && liveness(&owner.operator, owner.pid, this_machine) == Liveness::Interrupted
}

/// How often a paused change looks for a word from another machine.
pub const SIGNAL_POLL: Duration = Duration::from_secs(1);
