//! The consoles that show a sandbox: each leaves its pid in
//! `.shipdeck/consoles/`, so a console that quits stops the sample apps
//! only when no other console still shows them.

use std::fs;
use std::path::{Path, PathBuf};

const DIR: &str = ".shipdeck/consoles";

/// This process shows the sandbox, until dropped.
#[derive(Debug)]
pub struct Showing {
    file: PathBuf,
}

impl Showing {
    /// Say that this process shows the sandbox at `config_dir`; `None` for a
    /// folder that is no sandbox, or where the note cannot be written (the
    /// apps then stop with this console, as with any other).
    pub fn start(config_dir: &Path) -> Option<Showing> {
        if !super::is_sandbox(config_dir) {
            return None;
        }
        let dir = config_dir.join(DIR);
        fs::create_dir_all(&dir).ok()?;
        let pid = std::process::id();
        let file = dir.join(pid.to_string());
        fs::write(&file, format!("{}\n", started(pid).unwrap_or_default())).ok()?;
        Some(Showing { file })
    }
}

impl Drop for Showing {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.file);
    }
}

/// When a process started, in clock ticks since boot: with its pid, what
/// tells it from a later process given the same pid.
fn started(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, in parentheses: state is the 1st field,
    // starttime the 20th.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

/// The pids of the live processes that say they show the sandbox at
/// `config_dir`. Notes of processes gone (a console killed) are removed.
pub fn others(config_dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir(config_dir.join(DIR)) else {
        return Vec::new();
    };
    let mut live = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let noted = fs::read_to_string(entry.path()).unwrap_or_default();
        let same = match (noted.trim().parse::<u64>().ok(), started(pid)) {
            (Some(noted), Some(now)) => noted == now,
            // No /proc: a live pid is all there is to go by.
            (None, None) => crate::signal::process(pid, 0),
            _ => false,
        };
        if same {
            live.push(pid);
        } else {
            let _ = fs::remove_file(entry.path());
        }
    }
    live.sort_unstable();
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_counts_while_its_process_lives_and_goes_with_it() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Showing::start(dir.path()).is_none(), "not a sandbox");
        fs::create_dir_all(dir.path().join(".shipdeck")).unwrap();
        fs::write(dir.path().join(".shipdeck/demo"), "").unwrap();
        let showing = Showing::start(dir.path()).unwrap();
        assert_eq!(others(dir.path()), [std::process::id()]);
        // A console killed: its pid is gone (past pid_max), its note too.
        let dead = dir.path().join(DIR).join("4194305");
        fs::write(&dead, "1\n").unwrap();
        // A pid given to a later process: the start time differs.
        let parent = std::os::unix::process::parent_id();
        let reused = dir.path().join(DIR).join(parent.to_string());
        fs::write(&reused, format!("{}\n", started(parent).unwrap() + 1)).unwrap();
        assert_eq!(others(dir.path()), [std::process::id()]);
        assert!(!dead.exists() && !reused.exists());
        drop(showing);
        assert!(others(dir.path()).is_empty());
    }
}
