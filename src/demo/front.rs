//! `shipdeck sample-app front`: the traffic switch of a blue/green host. A
//! TCP proxy on 127.0.0.1 that sends each connection it accepts to
//! 127.0.0.1:PORT, PORT being what the upstream file holds at that moment.
//! A blue/green `switch` hook moves traffic by rewriting that file in one
//! rename (`printf %s "$SHIPDECK_SLOT_PORT" > f.tmp && mv f.tmp f`):
//! connections accepted after the rename go to the new slot, and those
//! already open stay on the slot they started on until they close.
//!
//! It knows nothing of HTTP, so it serves the sample app and anything else.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::daemon::{self, BIND_POLL, Daemon};
use super::process;

/// Connections proxied at once; more are closed at once (a flood costs
/// threads: two a connection).
const MAX_CONNECTIONS: usize = 64;
/// How long to wait for the upstream to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A connection on which neither side sends anything for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a quiet direction looks whether the whole connection is idle.
const IDLE_CHECK: Duration = Duration::from_secs(15);
/// The upstream file holds a port and perhaps a newline; anything much
/// longer is not a port.
const MAX_UPSTREAM_BYTES: u64 = 64;
/// A broken upstream (file missing, slot down) is logged at most this often,
/// however many connections hit it.
const ERROR_LOG_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Options {
    pub listen: u16,
    pub upstream_file: PathBuf,
    pub log: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub watch: Option<PathBuf>,
}

/// `--detach`: start the front in the background and return once it listens.
/// A front that runs already (its pid file names a running one, and its port
/// answers) is left as it is: a switch hook starts the front when needed.
pub fn detach(o: &Options) -> i32 {
    if let Some(pid) = o.pid_file.as_deref().and_then(process::read_pid)
        && process::is_sample_app(pid)
        && TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, o.listen)),
            CONNECT_TIMEOUT,
        )
        .is_ok()
    {
        println!("front runs already on 127.0.0.1:{} (pid {pid})", o.listen);
        return 0;
    }
    let mut args: Vec<OsString> = vec![
        "sample-app".into(),
        "front".into(),
        "--listen".into(),
        o.listen.to_string().into(),
        "--upstream-file".into(),
        o.upstream_file.clone().into(),
    ];
    if let Some(log) = &o.log {
        args.extend(["--log".into(), log.clone().into()]);
    }
    if let Some(pid_file) = &o.pid_file {
        args.extend(["--pid-file".into(), pid_file.clone().into()]);
    }
    if let Some(watch) = &o.watch {
        args.extend(["--watch".into(), watch.clone().into()]);
    }
    daemon::detach(
        args,
        "front",
        o.listen,
        o.pid_file.as_deref(),
        o.log.as_deref(),
    )
}

/// Run the front in the foreground until something tells it to stop.
pub fn run(o: Options) -> i32 {
    // Absolute, so a relative path means the same after anything changes the
    // working directory.
    let upstream_file = std::path::absolute(&o.upstream_file).unwrap_or(o.upstream_file.clone());
    let life = match Daemon::start(format!("front :{}", o.listen), o.log, o.pid_file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sample-app front: {e}");
            return 1;
        }
    };
    let listener = match daemon::bind(o.listen) {
        Ok(l) => l,
        Err(e) => life.exit(&format!("cannot listen on 127.0.0.1:{}: {e}", o.listen), 1),
    };
    life.log(
        "INFO",
        &format!(
            "front listening on 127.0.0.1:{} (pid {}), sending traffic to the port in {}",
            o.listen,
            life.pid(),
            upstream_file.display()
        ),
    );
    life.supervise(o.watch);
    let log = Arc::clone(&life);
    let front = Arc::new(Front::new(upstream_file, move |level, line| {
        log.log(level, line)
    }));
    front.serve(&listener);
    life.exit("the listener failed", 1)
}

type LogFn = dyn Fn(&str, &str) + Send + Sync;

/// The proxy itself, apart from the process around it (so tests run it on
/// a listener of their own).
pub(super) struct Front {
    upstream_file: PathBuf,
    log: Box<LogFn>,
    active: AtomicUsize,
    /// The upstream port of the last connection, to log each switch once.
    last: Mutex<Option<u16>>,
    /// When a broken upstream was last logged.
    last_error: Mutex<Option<Instant>>,
}

impl Front {
    pub fn new(upstream_file: PathBuf, log: impl Fn(&str, &str) + Send + Sync + 'static) -> Front {
        Front {
            upstream_file,
            log: Box::new(log),
            active: AtomicUsize::new(0),
            last: Mutex::new(None),
            last_error: Mutex::new(None),
        }
    }

    /// Accept connections until the listener fails.
    pub fn serve(self: &Arc<Self>, listener: &TcpListener) {
        for stream in listener.incoming() {
            let client = match stream {
                Ok(s) => s,
                // Out of file descriptors and the like: pass, rather than spin.
                Err(_) => {
                    std::thread::sleep(BIND_POLL);
                    continue;
                }
            };
            // Read at accept time: a switch applies to the next connection.
            let port = match upstream_port(&self.upstream_file) {
                Ok(p) => p,
                Err(why) => {
                    self.error(&format!("front: connection dropped: {why}"));
                    continue;
                }
            };
            self.note_upstream(port);
            if self.active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                self.active.fetch_sub(1, Ordering::SeqCst);
                self.error(&format!(
                    "front: connection dropped: {MAX_CONNECTIONS} connections are open already"
                ));
                continue;
            }
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("front".into())
                .spawn(move || {
                    if let Err(why) = me.proxy(client, port) {
                        me.error(&why);
                    }
                    me.active.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                self.active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn note_upstream(&self, port: u16) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if *last != Some(port) {
            let was = last.map_or(String::new(), |p| format!(" (was 127.0.0.1:{p})"));
            (self.log)(
                "INFO",
                &format!("front: traffic goes to 127.0.0.1:{port}{was}"),
            );
            *last = Some(port);
        }
    }

    /// Log an error, but not more than once every `ERROR_LOG_EVERY`.
    fn error(&self, message: &str) {
        let mut last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= ERROR_LOG_EVERY) {
            (self.log)("ERROR", message);
            *last = Some(Instant::now());
        }
    }

    /// Copy both ways until both sides are done. Each side's end of input is
    /// passed on as a half close, so a client that shuts down its writing
    /// half still gets the whole answer.
    fn proxy(&self, client: TcpStream, port: u16) -> Result<(), String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let upstream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .map_err(|e| format!("front: cannot reach the upstream 127.0.0.1:{port}: {e}"))?;
        let setup = |s: &TcpStream| {
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(IDLE_CHECK))?;
            s.set_write_timeout(Some(IDLE_TIMEOUT))
        };
        let (client_in, upstream_in) = setup(&client)
            .and_then(|()| setup(&upstream))
            .and_then(|()| Ok((client.try_clone()?, upstream.try_clone()?)))
            .map_err(|e| format!("front: connection to 127.0.0.1:{port}: {e}"))?;
        let activity = Arc::new(Activity::new());
        let seen = Arc::clone(&activity);
        let up = std::thread::Builder::new()
            .name("front-up".into())
            .spawn(move || pipe(client_in, upstream, &seen))
            .map_err(|e| format!("front: cannot start a thread: {e}"))?;
        pipe(upstream_in, client, &activity);
        let _ = up.join();
        Ok(())
    }
}

/// When either direction of a connection last moved a byte, so that a
/// direction that is quiet while the other streams is not taken for idle.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Copy `from` into `to` until `from` ends or fails, or the connection has
/// been idle both ways for `IDLE_TIMEOUT`, then pass the end on. Either way
/// this direction is over; there is no one to tell about an error.
fn pipe(mut from: TcpStream, mut to: TcpStream, activity: &Activity) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                activity.touch();
                if to.write_all(&buf[..n]).is_err() {
                    // The other side is gone: stop reading this one too.
                    let _ = from.shutdown(Shutdown::Read);
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && activity.idle() < IDLE_TIMEOUT => {}
            Err(_) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return;
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The port the upstream file names now.
pub(super) fn upstream_port(file: &Path) -> Result<u16, String> {
    let mut text = String::new();
    fs::File::open(file)
        .and_then(|f| f.take(MAX_UPSTREAM_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("cannot read the upstream port from {}: {e}", file.display()))?;
    let t = text.trim();
    match t.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "{} holds {t:?}, not a port from 1 to 65535",
            file.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    /// An upstream that answers each line with `<name>: <line>`, per
    /// connection, until the client closes.
    fn upstream(name: &'static str) -> u16 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut out = s.try_clone().unwrap();
                    for line in BufReader::new(s).lines() {
                        let Ok(line) = line else { break };
                        if writeln!(out, "{name}: {line}").is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    /// Rewrite the file as a switch hook does: a new file renamed over it.
    fn switch(file: &Path, port: u16) {
        let tmp = file.with_extension("tmp");
        fs::write(&tmp, port.to_string()).unwrap();
        fs::rename(&tmp, file).unwrap();
    }

    struct Running {
        port: u16,
        log: Arc<Mutex<Vec<String>>>,
    }

    fn front(file: &Path) -> Running {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        let f = Arc::new(Front::new(file.to_path_buf(), move |level, line| {
            lines.lock().unwrap().push(format!("{level} {line}"))
        }));
        std::thread::spawn(move || f.serve(&l));
        Running { port, log }
    }

    struct Client(BufReader<TcpStream>);

    impl Client {
        fn connect(port: u16) -> Client {
            let s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            Client(BufReader::new(s))
        }

        fn ask(&mut self, what: &str) -> String {
            writeln!(self.0.get_mut(), "{what}").unwrap();
            let mut answer = String::new();
            self.0.read_line(&mut answer).unwrap();
            answer.trim_end().to_owned()
        }
    }

    fn ask(port: u16, what: &str) -> String {
        Client::connect(port).ask(what)
    }

    #[test]
    fn each_new_connection_goes_where_the_file_says_at_accept_time() {
        let (blue, green) = (upstream("blue"), upstream("green"));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("upstream");
        switch(&file, blue);
        let f = front(&file);

        assert_eq!(ask(f.port, "hello"), "blue: hello");
        // A connection open across the switch stays on its slot.
        let mut open = Client::connect(f.port);
        assert_eq!(open.ask("before"), "blue: before");
        switch(&file, green);
        assert_eq!(ask(f.port, "hello"), "green: hello");
        assert_eq!(open.ask("after"), "blue: after");
        // And back, as a rollback before finishing does.
        fs::write(&file, format!("{blue}\n")).unwrap();
        assert_eq!(ask(f.port, "again"), "blue: again");

        let log = f.log.lock().unwrap().join("\n");
        assert!(
            log.contains(&format!(
                "INFO front: traffic goes to 127.0.0.1:{green} (was 127.0.0.1:{blue})"
            )),
            "{log}"
        );
    }

    #[test]
    fn a_half_closed_client_still_gets_the_whole_answer() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("upstream");
        switch(&file, upstream("blue"));
        let f = front(&file);
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, f.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let many: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        s.write_all(many.as_bytes()).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut all = String::new();
        s.read_to_string(&mut all).unwrap();
        assert_eq!(all.lines().count(), 2000);
        assert_eq!(all.lines().last(), Some("blue: line 1999"));
    }

    #[test]
    fn a_broken_upstream_drops_the_connection_and_is_logged() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("upstream");
        let f = front(&file);
        let closed = |port: u16| {
            let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let _ = writeln!(s, "anyone?");
            let mut got = Vec::new();
            // Closed without an answer (a reset is as good as an end).
            let _ = s.read_to_end(&mut got);
            got.is_empty()
        };
        assert!(closed(f.port), "no upstream file");
        fs::write(&file, "blue\n").unwrap();
        assert!(closed(f.port), "not a port");
        assert!(upstream_port(&file).unwrap_err().contains("not a port"));
        let gone = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        switch(&file, gone);
        std::thread::sleep(ERROR_LOG_EVERY);
        assert!(closed(f.port), "nothing listens there");
        // Fixed: served again.
        switch(&file, upstream("green"));
        assert_eq!(ask(f.port, "back?"), "green: back?");
        let log = f.log.lock().unwrap().join("\n");
        assert!(
            log.contains("ERROR front: connection dropped: cannot read"),
            "{log}"
        );
        assert!(
            log.contains(&format!(
                "ERROR front: cannot reach the upstream 127.0.0.1:{gone}"
            )),
            "{log}"
        );
    }

    #[test]
    fn upstream_files_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("upstream");
        for (text, want) in [
            ("8080", Ok(8080)),
            (" 8081\n", Ok(8081)),
            ("0", Err(())),
            ("70000", Err(())),
            ("", Err(())),
            ("127.0.0.1:8080", Err(())),
        ] {
            fs::write(&file, text).unwrap();
            assert_eq!(upstream_port(&file).map_err(|_| ()), want, "{text:?}");
        }
    }
}
