//! Signals to local processes, by system call. Not through `/usr/bin/kill`:
//! procps' kill reads `kill -KILL -1234` as an option list and has been seen
//! here to signal every process of the user (kill(-1)).

/// Signal one process. Refuses pids that would mean "a group" or "everyone".
pub fn process(pid: u32, signal: i32) -> bool {
    match i32::try_from(pid) {
        // SAFETY: kill(2) with a positive pid touches only that process.
        Ok(p) if p > 1 => unsafe { libc::kill(p, signal) == 0 },
        _ => false,
    }
}

/// Signal a whole process group (a hook and everything it started).
pub fn group(pgid: u32, signal: i32) -> bool {
    match i32::try_from(pgid) {
        // SAFETY: a negative pid below -1 names exactly that process group.
        Ok(p) if p > 1 => unsafe { libc::kill(-p, signal) == 0 },
        _ => false,
    }
}

pub use libc::{SIGKILL, SIGTERM};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_signals_everyone() {
        assert!(!group(0, 0));
        assert!(!group(1, 0));
        assert!(!process(0, 0));
        assert!(!process(u32::MAX, 0));
    }

    #[test]
    fn signals_a_group_and_only_it() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        assert!(group(child.id(), SIGTERM));
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
}
