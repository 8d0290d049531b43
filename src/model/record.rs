//! What shipdeck writes on hosts: the lock owner and the history lines. These
//! are the shared truth between operators, so they are plain JSON.

use serde::{Deserialize, Serialize};

use super::{Operator, ReleaseId};

/// Written into `.shipdeck/lock/owner.json` when a lock is taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    #[serde(flatten)]
    pub operator: Operator,
    pub pid: u32,
    /// RFC 3339, UTC.
    pub since: String,
    pub reason: String,
    /// The change holding it, or `None` for a hold taken with `shipdeck lock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
}

impl LockOwner {
    /// A change's lock names its process; a hold taken with `shipdeck
    /// lock` outlives the process that took it, so it names none.
    pub fn describe(&self) -> String {
        match self.change {
            Some(_) => format!(
                "{} (pid {}) since {}: {}",
                self.operator, self.pid, self.since, self.reason
            ),
            None => format!(
                "{} since {} (shipdeck lock): {}",
                self.operator, self.since, self.reason
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Deploy,
    Promote,
    Rollback,
    /// Undo of a failed or cancelled change on a host that had already switched.
    Revert,
    Lock,
    Unlock,
    /// A blue/green change finished: the old slot stopped.
    Finish,
    /// History did not say what the host runs (a record was lost to a full
    /// disk or a kill): this record says it, from `current`.
    Reconcile,
}

impl Action {
    /// Whether a successful record of this action moved `current`.
    pub fn switches(self) -> bool {
        matches!(
            self,
            Action::Deploy
                | Action::Promote
                | Action::Rollback
                | Action::Revert
                | Action::Reconcile
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Promote => "promote",
            Action::Rollback => "rollback",
            Action::Revert => "revert",
            Action::Lock => "lock",
            Action::Unlock => "unlock",
            Action::Finish => "finish",
            Action::Reconcile => "reconcile",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Success,
    Failed,
}

/// What the health gate said after the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HealthVerdict {
    Passed,
    Failed,
    /// No `[health]` in the config: the gate passes once switch and restart succeed.
    NotConfigured,
    /// The change never reached the gate.
    NotRun,
}

impl HealthVerdict {
    pub fn gate_passed(self) -> bool {
        matches!(self, HealthVerdict::Passed | HealthVerdict::NotConfigured)
    }
}

/// One line of `.shipdeck/history.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRecord {
    /// RFC 3339, UTC.
    pub time: String,
    #[serde(flatten)]
    pub operator: Operator,
    /// Id shared by the records of one change across hosts.
    pub change: String,
    pub action: Action,
    pub env: String,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What `current` pointed at before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ReleaseId>,
    pub outcome: Outcome,
    /// The host's `current` went to `release` though the outcome is failed
    /// (a rollback whose gate then failed): the host is there, and the undo
    /// stack follows it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub switched: bool,
    pub health: HealthVerdict,
    pub duration_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The release carries a schema migration (what marked it): rolling back
    /// across it needs `--force`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<String>,
}
