//! One type for everything an operator asks of an environment's hosts, so
//! that the console and the headless CLI send the same commands to
//! [`Engine::run`] (see docs/ARCHITECTURE.md).

use super::{ChangeOptions, ChangeReport, Control, Engine, EngineError, LockReport};
use crate::model::ReleaseId;

/// A request that acts on hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Deploy {
        env: String,
        release: ReleaseId,
    },
    /// Deploy a release that passed the environment `to` requires.
    Promote {
        release: ReleaseId,
        to: String,
    },
    /// Back to the previous release, or to `to`.
    Rollback {
        env: String,
        to: Option<ReleaseId>,
    },
    /// Continue an interrupted change from where it stopped.
    Resume {
        env: String,
    },
    /// A word for a paused change, left on its hosts: next step, every
    /// remaining step, or abort.
    Signal {
        env: String,
        control: Control,
    },
    /// Stop the old slots of a blue/green change (of `change` only, or all).
    Finish {
        env: String,
        change: Option<String>,
    },
    /// Hold the environment: no change starts until it is unlocked.
    Lock {
        env: String,
        reason: String,
    },
    Unlock {
        env: String,
        force: bool,
        reason: Option<String>,
    },
}

/// What a command did.
#[derive(Debug)]
pub enum Done {
    /// A change ran: its report (exit code, hosts, outcome).
    Change(ChangeReport),
    /// A word was left for a paused change; what it said.
    Told(String),
    Lock(LockReport),
}

impl Command {
    /// The environment the command acts on.
    pub fn env(&self) -> &str {
        match self {
            Command::Deploy { env, .. }
            | Command::Rollback { env, .. }
            | Command::Resume { env }
            | Command::Signal { env, .. }
            | Command::Finish { env, .. }
            | Command::Lock { env, .. }
            | Command::Unlock { env, .. } => env,
            Command::Promote { to, .. } => to,
        }
    }

    /// Whether it runs a change (which `cancel` stops and which reports
    /// per host), rather than leaving a word or a lock.
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Command::Deploy { .. }
                | Command::Promote { .. }
                | Command::Rollback { .. }
                | Command::Resume { .. }
                | Command::Finish { .. }
        )
    }
}

impl Engine {
    /// Run a command. `opts` carries what the operator said with it: a
    /// deploy window override and its reason, `--force` across a migration.
    pub fn run(&self, command: &Command, opts: &ChangeOptions) -> Result<Done, EngineError> {
        Ok(match command {
            Command::Deploy { env, release } => Done::Change(self.deploy_with(env, release, opts)?),
            Command::Promote { release, to } => Done::Change(self.promote_with(release, to, opts)?),
            Command::Rollback { env, to } => {
                Done::Change(self.rollback_with(env, to.as_ref(), opts)?)
            }
            Command::Resume { env } => Done::Change(self.resume(env, opts)?),
            Command::Signal { env, control } => Done::Told(self.signal(env, *control)?),
            Command::Finish { env, change } => {
                Done::Change(self.finish_change_with(env, change.as_deref(), opts)?)
            }
            Command::Lock { env, reason } => Done::Lock(self.lock(env, reason)?),
            Command::Unlock { env, force, reason } => {
                Done::Lock(self.unlock(env, *force, reason.as_deref())?)
            }
        })
    }

    /// Run a command that is a change, for its report.
    pub fn run_change(
        &self,
        command: &Command,
        opts: &ChangeOptions,
    ) -> Result<ChangeReport, EngineError> {
        match self.run(command, opts)? {
            Done::Change(report) => Ok(report),
            Done::Told(_) | Done::Lock(_) => {
                Err(EngineError::Usage(format!("{command:?} is not a change")))
            }
        }
    }
}
