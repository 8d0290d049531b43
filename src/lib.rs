//! shipdeck: ship releases to plain Linux hosts over SSH, from a terminal
//! console or headless. See docs/ARCHITECTURE.md for its rooms and arrows.

pub mod cli;
pub mod config;
pub mod demo;
pub mod engine;
pub mod host;
pub mod model;
pub mod monitor;
pub mod signal;
pub mod store;
pub mod transport;
pub mod tui;
