//! Domain types shared by every layer: validated ids, hosts, strategies and the
//! records kept on hosts.

mod host;
mod operator;
pub mod prometheus;
mod record;
mod release_id;
mod strategy;
pub mod time;

pub use host::{Host, HttpTarget, SshTarget, Target};
pub use operator::Operator;
pub use record::{Action, HealthVerdict, HistoryRecord, LockOwner, Outcome};
pub use release_id::{ReleaseId, ReleaseIdError};
pub use strategy::{BlueGreen, HostCount, Slot, Strategy};
