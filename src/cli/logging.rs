//! shipdeck's own logs go to a file, never to the terminal (the TUI owns it).

use std::path::PathBuf;

use tracing_subscriber::EnvFilter;

/// `$XDG_STATE_HOME/shipdeck/shipdeck.log` (usually `~/.local/state/shipdeck/`).
pub fn log_path() -> Option<PathBuf> {
    Some(
        dirs::state_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))?
            .join("shipdeck/shipdeck.log"),
    )
}

/// Start logging to the file; `RUST_LOG` picks the level. Without a writable
/// state dir there is simply no log.
pub fn init() {
    let Some(path) = log_path() else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("shipdeck=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
}
