//! Console benchmarks (`cargo bench --bench console`): one frame with 50 hosts
//! and 5,000 log lines each; log lines from many host threads through the
//! console's channel and reducer onto the screen; memory of that state.
//! A fleet of 1,000 hosts: one frame, scrolling the host list, typing a host
//! filter and a log filter. Figures are printed, never asserted (they go in the README).
//! `cargo bench --bench console -- fleet` runs the 1,000-host part alone.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use shipdeck::config::Config;
use shipdeck::monitor::{HostKey, LogLine, MonitorEvent};
use shipdeck::tui::{App, Msg, render_to_buffer};

const HOSTS: usize = 50;
const LINES: usize = 5_000;

fn config() -> Arc<Config> {
    config_of(HOSTS, LINES)
}

fn config_of(hosts: usize, lines: usize) -> Arc<Config> {
    let hosts: Vec<String> = (0..hosts)
        .map(|i| format!("\"local:hosts/web-{i:02}\""))
        .collect();
    let src = format!(
        "[app]\nname = \"bench\"\nartifact = \"dist\"\ndeploy_to = \"/srv/bench\"\n\n[logs]\nfiles = [\"log\"]\nbuffer_lines = {lines}\n\n[environments.production]\nhosts = [{}]\n",
        hosts.join(", ")
    );
    Arc::new(Config::parse(Path::new("/bench/shipdeck.toml"), &src).expect("bench config"))
}

fn line(host: usize, n: usize) -> MonitorEvent {
    MonitorEvent::Log {
        key: HostKey { env: 0, host },
        line: LogLine {
            host,
            received: SystemTime::now(),
            text: format!(
                "2026-11-22T03:00:00Z INFO GET /api/orders/{n} 200 {}ms",
                n % 97
            ),
            error: n.is_multiple_of(50),
        },
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `key` pressed, then the frame drawn: what an operator waits for.
fn press(app: &mut App, code: KeyCode) -> Duration {
    let t = Instant::now();
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    std::hint::black_box(render_to_buffer(app, 120, 40));
    t.elapsed()
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "fleet {what}: median {:.3} ms, max {:.3} ms ({} frames)",
        ms(median(times.to_vec())),
        ms(times.iter().max().copied().unwrap_or_default()),
        times.len()
    );
}

/// 1,000 hosts, 100 log lines each: the console lists, scrolls and filters.
fn fleet() {
    const FLEET: usize = 1_000;
    const FLEET_LINES: usize = 100;
    let rss_before = rss_mib();
    let mut app = App::new(config_of(FLEET, FLEET_LINES), false);
    app.update(Msg::Resize(120, 40));
    for n in 0..FLEET_LINES {
        for h in 0..FLEET {
            app.update(Msg::Monitor(line(h, n)));
        }
    }
    let frames: Vec<Duration> = (0..100)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(render_to_buffer(&app, 120, 40));
            t.elapsed()
        })
        .collect();
    report("1,000 hosts listed, 120x40", &frames);
    let down: Vec<Duration> = (0..FLEET - 1)
        .map(|_| press(&mut app, KeyCode::Down))
        .collect();
    report("j through all 1,000 hosts, key + frame", &down);
    let pages: Vec<Duration> = (0..40).map(|_| press(&mut app, KeyCode::PageUp)).collect();
    report("PgUp, key + frame", &pages);
    let mut hosts = vec![press(&mut app, KeyCode::Char('s'))];
    hosts.extend("web-9".chars().map(|c| press(&mut app, KeyCode::Char(c))));
    hosts.push(press(&mut app, KeyCode::Enter));
    report(
        "host filter 'web-9' typed over 1,000 hosts, key + frame",
        &hosts,
    );
    let shown: Vec<Duration> = (0..110).map(|_| press(&mut app, KeyCode::Down)).collect();
    report("j through the 111 hosts shown, key + frame", &shown);
    let mut typed = vec![press(&mut app, KeyCode::Char('/'))];
    typed.extend(
        "orders/42 "
            .chars()
            .map(|c| press(&mut app, KeyCode::Char(c))),
    );
    typed.push(press(&mut app, KeyCode::Enter));
    report("log filter typed over 100,000 lines, key + frame", &typed);
    let filtered: Vec<Duration> = (0..100)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(render_to_buffer(&app, 120, 40));
            t.elapsed()
        })
        .collect();
    report("1,000 hosts, hosts and logs filtered, 120x40", &filtered);
    println!(
        "fleet: selected host {} after scrolling; RSS {:.1} MiB -> {:.1} MiB",
        app.host_name(app.selected_host()),
        rss_before,
        rss_mib()
    );
}

fn main() {
    if std::env::args().any(|a| a == "fleet") {
        fleet();
        return;
    }
    let rss_before = rss_mib();
    let mut app = App::new(config(), false);
    let fill = Instant::now();
    for n in 0..LINES {
        for h in 0..HOSTS {
            app.update(Msg::Monitor(line(h, n)));
        }
    }
    let fill = fill.elapsed();
    let rss_full = rss_mib();

    // One frame, as the runtime draws it, at two sizes.
    for (w, h) in [(120u16, 40u16), (80, 24), (200, 60)] {
        let times: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(render_to_buffer(&app, w, h));
                t.elapsed()
            })
            .collect();
        println!(
            "render {w}x{h}, {HOSTS} hosts x {LINES} lines: median {:.3} ms, max {:.3} ms",
            median(times.clone()).as_secs_f64() * 1e3,
            times
                .iter()
                .max()
                .copied()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3
        );
    }
    println!(
        "reducer: {} lines in {:.0} ms ({:.0} lines/s); RSS {:.1} MiB -> {:.1} MiB with {} lines held",
        HOSTS * LINES,
        fill.as_secs_f64() * 1e3,
        (HOSTS * LINES) as f64 / fill.as_secs_f64(),
        rss_before,
        rss_full,
        HOSTS * LINES
    );

    // The pipeline: 50 host threads send lines into the console's channel at
    // RATE lines/s in all (bursts every 10 ms, as reads from a socket come);
    // the loop drains, reduces and draws at most once per monitor frame, as
    // the runtime does. Falling behind shows as late frames.
    const RATE: usize = 250_000;
    const SECONDS: usize = 4;
    let total_per_host = RATE / HOSTS * SECONDS;
    let burst = RATE / HOSTS / 100;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let started = Instant::now();
    let producers: Vec<_> = (0..HOSTS)
        .map(|h| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                for n in 0..total_per_host {
                    if n % burst == 0 {
                        let due = start + Duration::from_millis((n / burst * 10) as u64);
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    }
                    if tx.send(Msg::Monitor(line(h, n))).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    drop(tx);
    let frame = shipdeck::tui::MONITOR_FRAME;
    let mut last_draw = Instant::now();
    let mut frames = 0;
    let mut received = 0usize;
    let mut worst_lag = Duration::ZERO;
    while let Some(msg) = rx.blocking_recv() {
        app.update(msg);
        received += 1;
        while let Ok(msg) = rx.try_recv() {
            app.update(msg);
            received += 1;
            if received.is_multiple_of(50_000) {
                break;
            }
        }
        if last_draw.elapsed() >= frame {
            std::hint::black_box(render_to_buffer(&app, 120, 40));
            worst_lag = worst_lag.max(last_draw.elapsed().saturating_sub(frame));
            last_draw = Instant::now();
            frames += 1;
        }
    }
    for p in producers {
        let _ = p.join();
    }
    let buf = render_to_buffer(&app, 120, 40);
    let screen: String = (0..40u16)
        .flat_map(|y| (0..120u16).map(move |x| (x, y)))
        .map(|(x, y)| buf[(x, y)].symbol().to_owned())
        .collect();
    let elapsed = started.elapsed();
    println!(
        "pipeline at {RATE} lines/s offered: {} lines from {HOSTS} threads in {:.0} ms = {:.0} lines/s, {frames} frames, worst frame late by {:.1} ms, newest line on screen: {}",
        received,
        elapsed.as_secs_f64() * 1e3,
        received as f64 / elapsed.as_secs_f64(),
        worst_lag.as_secs_f64() * 1e3,
        screen.contains(&format!("/api/orders/{} ", total_per_host - 1))
    );
    println!("RSS after the pipeline: {:.1} MiB", rss_mib());
    fleet();
}
