//! Signals to local processes, by system call. Not through `/usr/bin/kill`:
//! procps' kill reads `kill -KILL -1234` as an option list and has been seen
//! here to signal every process of the user (kill(-1)).

use crate::model::journal::Liveness;
use crate::model::{LockOwner, Operator};

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

/// A process on this machine is alive when signal 0 reaches it.
pub fn liveness(operator: &Operator, pid: u32, this_machine: &Operator) -> Liveness {
    if operator.machine != this_machine.machine {
        return Liveness::Elsewhere;
    }
    // kill(pid, 0) fails with EPERM for another user's live process: that is
    // still a live process.
    let alive =
        process(pid, 0) || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if alive && !pid_reused(pid) {
        Liveness::Running
    } else {
        Liveness::Interrupted
    }
}

/// A live pid that is not a shipdeck process: the change's own process died
/// and the number went to another one. Where /proc cannot tell, the process
/// counts as the change's.
fn pid_reused(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
        let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
        !String::from_utf8_lossy(argv0).contains("shipdeck")
    })
}

/// The lock of `owner` belongs to an interrupted change of this machine.
pub fn lock_is_dead(owner: &LockOwner, this_machine: &Operator) -> bool {
    owner.change.is_some()
        && liveness(&owner.operator, owner.pid, this_machine) == Liveness::Interrupted
}

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
