//! The consoles that show a sandbox: each process that builds or re-opens
//! one to show it leaves its pid in `.shipdeck/consoles/`, so a console
//! that quits stops the sample apps only when no other still shows them.

use std::fs;
use std::io;
use std::path::Path;

const DIR: &str = ".shipdeck/consoles";

/// Note that process `pid` shows the sandbox at `config_dir` (a console
/// opens on it). The note holds the process's start time, so a pid given
/// later to another process does not count.
pub fn note(config_dir: &Path, pid: u32) -> io::Result<()> {
    let dir = config_dir.join(DIR);
    fs::create_dir_all(&dir)?;
    fs::write(
        dir.join(pid.to_string()),
        format!("{}\n", started(pid).unwrap_or_default()),
    )
}

/// Process `pid` no longer shows the sandbox.
pub fn forget(config_dir: &Path, pid: u32) {
    let _ = fs::remove_file(config_dir.join(DIR).join(pid.to_string()));
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

/// The pids of the live processes noted as showing the sandbox at
/// `config_dir`. Notes of processes gone (a console killed) are removed.
pub fn showing(config_dir: &Path) -> Vec<u32> {
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
        let me = std::process::id();
        note(dir.path(), me).unwrap();
        assert_eq!(showing(dir.path()), [me]);
        // A console killed: its pid is gone (past pid_max), its note too.
        let dead = dir.path().join(DIR).join("4194305");
        fs::write(&dead, "1\n").unwrap();
        // A pid given to a later process: the start time differs.
        let parent = std::os::unix::process::parent_id();
        let reused = dir.path().join(DIR).join(parent.to_string());
        fs::write(&reused, format!("{}\n", started(parent).unwrap() + 1)).unwrap();
        assert_eq!(showing(dir.path()), [me]);
        assert!(!dead.exists() && !reused.exists());
        forget(dir.path(), me);
        assert!(showing(dir.path()).is_empty());
    }
}
