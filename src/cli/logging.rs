//! shipdeck's own log: always a file, bounded in size; with `-v` a copy on
//! stderr too (never under the console, which owns the terminal).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

/// Past this size the log is moved to `shipdeck.log.1` (replacing the one
/// before) and a new one started: at most twice this on disk.
pub const LOG_LIMIT: u64 = 5 * 1024 * 1024;

/// `-q`, nothing, `-v`, `-vv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Info,
    Debug,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: u8) -> Self {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Info,
            (false, _) => Verbosity::Debug,
        }
    }
}

/// `$XDG_STATE_HOME/shipdeck/shipdeck.log` (usually `~/.local/state/shipdeck/`).
pub fn log_path() -> Option<PathBuf> {
    Some(
        dirs::state_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))?
            .join("shipdeck/shipdeck.log"),
    )
}

/// A log file that moves itself aside when it reaches `limit` bytes.
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    limit: u64,
}

impl RotatingFile {
    pub fn open(path: &Path, limit: u64) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let written = file.metadata()?.len();
        let mut f = RotatingFile {
            path: path.to_owned(),
            file,
            written,
            limit,
        };
        if f.written >= limit {
            f.rotate()?;
        }
        Ok(f)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        std::fs::rename(&self.path, &old)?;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Another shipdeck may have rotated it meanwhile: a rename failing
        // must not lose the line.
        if self.written + buf.len() as u64 > self.limit && self.written > 0 {
            let _ = self.rotate();
        }
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Start logging. `RUST_LOG` picks the file's level (default info, debug
/// under `-vv`); `-v`/`-vv` copy info/debug to stderr unless `console`.
/// Without a writable state dir there is no file, only stderr if asked.
pub fn init(verbosity: Verbosity, console: bool) {
    let file_default = if verbosity == Verbosity::Debug {
        "shipdeck=debug"
    } else {
        "shipdeck=info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(file_default));
    let file = log_path().and_then(|p| RotatingFile::open(&p, LOG_LIMIT).ok());
    let file_layer = file.map(|f| {
        fmt::layer()
            .with_writer(std::sync::Mutex::new(f))
            .with_ansi(false)
            .with_filter(filter)
    });
    let stderr_level = match verbosity {
        _ if console => None,
        Verbosity::Info => Some(LevelFilter::INFO),
        Verbosity::Debug => Some(LevelFilter::DEBUG),
        Verbosity::Quiet | Verbosity::Normal => None,
    };
    let stderr_layer = stderr_level.map(|level| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_filter(tracing_subscriber::filter::Targets::new().with_target("shipdeck", level))
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_moves_aside_at_its_limit_and_keeps_one_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shipdeck.log");
        let mut f = RotatingFile::open(&path, 100).unwrap();
        for i in 0..30 {
            writeln!(f, "line {i:02} of the log").unwrap();
        }
        let now = std::fs::metadata(&path).unwrap().len();
        let old = std::fs::metadata(dir.path().join("shipdeck.log.1"))
            .unwrap()
            .len();
        assert!(now <= 100 && old <= 100, "{now} {old}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("line 29 of the log\n"), "{text}");
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 2);
        // A file already over the limit is moved aside when opened.
        drop(f);
        std::fs::write(&path, "x".repeat(150)).unwrap();
        let _f = RotatingFile::open(&path, 100).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
