//! Watching hosts: log tails now; health probes and metrics build on the same
//! kept-open connections.

pub mod logs;
