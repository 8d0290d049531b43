//! Domain types shared by every layer: validated ids, hosts, strategies and the
//! records kept on hosts.

pub mod canary;
pub mod change;
pub mod fit;
pub mod history;
mod host;
pub mod journal;
mod operator;
pub mod pattern;
pub mod pending;
pub mod prometheus;
mod record;
mod release_id;
pub mod sample;
pub mod shell;
mod strategy;
pub mod time;
pub mod window;

pub use host::{Host, HttpTarget, Origins, SshTarget, Target};
pub use operator::Operator;
pub use record::{Action, HealthVerdict, HistoryRecord, LockOwner, Outcome};
pub use release_id::{ReleaseId, ReleaseIdError};
pub use strategy::{BlueGreen, HostCount, Slot, Strategy};
