//! What a change is and the steps it takes on a host, as the journal on the
//! host names them.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Connect,
    Lock,
    Upload,
    Link,
    BeforeSwitch,
    RunOnce,
    Switch,
    Restart,
    Health,
    AfterSwitch,
    Record,
    Cleanup,
    Unlock,
    Revert,
    /// `on_rollback` hooks, after a host went back.
    OnRollback,
    /// Blue/green: start the release on the idle slot.
    StartSlot,
    /// Blue/green: stop the old slot once the change is finished.
    StopSlot,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Connect => "connect",
            Step::Lock => "lock",
            Step::Upload => "upload",
            Step::Link => "link shared",
            Step::BeforeSwitch => "before_switch",
            Step::RunOnce => "run_once",
            Step::Switch => "switch",
            Step::Restart => "restart",
            Step::Health => "health gate",
            Step::AfterSwitch => "after_switch",
            Step::Record => "record",
            Step::Cleanup => "cleanup",
            Step::Unlock => "unlock",
            Step::Revert => "revert",
            Step::OnRollback => "on_rollback",
            Step::StartSlot => "start slot",
            Step::StopSlot => "stop old slot",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    Deploy,
    Promote,
    Rollback,
    /// Stop the old slot of a blue/green change.
    Finish,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Deploy => "deploy",
            ChangeKind::Promote => "promote",
            ChangeKind::Rollback => "rollback",
            ChangeKind::Finish => "finish",
        }
    }
}
