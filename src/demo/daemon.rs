//! What every long-running demo process (the sample app, the blue/green
//! front) shares: its log file, its pid file, one way to exit, the threads
//! that end it on a signal or once its sandbox is gone, and starting it in
//! the background.
//!
//! Such a process must never outlive its sandbox: it exits on SIGTERM/SIGINT,
//! once its pid file names another process or is gone (a newer one took the
//! host, or the demo stopped it), and once the folder it watches is gone.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::process;

/// How often the watchdog checks the pid file and the folder it watches.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long to keep trying a port while the process it replaces lets go of it.
const BIND_RETRY: Duration = Duration::from_secs(5);
pub(super) const BIND_POLL: Duration = Duration::from_millis(50);
/// How long `--detach` waits for the new process to listen.
const START_TIMEOUT: Duration = Duration::from_secs(5);
const START_POLL: Duration = Duration::from_millis(10);
/// The log is rotated to `<log>.1` past this size, so a demo left running
/// for days fills no disk.
const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;

/// One running demo process: its log, its pid file, and its way out.
pub(super) struct Daemon {
    /// What the log calls it when it stops: `shop v2`, `front :8080`.
    name: String,
    pid: u32,
    pid_file: Option<PathBuf>,
    log: Mutex<LogFile>,
    exiting: AtomicBool,
}

impl Daemon {
    /// Open the log and claim the pid file. The error is for stderr: the log
    /// may be what failed.
    pub fn start(
        name: String,
        log: Option<PathBuf>,
        pid_file: Option<PathBuf>,
    ) -> Result<Arc<Daemon>, String> {
        let log = LogFile::open(log).map_err(|e| format!("cannot open the log: {e}"))?;
        let daemon = Arc::new(Daemon {
            name,
            pid: std::process::id(),
            pid_file,
            log: Mutex::new(log),
            exiting: AtomicBool::new(false),
        });
        if let Some(file) = &daemon.pid_file {
            if let Some(dir) = file.parent() {
                let _ = fs::create_dir_all(dir);
            }
            if let Err(e) = process::write_pid(file, daemon.pid) {
                let why = format!("cannot write {}: {e}", file.display());
                daemon.log("ERROR", &why);
                return Err(why);
            }
        }
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn log(&self, level: &str, message: &str) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .line(level, message);
    }

    /// Log why, give up the pid file if it is still ours, and exit. Only the
    /// first caller does it; any other thread that gets here waits for the end.
    pub fn exit(&self, why: &str, code: i32) -> ! {
        if self.exiting.swap(true, Ordering::SeqCst) {
            loop {
                std::thread::park();
            }
        }
        let level = if code == 0 { "INFO" } else { "ERROR" };
        self.log(level, &format!("{} stopping: {why}", self.name));
        if let Some(file) = &self.pid_file
            && process::read_pid(file) == Some(self.pid)
        {
            let _ = fs::remove_file(file);
        }
        std::process::exit(code)
    }

    /// Run `f` on a thread of its own; a process that cannot start one exits.
    pub fn spawn(self: &Arc<Self>, name: &str, f: impl FnOnce() + Send + 'static) {
        if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(f) {
            self.exit(&format!("cannot start the {name} thread: {e}"), 1);
        }
    }

    /// Start the threads that end this process on SIGTERM/SIGINT, once its
    /// pid file names another process or is gone, and once `watch` is gone.
    pub fn supervise(self: &Arc<Self>, watch: Option<PathBuf>) {
        let me = Arc::clone(self);
        self.spawn("signals", move || me.wait_for_signal());
        let me = Arc::clone(self);
        self.spawn("watchdog", move || me.watchdog(watch.as_deref()));
    }

    fn wait_for_signal(&self) {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            // Without a handler SIGTERM still ends the process, only without clean-up.
            return;
        };
        let name = rt.block_on(async {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return None;
            };
            tokio::select! {
                _ = term.recv() => Some("SIGTERM"),
                _ = int.recv() => Some("SIGINT"),
            }
        });
        if let Some(name) = name {
            self.exit(name, 0);
        }
    }

    fn watchdog(&self, watch: Option<&Path>) {
        loop {
            std::thread::sleep(WATCH_INTERVAL);
            if let Some(file) = &self.pid_file {
                match process::read_pid(file) {
                    Some(pid) if pid == self.pid => {}
                    Some(pid) => self.exit(&format!("pid {pid} took over this host"), 0),
                    None => self.exit(&format!("{} is gone", file.display()), 0),
                }
            }
            if let Some(dir) = watch
                && !dir.is_dir()
            {
                self.exit(&format!("{} is gone", dir.display()), 0);
            }
        }
    }
}

/// Bind 127.0.0.1:`port`, retrying while the process this one replaces lets
/// go of it.
pub(super) fn bind(port: u16) -> io::Result<TcpListener> {
    let deadline = Instant::now() + BIND_RETRY;
    loop {
        match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(BIND_POLL);
            }
            Err(e) => return Err(e),
        }
    }
}

/// `--detach`: run this program again with `args` in the background and
/// return once it listens on 127.0.0.1:`port`, so a hook ends quickly yet
/// fails when the process cannot start. `what` names it in what is printed.
pub(super) fn detach(
    args: Vec<OsString>,
    what: &str,
    port: u16,
    pid_file: Option<&Path>,
    log: Option<&Path>,
) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sample-app: cannot find this program: {e}");
            return 1;
        }
    };
    // A panic's message lands in the log, where the operator looks; the
    // hook's own pipes are let go so the hook can end.
    let stderr = log
        .and_then(|l| {
            if let Some(dir) = l.parent() {
                let _ = fs::create_dir_all(dir);
            }
            OpenOptions::new().create(true).append(true).open(l).ok()
        })
        .map_or_else(Stdio::null, Stdio::from);
    // Its own process group: a hook timeout kills the hook's group, and a
    // Ctrl-C in the operator's terminal hits the foreground group; neither
    // is the process's business.
    let mut child = match Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sample-app: cannot start: {e}");
            return 1;
        }
    };
    let pid = child.id();
    // Written here as well as by the process, so the pid file names it the
    // moment this returns (the demo's clean-up reads it).
    if let Some(file) = pid_file
        && let Err(e) = process::write_pid(file, pid)
    {
        eprintln!("sample-app: {}: {e}", file.display());
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!(
                "sample-app {what} exited at start ({status}); see {}",
                log.map_or("its output".into(), |l| l.display().to_string())
            );
            return 1;
        }
        if TcpStream::connect_timeout(&addr, START_POLL).is_ok() {
            println!("started {what} on 127.0.0.1:{port} (pid {pid})");
            return 0;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "sample-app {what} (pid {pid}) does not listen on 127.0.0.1:{port} after {START_TIMEOUT:?}"
            );
            return 1;
        }
        std::thread::sleep(START_POLL);
    }
}

/// A log file, appended to, rotated to `<log>.1` before it grows past
/// `LOG_ROTATE_BYTES`. Without a path, lines go to stdout (a foreground run
/// by hand). Several processes may write one log (a blue/green host's slots
/// and front): each line is one append, the size that decides is the file's
/// own, and a writer that finds the file rotated by another opens the new one.
struct LogFile {
    path: Option<PathBuf>,
    file: Option<File>,
    /// The inode of `file`, to tell when `path` names another file.
    inode: u64,
    limit: u64,
}

impl LogFile {
    fn open(path: Option<PathBuf>) -> io::Result<LogFile> {
        let mut log = LogFile {
            path,
            file: None,
            inode: 0,
            limit: LOG_ROTATE_BYTES,
        };
        log.reopen()?;
        Ok(log)
    }

    fn reopen(&mut self) -> io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        self.inode = file.metadata()?.ino();
        self.file = Some(file);
        Ok(())
    }

    fn line(&mut self, level: &str, message: &str) {
        let line = format!("{} {level} {message}\n", timestamp());
        let Some(path) = &self.path else {
            let _ = io::stdout().lock().write_all(line.as_bytes());
            return;
        };
        match fs::metadata(path) {
            // Another writer rotated it: follow.
            Ok(now) if now.ino() != self.inode => {
                let _ = self.reopen();
            }
            Ok(now) if now.len() > 0 && now.len() + line.len() as u64 > self.limit => {
                let mut old = path.clone().into_os_string();
                old.push(".1");
                let _ = fs::rename(path, old);
                let _ = self.reopen();
            }
            // Ours; or gone (a deleted sandbox), and not to be made again.
            _ => {}
        }
        // A failed write (disk full, folder deleted) loses a line of a demo
        // log; the watchdog ends the process if the sandbox is gone.
        if let Some(f) = &mut self.file {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// `2026-11-22T03:00:00.123Z`
fn timestamp() -> String {
    crate::model::time::utc_format(std::time::SystemTime::now(), "%Y-%m-%dT%H:%M:%S%.3fZ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_rfc3339_with_millis() {
        let t = timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }

    #[test]
    fn the_log_rotates_before_it_grows_past_its_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/app.log");
        let mut log = LogFile::open(Some(path.clone())).unwrap();
        log.line("INFO", "first");
        assert!(fs::read_to_string(&path).unwrap().contains(" INFO first"));
        log.limit = fs::metadata(&path).unwrap().len() + 10;
        log.line("INFO", "second");
        let old = fs::read_to_string(dir.path().join("log/app.log.1")).unwrap();
        assert!(old.contains("first") && !old.contains("second"), "{old}");
        log.limit = LOG_ROTATE_BYTES;
        log.line("INFO", "third");
        let new = fs::read_to_string(&path).unwrap();
        assert!(
            new.contains("second") && new.contains("third") && !new.contains("first"),
            "{new}"
        );
    }

    #[test]
    fn writers_of_one_log_follow_each_others_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/app.log");
        let mut blue = LogFile::open(Some(path.clone())).unwrap();
        let mut green = LogFile::open(Some(path.clone())).unwrap();
        blue.line("INFO", "blue 1");
        // The file's size decides, whoever wrote it.
        green.limit = fs::metadata(&path).unwrap().len() + 10;
        green.line("INFO", "green 1");
        blue.line("INFO", "blue 2");
        let old = fs::read_to_string(dir.path().join("log/app.log.1")).unwrap();
        assert_eq!(old.lines().count(), 1, "{old}");
        assert!(old.contains("blue 1"), "{old}");
        let new = fs::read_to_string(&path).unwrap();
        assert!(new.contains("green 1") && new.contains("blue 2"), "{new}");
        // A log whose folder is gone is not made again.
        fs::remove_dir_all(dir.path().join("log")).unwrap();
        blue.line("INFO", "blue 3");
        assert!(!dir.path().join("log").exists());
    }
}
