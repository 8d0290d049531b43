//! The sample app: a tiny HTTP/1.0 server on 127.0.0.1 (`/healthz`,
//! `/metrics`) that makes its own steady synthetic traffic, so a demo host
//! has live logs, health and metrics with nobody sending it requests.
//!
//! It must never outlive its sandbox: it exits on SIGTERM/SIGINT, once its
//! pid file names another process or is gone (a newer app took the host, or
//! the demo stopped it), and once the release folder it watches is gone.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::process;

/// Synthetic requests a second, and one log line for every `LOG_EVERY` of
/// them: 20 req/s and 5 lines/s, steady enough to watch, slow enough to read.
const TRAFFIC_TICK: Duration = Duration::from_millis(50);
const LOG_EVERY: u64 = 4;
/// How often the app checks its pid file and the folder it watches.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long to keep trying the port while the app it replaces lets go of it.
const BIND_RETRY: Duration = Duration::from_secs(5);
const BIND_POLL: Duration = Duration::from_millis(50);
/// How long `--detach` waits for the new app to listen.
const START_TIMEOUT: Duration = Duration::from_secs(5);
const START_POLL: Duration = Duration::from_millis(10);
/// A connection that sends nothing is dropped after this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once; more are closed at once (a flood costs threads).
const MAX_CONNECTIONS: usize = 32;
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// The log is rotated to `app.log.1` past this size, so a demo left running
/// for days fills no disk.
const LOG_ROTATE_BYTES: u64 = 8 * 1024 * 1024;
/// Latencies kept for the summary's quantiles.
const LATENCY_WINDOW: usize = 1024;
/// The bad release: the share of requests that fail starts here and climbs
/// by `BAD_ERROR_CLIMB` a second, up to `BAD_ERROR_MAX`.
const BAD_ERROR_START: f64 = 0.10;
const BAD_ERROR_CLIMB: f64 = 0.04;
const BAD_ERROR_MAX: f64 = 0.85;
/// Any slower than this is logged as a WARN.
const SLOW: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub log: Option<PathBuf>,
    pub pid_file: PathBuf,
    pub watch: Option<PathBuf>,
    pub release: String,
    pub bad: bool,
}

/// `--stop`: stop the app the pid file names and wait for it to be gone.
pub fn stop(pid_file: &Path) -> i32 {
    if let Some(pid) = process::read_pid(pid_file) {
        process::stop_pids(&[pid]);
        if process::read_pid(pid_file) == Some(pid) && !process::is_alive(pid) {
            let _ = fs::remove_file(pid_file);
        }
    }
    0
}

/// `--detach`: start the app in the background and return once it listens,
/// so a restart hook ends quickly yet fails when the app cannot start.
pub fn detach(o: &Options) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sample-app: cannot find this program: {e}");
            return 1;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.arg("sample-app")
        .arg("--port")
        .arg(o.port.to_string())
        .arg("--pid-file")
        .arg(&o.pid_file)
        .arg("--release")
        .arg(&o.release);
    if let Some(log) = &o.log {
        cmd.arg("--log").arg(log);
    }
    if let Some(watch) = &o.watch {
        cmd.arg("--watch").arg(watch);
    }
    if o.bad {
        cmd.arg("--bad");
    }
    // A panic's message lands in the app log, where the operator looks; the
    // hook's own pipes are let go so the hook can end.
    let stderr = o
        .log
        .as_ref()
        .and_then(|l| {
            if let Some(dir) = l.parent() {
                let _ = fs::create_dir_all(dir);
            }
            OpenOptions::new().create(true).append(true).open(l).ok()
        })
        .map_or_else(Stdio::null, Stdio::from);
    // Its own process group: a hook timeout kills the hook's group, and a
    // Ctrl-C in the operator's terminal hits the foreground group; neither
    // is the app's business.
    let mut child = match cmd
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
    // Written here as well as by the app, so the pid file names the new app
    // the moment this returns (the demo's clean-up reads it).
    if let Err(e) = process::write_pid(&o.pid_file, pid) {
        eprintln!("sample-app: {}: {e}", o.pid_file.display());
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, o.port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            eprintln!(
                "sample-app {} exited at start ({status}); see {}",
                o.release,
                o.log
                    .as_ref()
                    .map_or("its output".into(), |l| l.display().to_string())
            );
            return 1;
        }
        if TcpStream::connect_timeout(&addr, START_POLL).is_ok() {
            println!("started {} on 127.0.0.1:{} (pid {pid})", o.release, o.port);
            return 0;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "sample-app {} (pid {pid}) does not listen on 127.0.0.1:{} after {:?}",
                o.release, o.port, START_TIMEOUT
            );
            return 1;
        }
        std::thread::sleep(START_POLL);
    }
}

/// Run the app in the foreground until something tells it to stop.
pub fn run(o: Options) -> i32 {
    let log = match LogFile::open(o.log.clone()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sample-app: cannot open the log: {e}");
            return 1;
        }
    };
    let app = Arc::new(App {
        release: o.release.clone(),
        bad: o.bad,
        port: o.port,
        pid: std::process::id(),
        pid_file: o.pid_file.clone(),
        started: Instant::now(),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        stats: Mutex::new(Stats::default()),
        log: Mutex::new(log),
        exiting: AtomicBool::new(false),
    });
    if let Some(dir) = o.pid_file.parent() {
        let _ = fs::create_dir_all(dir);
    }
    if let Err(e) = process::write_pid(&o.pid_file, app.pid) {
        app.log(
            "ERROR",
            &format!("cannot write {}: {e}", o.pid_file.display()),
        );
        return 1;
    }
    let listener = match bind(o.port) {
        Ok(l) => l,
        Err(e) => app.exit(&format!("cannot listen on 127.0.0.1:{}: {e}", o.port), 1),
    };
    app.log(
        "INFO",
        &format!(
            "shop {} listening on 127.0.0.1:{} (pid {})",
            app.release, app.port, app.pid
        ),
    );
    if app.bad {
        app.log(
            "WARN",
            "orders: ORDERS_POOL_SIZE is not set, reservations run without a connection pool",
        );
    }
    spawn(&app, "signals", wait_for_signal);
    {
        let watch = o.watch.clone();
        spawn(&app, "watchdog", move |app| watchdog(app, watch.as_deref()));
    }
    spawn(&app, "traffic", traffic);
    serve(&app, &listener);
    app.exit("the listener failed", 1)
}

fn spawn(app: &Arc<App>, name: &str, f: impl FnOnce(&App) + Send + 'static) {
    let app2 = Arc::clone(app);
    if let Err(e) = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || f(&app2))
    {
        app.exit(&format!("cannot start the {name} thread: {e}"), 1);
    }
}

/// Bind, retrying while the app this one replaces lets go of the port.
fn bind(port: u16) -> io::Result<TcpListener> {
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

struct App {
    release: String,
    bad: bool,
    port: u16,
    pid: u32,
    pid_file: PathBuf,
    started: Instant,
    started_unix: f64,
    stats: Mutex<Stats>,
    log: Mutex<LogFile>,
    exiting: AtomicBool,
}

impl App {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self, level: &str, message: &str) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .line(level, message);
    }

    /// The share of requests the bad release fails, by how long it has run.
    fn error_share(&self) -> f64 {
        if !self.bad {
            return 0.0;
        }
        let secs = self.started.elapsed().as_secs_f64();
        (BAD_ERROR_START + BAD_ERROR_CLIMB * secs).min(BAD_ERROR_MAX)
    }

    /// Log why, give up the pid file if it is still ours, and exit. Only the
    /// first caller does it; any other thread that gets here waits for the end.
    fn exit(&self, why: &str, code: i32) -> ! {
        if self.exiting.swap(true, Ordering::SeqCst) {
            loop {
                std::thread::park();
            }
        }
        let level = if code == 0 { "INFO" } else { "ERROR" };
        self.log(level, &format!("shop {} stopping: {why}", self.release));
        if process::read_pid(&self.pid_file) == Some(self.pid) {
            let _ = fs::remove_file(&self.pid_file);
        }
        std::process::exit(code)
    }
}

fn wait_for_signal(app: &App) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        // Without a handler SIGTERM still ends the app, only without clean-up.
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
        app.exit(name, 0);
    }
}

fn watchdog(app: &App, watch: Option<&Path>) {
    loop {
        std::thread::sleep(WATCH_INTERVAL);
        match process::read_pid(&app.pid_file) {
            Some(pid) if pid == app.pid => {}
            Some(pid) => app.exit(&format!("pid {pid} took over this host"), 0),
            None => app.exit(&format!("{} is gone", app.pid_file.display()), 0),
        }
        if let Some(dir) = watch
            && !dir.is_dir()
        {
            app.exit(&format!("{} is gone", dir.display()), 0);
        }
    }
}

// ---- synthetic traffic ----

#[derive(Default)]
struct Stats {
    ok: u64,
    failed: u64,
    duration_sum: f64,
    recent: VecDeque<f64>,
}

impl Stats {
    fn record(&mut self, code: u16, took: Duration) {
        if code >= 500 {
            self.failed += 1;
        } else {
            self.ok += 1;
        }
        let secs = took.as_secs_f64();
        self.duration_sum += secs;
        if self.recent.len() == LATENCY_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(secs);
    }

    fn quantiles(&self, qs: &[f64]) -> Vec<f64> {
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        qs.iter()
            .map(|q| {
                if sorted.is_empty() {
                    return 0.0;
                }
                let i = ((sorted.len() - 1) as f64 * q).round() as usize;
                sorted[i.min(sorted.len() - 1)]
            })
            .collect()
    }
}

/// Method, path (`{id}` becomes a number), typical latency in ms, weight.
const ENDPOINTS: &[(&str, &str, u64, u64)] = &[
    ("GET", "/api/orders", 12, 30),
    ("GET", "/api/orders/{id}", 8, 20),
    ("POST", "/api/orders", 35, 8),
    ("GET", "/api/products", 15, 20),
    ("GET", "/api/cart", 6, 12),
    ("POST", "/api/checkout", 60, 5),
    ("GET", "/", 3, 5),
];

/// Where the bad release's panics surface: everything that reserves stock.
const FAILING: &[(&str, &str)] = &[
    ("GET", "/api/orders"),
    ("GET", "/api/orders/{id}"),
    ("POST", "/api/orders"),
    ("POST", "/api/checkout"),
];

const PANICS: &[&str] = &[
    "thread 'orders-worker-{n}' panicked at src/orders/reserve.rs:88:14: called `Option::unwrap()` on a `None` value",
    "thread 'orders-worker-{n}' panicked at src/orders/pool.rs:41:9: no connection available in a pool of size 0",
    "thread 'orders-worker-{n}' panicked at src/orders/reserve.rs:112:30: index out of bounds: the len is 0 but the index is 0",
];

/// One simulated request.
struct Request {
    method: &'static str,
    path: String,
    code: u16,
    took: Duration,
    panic: Option<String>,
}

fn simulate(rng: &mut Rng, error_share: f64) -> Request {
    let total: u64 = ENDPOINTS.iter().map(|e| e.3).sum();
    let mut pick = rng.below(total);
    let &(method, path, base_ms, _) = ENDPOINTS
        .iter()
        .find(|e| {
            if pick < e.3 {
                true
            } else {
                pick -= e.3;
                false
            }
        })
        .unwrap_or(&ENDPOINTS[0]);
    let id = (10_000 + rng.below(90_000)).to_string();
    if rng.chance(error_share) {
        // What breaks is the orders code, so failures land on its endpoints.
        let (method, path) = FAILING[rng.below(FAILING.len() as u64) as usize];
        let panic = PANICS[rng.below(PANICS.len() as u64) as usize]
            .replace("{n}", &(1 + rng.below(4)).to_string());
        return Request {
            method,
            path: path.replace("{id}", &id),
            code: 500,
            took: Duration::from_millis(1 + rng.below(4)),
            panic: Some(panic),
        };
    }
    // Mostly near the typical latency, now and then a slow one, as real
    // services go; the bad release is slower too.
    let mut ms = base_ms as f64 * (0.5 + rng.unit());
    if rng.chance(0.02) {
        ms *= 8.0 + 10.0 * rng.unit();
    }
    if error_share > 0.0 {
        ms *= 1.5;
    }
    Request {
        method,
        path: path.replace("{id}", &id),
        code: 200,
        took: Duration::from_secs_f64(ms.max(1.0) / 1000.0),
        panic: None,
    }
}

fn traffic(app: &App) {
    let mut rng = Rng::seeded(app.pid);
    let mut next = Instant::now();
    let mut n: u64 = 0;
    loop {
        next += TRAFFIC_TICK;
        let req = simulate(&mut rng, app.error_share());
        app.stats().record(req.code, req.took);
        n += 1;
        if n.is_multiple_of(LOG_EVERY) {
            let ms = req.took.as_millis();
            let line = format!("{} {} {} {ms}ms", req.method, req.path, req.code);
            match &req.panic {
                Some(p) => app.log("ERROR", &format!("{line} {p}")),
                None if req.took >= SLOW => app.log("WARN", &format!("{line} slow request")),
                None => app.log("INFO", &line),
            }
        }
        // Sleep to a schedule, not by a fixed amount, so the rate stays at
        // 20/s however long logging took.
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
}

/// xorshift64*: plenty for made-up traffic, and no dependency for it.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u32) -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng((nanos ^ (u64::from(salt) << 32)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

// ---- HTTP ----

fn serve(app: &Arc<App>, listener: &TcpListener) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(s) => s,
            // Out of file descriptors and the like: pass, rather than spin.
            Err(_) => {
                std::thread::sleep(BIND_POLL);
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let app = Arc::clone(app);
        let done = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("http".into())
            .spawn(move || {
                let _ = handle(&app, stream);
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn handle(app: &App, mut s: TcpStream) -> io::Result<()> {
    s.set_read_timeout(Some(CONNECTION_TIMEOUT))?;
    s.set_write_timeout(Some(CONNECTION_TIMEOUT))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let target = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                break (
                    req.method.unwrap_or_default().to_owned(),
                    req.path.unwrap_or_default().to_owned(),
                );
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_BYTES => {}
            _ => return respond(&mut s, 400, "text/plain", "bad request\n", false),
        }
    };
    let (method, path) = target;
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut s, 405, "text/plain", "only GET\n", false);
    }
    let path = path.split('?').next().unwrap_or_default();
    let (code, body) = match path {
        "/healthz" if app.bad => (
            500,
            format!(
                "unhealthy: orders worker panicking ({:.0}% of requests fail)\n",
                app.error_share() * 100.0
            ),
        ),
        "/healthz" => (200, "ok\n".to_owned()),
        "/metrics" => {
            return respond(
                &mut s,
                200,
                "text/plain; version=0.0.4",
                &metrics(app),
                head_only,
            );
        }
        "/" => (
            200,
            format!(
                "shop {} ({})\n",
                app.release,
                if app.bad { "bad" } else { "good" }
            ),
        ),
        _ => (404, "not found\n".to_owned()),
    };
    respond(&mut s, code, "text/plain", &body, head_only)
}

fn respond(
    s: &mut TcpStream,
    code: u16,
    content_type: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Internal Server Error",
    };
    let mut out = format!(
        "HTTP/1.0 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    s.write_all(out.as_bytes())?;
    s.flush()
}

/// The Prometheus text page: request counters by code, a latency summary,
/// and what runs.
fn metrics(app: &App) -> String {
    let (ok, failed, sum, q) = {
        let st = app.stats();
        (
            st.ok,
            st.failed,
            st.duration_sum,
            st.quantiles(&[0.5, 0.9, 0.99]),
        )
    };
    let release = prometheus_label(&app.release);
    let mode = if app.bad { "bad" } else { "good" };
    format!(
        "# HELP http_requests_total Requests served, by status code.\n\
         # TYPE http_requests_total counter\n\
         http_requests_total{{code=\"200\"}} {ok}\n\
         http_requests_total{{code=\"500\"}} {failed}\n\
         # HELP http_request_duration_seconds Time taken to serve a request.\n\
         # TYPE http_request_duration_seconds summary\n\
         http_request_duration_seconds{{quantile=\"0.5\"}} {:.6}\n\
         http_request_duration_seconds{{quantile=\"0.9\"}} {:.6}\n\
         http_request_duration_seconds{{quantile=\"0.99\"}} {:.6}\n\
         http_request_duration_seconds_sum {sum:.6}\n\
         http_request_duration_seconds_count {}\n\
         # HELP app_info The release this process runs.\n\
         # TYPE app_info gauge\n\
         app_info{{release=\"{release}\",mode=\"{mode}\"}} 1\n\
         # HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n\
         # TYPE process_start_time_seconds gauge\n\
         process_start_time_seconds {:.3}\n",
        q[0],
        q[1],
        q[2],
        ok + failed,
        app.started_unix,
    )
}

fn prometheus_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

// ---- log ----

/// The app's log file, appended to, rotated once past `LOG_ROTATE_BYTES`.
/// Without a path, lines go to stdout (a foreground run by hand).
struct LogFile {
    path: Option<PathBuf>,
    file: Option<File>,
    written: u64,
}

impl LogFile {
    fn open(path: Option<PathBuf>) -> io::Result<LogFile> {
        let mut log = LogFile {
            path,
            file: None,
            written: 0,
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
        self.written = file.metadata()?.len();
        self.file = Some(file);
        Ok(())
    }

    fn line(&mut self, level: &str, message: &str) {
        let line = format!("{} {level} {message}\n", timestamp());
        match &mut self.file {
            Some(f) => {
                // A failed write (disk full, folder deleted) loses a line of a
                // demo log; the watchdog ends the app if the sandbox is gone.
                if f.write_all(line.as_bytes()).is_ok() {
                    self.written += line.len() as u64;
                }
            }
            None => {
                let _ = io::stdout().lock().write_all(line.as_bytes());
            }
        }
        if self.written > LOG_ROTATE_BYTES
            && let Some(path) = &self.path
        {
            let mut old = path.clone().into_os_string();
            old.push(".1");
            let _ = fs::rename(path, old);
            let _ = self.reopen();
        }
    }
}

/// `2026-11-22T03:00:00.123Z`
fn timestamp() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    let now = time::OffsetDateTime::now_utc();
    now.format(&format)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_release_never_fails_and_a_bad_one_fails_more_and_more() {
        let mut rng = Rng::seeded(1);
        assert!((0..2000).all(|_| simulate(&mut rng, 0.0).code == 200));
        let failed = (0..2000)
            .filter(|_| simulate(&mut rng, 0.5).code == 500)
            .count();
        assert!((800..1200).contains(&failed), "{failed}");
        let r = (0..100)
            .map(|_| simulate(&mut rng, 1.0))
            .find(|r| r.code == 500)
            .unwrap();
        assert!(r.panic.unwrap().contains("panicked at"));
    }

    #[test]
    fn paths_are_filled_in() {
        let mut rng = Rng::seeded(7);
        for _ in 0..500 {
            let r = simulate(&mut rng, 0.0);
            assert!(
                r.path.starts_with('/') && !r.path.contains('{'),
                "{}",
                r.path
            );
            assert!(r.took >= Duration::from_millis(1));
        }
    }

    #[test]
    fn quantiles_come_from_the_recent_window() {
        let mut st = Stats::default();
        for ms in 1..=100 {
            st.record(200, Duration::from_millis(ms));
        }
        st.record(500, Duration::from_millis(1));
        assert_eq!((st.ok, st.failed), (100, 1));
        let q = st.quantiles(&[0.5, 0.99]);
        assert!((q[0] - 0.050).abs() < 0.002, "{q:?}");
        assert!((q[1] - 0.099).abs() < 0.002, "{q:?}");
        for _ in 0..LATENCY_WINDOW {
            st.record(200, Duration::from_millis(5));
        }
        assert_eq!(st.recent.len(), LATENCY_WINDOW);
        assert!((st.quantiles(&[0.99])[0] - 0.005).abs() < 1e-9);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(prometheus_label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }

    #[test]
    fn timestamps_look_like_rfc3339_with_millis() {
        let t = timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
