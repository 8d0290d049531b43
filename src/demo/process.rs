//! The sample apps' processes: pid files, and stopping apps without ever
//! signalling a process that is not one (a stale pid file may name a pid the
//! system has since given to something else).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long an app gets to exit on SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// How long to wait for the kernel to reap a SIGKILLed app.
const KILL_GRACE: Duration = Duration::from_secs(1);
const STOP_POLL: Duration = Duration::from_millis(10);

/// The word that marks a sample app's command line.
const SUBCOMMAND: &str = "sample-app";

pub fn read_pid(pid_file: &Path) -> Option<u32> {
    fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 1)
}

/// Replace the pid file in one rename, so a reader (the old app's watchdog,
/// `--stop`) sees the old pid or the new one, never half a file.
pub fn write_pid(pid_file: &Path, pid: u32) -> io::Result<()> {
    let name = pid_file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pid".into());
    let tmp = pid_file.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, format!("{pid}\n"))?;
    fs::rename(&tmp, pid_file).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

fn have_proc() -> bool {
    Path::new("/proc/self/cmdline").exists()
}

/// A live process's arguments; `None` when it is gone or a zombie (dead,
/// only waiting for its parent to read its status).
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The state follows the command name, which is in parentheses and may
    // itself hold spaces or parentheses: read it after the last ')'.
    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
    if matches!(state, 'Z' | 'X') {
        return None;
    }
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

pub fn is_alive(pid: u32) -> bool {
    if have_proc() {
        cmdline(pid).is_some()
    } else {
        crate::signal::process(pid, 0)
    }
}

/// A running app (not a `--stop` or a `--detach` launcher, which end by themselves).
fn is_app(args: &[String]) -> bool {
    args.iter().any(|a| a == SUBCOMMAND) && !args.iter().any(|a| a == "--stop" || a == "--detach")
}

/// Whether `pid` is a running sample app. Without /proc there is no telling;
/// the pid file is then trusted.
pub fn is_sample_app(pid: u32) -> bool {
    if !have_proc() {
        return crate::signal::process(pid, 0);
    }
    cmdline(pid).is_some_and(|args| is_app(&args))
}

/// The pid file a sample app's command line names.
fn pid_file_arg(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--pid-file" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--pid-file=") {
            return Some(PathBuf::from(v));
        }
    }
    None
}

/// A path with its existing part resolved, so two spellings of one folder
/// (a symlinked /tmp, a relative path) compare equal.
fn resolved(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    if let Ok(c) = fs::canonicalize(&abs) {
        return c;
    }
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => resolved(parent).join(name),
        _ => abs,
    }
}

/// Every running sample app whose pid file lies under `dir`: found through
/// /proc, so an app whose pid file was lost is stopped too.
pub fn apps_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let dir = resolved(dir);
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            cmdline(*pid).is_some_and(|args| {
                is_app(&args) && pid_file_arg(&args).is_some_and(|f| resolved(&f).starts_with(&dir))
            })
        })
        .collect()
}

/// Stop these apps: SIGTERM (they clean up and exit at once), then SIGKILL
/// for any still running after `STOP_GRACE`. Pids that are not sample apps
/// are left alone.
pub fn stop_pids(pids: &[u32]) {
    let ours: Vec<u32> = pids.iter().copied().filter(|p| is_sample_app(*p)).collect();
    for pid in &ours {
        crate::signal::process(*pid, crate::signal::SIGTERM);
    }
    if wait_gone(&ours, STOP_GRACE) {
        return;
    }
    for pid in ours.iter().filter(|p| is_alive(**p)) {
        crate::signal::process(*pid, crate::signal::SIGKILL);
    }
    wait_gone(&ours, KILL_GRACE);
}

/// Whether every one of `pids` exited within `within`.
fn wait_gone(pids: &[u32], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pids.iter().all(|p| !is_alive(*p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(STOP_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_running_apps_count_as_apps() {
        assert!(is_app(&args(&["/x/shipdeck", "sample-app", "--port", "1"])));
        assert!(!is_app(&args(&["/x/shipdeck", "sample-app", "--stop"])));
        assert!(!is_app(&args(&["/x/shipdeck", "sample-app", "--detach"])));
        assert!(!is_app(&args(&["/x/shipdeck", "status"])));
    }

    #[test]
    fn finds_the_pid_file_in_both_spellings() {
        assert_eq!(
            pid_file_arg(&args(&["sample-app", "--pid-file", "/a/b.pid"])),
            Some(PathBuf::from("/a/b.pid"))
        );
        assert_eq!(
            pid_file_arg(&args(&["sample-app", "--pid-file=/a/b.pid"])),
            Some(PathBuf::from("/a/b.pid"))
        );
        assert_eq!(pid_file_arg(&args(&["sample-app"])), None);
    }

    #[test]
    fn pid_files_round_trip_and_reject_junk() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.pid");
        assert_eq!(read_pid(&f), None);
        write_pid(&f, 4242).unwrap();
        assert_eq!(read_pid(&f), Some(4242));
        fs::write(&f, "1\n").unwrap();
        assert_eq!(read_pid(&f), None, "never signal init");
        fs::write(&f, "nope").unwrap();
        assert_eq!(read_pid(&f), None);
    }

    #[test]
    fn this_process_is_alive_and_not_an_app() {
        assert!(is_alive(std::process::id()));
        assert!(!is_sample_app(std::process::id()));
    }
}
