//! The on-host layout, written once over the `Transport` trait: lock, upload,
//! unpack, link, switch, record. One small function per remote command family
//! (the Kamal habit); each builds a script from quoted values and runs it.

pub mod health;
mod layout;
mod ops;
pub mod readings;
pub mod sh;
mod state;

pub use layout::Layout;
pub use ops::*;
pub use state::{CorruptLine, HISTORY_TAIL, HostState, LockState, parse_probe, probe_script};
