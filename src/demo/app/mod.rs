//! The sample app: a tiny HTTP/1.0 server on 127.0.0.1 (`/healthz`,
//! `/metrics`) that makes its own steady synthetic traffic, so a demo host
//! has live logs, health and metrics with nobody sending it requests.
//!
//! The bad release (`--bad`) passes its health check, as a release with a bug
//! in one code path does, and is bad where only traffic shows it: about a
//! third of its requests fail with a 5xx and an `ERROR ... panicked` line,
//! and every request is slower. A health gate lets it through; a canary
//! analysis of its error rate and error lines against the old release does not.
//!
//! A blue/green slot's app (`--slot blue --upstream-file F`) serves its port
//! the same way, but makes traffic only while it is live: while the front's
//! upstream file names its port. An idle slot (a new release being gated, or
//! the old one kept for a switch back) answers `/healthz` and `/metrics` and
//! stays quiet: its counters stop, its latency summary empties, and its log
//! says when it went live or idle. Its slot is in every line it logs, on `/`
//! and in `/metrics` (`app_info{slot=...}`, `app_live`).
//!
//! It never outlives its sandbox (see [`super::daemon`]).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::daemon::{self, BIND_POLL, Daemon};
use crate::model::Slot;

/// Synthetic requests a second, and one log line for every `LOG_EVERY` of
/// them: 20 req/s and 5 lines/s, steady enough to watch, slow enough to read.
/// A line is a sample of the requests, so the share of `ERROR` lines in the
/// log is the share of failed requests.
const TRAFFIC_TICK: Duration = Duration::from_millis(50);
const LOG_EVERY: u64 = 4;
/// A connection that sends nothing is dropped after this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once; more are closed at once (a flood costs threads).
const MAX_CONNECTIONS: usize = 32;
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Latencies kept for the summary's quantiles.
const LATENCY_WINDOW: usize = 1024;
/// The share of requests the bad release fails, from its first second on:
/// at 20 req/s a 20-second canary window holds ~400 requests and ~120
/// failures, and ~30 `ERROR` lines (~90 a minute).
pub(super) const BAD_ERROR_SHARE: f64 = 0.30;
/// The bad release's successful requests take this many times as long, and
/// its failures wait this long for a pooled connection before they panic.
const BAD_SLOWDOWN: f64 = 3.0;
const BAD_FAILURE_MS: (u64, u64) = (150, 400);
/// Its `/healthz` still passes, only slower: the console's health pane shows
/// the difference, the health gate does not fail on it.
const BAD_HEALTH_DELAY: Duration = Duration::from_millis(60);
/// Any slower than this is logged as a WARN.
const SLOW: Duration = Duration::from_millis(250);
/// How often a slot's app reads the upstream file to know whether it is
/// live: traffic follows a switch within this.
const LIVE_CHECK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub log: Option<PathBuf>,
    pub pid_file: PathBuf,
    pub watch: Option<PathBuf>,
    pub release: String,
    pub bad: bool,
    /// A blue/green slot's app: its slot, and the front's upstream file.
    pub slot: Option<(Slot, PathBuf)>,
}

impl Options {
    /// `shop v2`, or `[green] shop v2` for a slot's app: how its own lines
    /// (stopping, …) name it, with the slot first as in all its lines.
    fn name(&self) -> String {
        match &self.slot {
            Some((slot, _)) => format!("[{slot}] shop {}", self.release),
            None => format!("shop {}", self.release),
        }
    }
}

/// `--stop`: stop the process the pid file names and wait for it to be gone.
pub fn stop(pid_file: &std::path::Path) -> i32 {
    if let Some(pid) = super::process::read_pid(pid_file) {
        super::process::stop_pids(&[pid]);
        if super::process::read_pid(pid_file) == Some(pid) && !super::process::is_alive(pid) {
            let _ = std::fs::remove_file(pid_file);
        }
    }
    0
}

/// `--detach`: start the app in the background and return once it listens.
pub fn detach(o: &Options) -> i32 {
    let mut args: Vec<OsString> = vec![
        "sample-app".into(),
        "--port".into(),
        o.port.to_string().into(),
        "--pid-file".into(),
        o.pid_file.clone().into(),
        "--release".into(),
        o.release.clone().into(),
    ];
    if let Some(log) = &o.log {
        args.extend(["--log".into(), log.clone().into()]);
    }
    if let Some(watch) = &o.watch {
        args.extend(["--watch".into(), watch.clone().into()]);
    }
    if o.bad {
        args.push("--bad".into());
    }
    let mut what = o.release.clone();
    if let Some((slot, upstream_file)) = &o.slot {
        args.extend([
            "--slot".into(),
            slot.to_string().into(),
            "--upstream-file".into(),
            upstream_file.clone().into(),
        ]);
        what = format!("{what} [{slot}]");
    }
    daemon::detach(args, &what, o.port, Some(&o.pid_file), o.log.as_deref())
}

/// Run the app in the foreground until something tells it to stop.
pub fn run(o: Options) -> i32 {
    let life = match Daemon::start(o.name(), o.log.clone(), Some(o.pid_file.clone())) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("sample-app: {e}");
            return 1;
        }
    };
    let app = Arc::new(App {
        release: o.release.clone(),
        bad: o.bad,
        port: o.port,
        // Absolute, as the front has it.
        slot: o.slot.clone().map(|(slot, file)| SlotState {
            slot,
            upstream_file: std::path::absolute(&file).unwrap_or(file),
            live: Mutex::new(false),
        }),
        started_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        stats: Mutex::new(Stats::default()),
        life,
    });
    let listener = match daemon::bind(o.port) {
        Ok(l) => l,
        Err(e) => app
            .life
            .exit(&format!("cannot listen on 127.0.0.1:{}: {e}", o.port), 1),
    };
    app.log(
        "INFO",
        &format!(
            "shop {} listening on 127.0.0.1:{} (pid {})",
            app.release,
            o.port,
            app.life.pid()
        ),
    );
    // Live or idle from the start, and said so, before any traffic.
    app.check_live(true);
    if app.bad {
        app.log(
            "WARN",
            "orders: ORDERS_POOL_SIZE is not set, reservations run without a connection pool",
        );
    }
    app.life.supervise(o.watch.clone());
    {
        let app2 = Arc::clone(&app);
        app.life.spawn("traffic", move || traffic(&app2));
    }
    serve(&app, &listener);
    app.life.exit("the listener failed", 1)
}

struct App {
    release: String,
    bad: bool,
    port: u16,
    slot: Option<SlotState>,
    started_unix: f64,
    stats: Mutex<Stats>,
    life: Arc<Daemon>,
}

/// What a blue/green slot's app knows of the switch.
struct SlotState {
    slot: Slot,
    upstream_file: PathBuf,
    /// Whether the upstream file named this app's port when last read;
    /// held while it is read, so two readers around a switch cannot undo
    /// each other.
    live: Mutex<bool>,
}

impl SlotState {
    fn live(&self) -> MutexGuard<'_, bool> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl App {
    fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Log a line; a slot's app names its slot in each (`[green] GET ...`),
    /// as both slots of a host write to one log.
    fn log(&self, level: &str, message: &str) {
        match &self.slot {
            Some(s) => self.life.log(level, &format!("[{}] {message}", s.slot)),
            None => self.life.log(level, message),
        }
    }

    /// Whether traffic comes here: always, but for a slot the front does not
    /// send it to.
    fn is_live(&self) -> bool {
        self.slot.as_ref().is_none_or(|s| *s.live())
    }

    /// Read the upstream file again; log a switch to or from this slot (or
    /// the state found at start, `first`). Going idle empties the latency
    /// window: an idle slot serves nothing, and its quantiles say so.
    fn check_live(&self, first: bool) {
        let Some(s) = &self.slot else { return };
        let mut state = s.live();
        let (live, why) = live_state(&s.upstream_file, self.port);
        let was = std::mem::replace(&mut *state, live);
        if !live && (was || first) {
            self.stats().recent.clear();
        }
        if first || was != live {
            let word = if live { "live" } else { "idle" };
            self.log("INFO", &format!("{word}: {why}"));
        }
    }
}

/// Whether the upstream file names `port`, and what it says, for the log.
fn live_state(upstream_file: &Path, port: u16) -> (bool, String) {
    match super::front::upstream_port(upstream_file) {
        Ok(p) if p == port => (
            true,
            format!("the front sends traffic here (127.0.0.1:{port})"),
        ),
        Ok(p) => (
            false,
            format!("the front sends traffic to 127.0.0.1:{p}, none comes here"),
        ),
        Err(_) => (
            false,
            format!(
                "no slot is live yet ({} holds no port), none comes here",
                upstream_file.display()
            ),
        ),
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

    /// Quantiles of the recent window; NaN with nothing in it (an app that
    /// served nothing yet, an idle slot), as Prometheus clients have it.
    fn quantiles(&self, qs: &[f64]) -> Vec<f64> {
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        qs.iter()
            .map(|q| {
                if sorted.is_empty() {
                    return f64::NAN;
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

/// One request to the good release, or to the bad one (`bad`).
fn simulate(rng: &mut Rng, bad: bool) -> Request {
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
    if bad && rng.chance(BAD_ERROR_SHARE) {
        // What breaks is the orders code, so failures land on its endpoints,
        // after waiting for a connection from a pool that has none.
        let (method, path) = FAILING[rng.below(FAILING.len() as u64) as usize];
        let panic = PANICS[rng.below(PANICS.len() as u64) as usize]
            .replace("{n}", &(1 + rng.below(4)).to_string());
        let (lo, hi) = BAD_FAILURE_MS;
        return Request {
            method,
            path: path.replace("{id}", &id),
            code: 500,
            took: Duration::from_millis(lo + rng.below(hi - lo)),
            panic: Some(panic),
        };
    }
    // Mostly near the typical latency, now and then a slow one, as real
    // services go; the bad release is slower too.
    let mut ms = base_ms as f64 * (0.5 + rng.unit());
    if rng.chance(0.02) {
        ms *= 8.0 + 10.0 * rng.unit();
    }
    if bad {
        ms *= BAD_SLOWDOWN;
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
    let mut rng = Rng::seeded(app.life.pid());
    let mut next = Instant::now();
    let mut checked = Instant::now();
    let mut n: u64 = 0;
    loop {
        next += TRAFFIC_TICK;
        if checked.elapsed() >= LIVE_CHECK {
            app.check_live(false);
            checked = Instant::now();
        }
        if !app.is_live() {
            sleep_until(&mut next);
            continue;
        }
        let req = simulate(&mut rng, app.bad);
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
        sleep_until(&mut next);
    }
}

/// Sleep to a schedule, not by a fixed amount, so the rate stays at 20/s
/// however long logging took.
fn sleep_until(next: &mut Instant) {
    let now = Instant::now();
    if *next > now {
        std::thread::sleep(*next - now);
    } else {
        *next = now;
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
    if matches!(path, "/" | "/metrics") {
        // What they say of the slot is true now, not up to LIVE_CHECK ago.
        app.check_live(false);
    }
    let (code, body) = match path {
        "/healthz" => {
            // The bad release's bug is in the orders code, which a health
            // check does not touch: it passes, only slower.
            if app.bad {
                std::thread::sleep(BAD_HEALTH_DELAY);
            }
            (200, "ok\n".to_owned())
        }
        "/metrics" => {
            return respond(
                &mut s,
                200,
                "text/plain; version=0.0.4",
                &metrics(app),
                head_only,
            );
        }
        "/" => {
            let mode = if app.bad { "bad" } else { "good" };
            let slot = match &app.slot {
                Some(s) if app.is_live() => format!(" on {}, live", s.slot),
                Some(s) => format!(" on {}, idle", s.slot),
                None => String::new(),
            };
            (200, format!("shop {} ({mode}){slot}\n", app.release))
        }
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
    let (slot, live) = match &app.slot {
        Some(s) => (
            format!(",slot=\"{}\"", s.slot),
            format!(
                "# HELP app_live Whether the front sends this slot traffic (1) or not (0).\n\
                 # TYPE app_live gauge\n\
                 app_live {}\n",
                u8::from(app.is_live())
            ),
        ),
        None => (String::new(), String::new()),
    };
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
         app_info{{release=\"{release}\",mode=\"{mode}\"{slot}}} 1\n\
         {live}\
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

#[cfg(test)]
mod tests;
