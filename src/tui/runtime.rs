//! Terminal and event loop: the only code that touches the terminal.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crossterm::event::{self, Event as TermEvent, KeyEventKind};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::app::{App, ChangeError, Effect, Msg};
use super::theme::Theme;
use super::view;
use crate::config::Config;
use crate::engine::{ChangeReport, Done, Engine, EngineError, EventSink};
use crate::monitor::{Monitor, MonitorEvent};
use crate::transport::CancelToken;

/// At most one frame this often: bursts of log lines become one redraw.
pub const FRAME: Duration = Duration::from_millis(16);
/// Frames driven only by monitor data come at most this often: log lines
/// trickling in need not cost a frame each (on the demo, 4 frames a second
/// were a third of the idle console's CPU; the health pane moves once a
/// second anyway, and a flood is taken from the inbox once a frame).
pub const MONITOR_FRAME: Duration = Duration::from_millis(500);
/// How often the clock of a running change (and a pause's countdown, and an
/// armed `R`) moves on screen.
const CHANGE_TICK: Duration = Duration::from_secs(1);
/// How often the local release store is read again (builds from another terminal).
const STORE_POLL: Duration = Duration::from_secs(3);
/// Messages handled before a frame is drawn, so a flood cannot starve the screen.
const DRAIN_MAX: usize = 50_000;

/// A change to run on its own thread.
type ChangeJob = Box<dyn FnOnce(&Engine) -> Result<ChangeReport, EngineError> + Send>;

/// Puts the terminal back however the console ends, panic included
/// (`ratatui::try_init` also installs a panic hook that restores it first).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

pub fn run(config: Arc<Config>, readonly: bool, accept_new_host_keys: bool) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    rt.block_on(main_loop(config, readonly, accept_new_host_keys))
}

fn spawn_input(tx: UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        loop {
            let msg = match event::read() {
                Ok(TermEvent::Key(k)) if k.kind != KeyEventKind::Release => Msg::Key(k),
                Ok(TermEvent::Resize(width, height)) => Msg::Resize(width, height),
                Ok(_) => continue,
                Err(_) => return,
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    });
}

fn spawn_store_poll(engine: Arc<Engine>, tx: UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        let mut last: Option<Vec<(String, String)>> = None;
        loop {
            if let Ok(list) = engine.store.list() {
                let manifests: Vec<_> = list.into_iter().map(|r| r.manifest).collect();
                let ids: Vec<(String, String)> = manifests
                    .iter()
                    .map(|m| (m.id.to_string(), m.sha256.clone()))
                    .collect();
                if last.as_ref() != Some(&ids) {
                    last = Some(ids);
                    if tx.send(Msg::Releases(manifests)).is_err() {
                        return;
                    }
                }
            }
            std::thread::sleep(STORE_POLL);
            if tx.is_closed() {
                return;
            }
        }
    });
}

fn run_effect(effect: Effect, engine: &Arc<Engine>, tx: &UnboundedSender<Msg>) -> bool {
    let start = |f: ChangeJob| {
        engine.reset_cancel();
        let engine = engine.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let result = f(&engine).map_err(|e| ChangeError::from(&e));
            let _ = tx.send(Msg::ChangeDone(result));
        });
    };
    match effect {
        Effect::Run(command, opts) if command.is_change() => {
            start(Box::new(move |e| e.run_change(&command, &opts)))
        }
        Effect::Run(command, opts) => {
            let engine = engine.clone();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let told = match engine.run(&command, &opts) {
                    Ok(Done::Told(said)) => Ok(said),
                    Ok(other) => Ok(format!("{other:?}")),
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(Msg::Told(told));
            });
        }
        Effect::Control { batch, word } => {
            // A pause that ended meanwhile says so in its own events.
            if !engine.control(batch, word) {
                tracing::info!(
                    batch,
                    word = word.as_str(),
                    "the pause was over before the word"
                );
            }
        }
        Effect::Cancel => engine.cancel_token().cancel(),
        Effect::Quit => return false,
    }
    true
}

/// Stops the engine's connection keeper however the loop ends.
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What the loop works with besides the `App`.
struct Parts {
    engine: Arc<Engine>,
    monitor: Monitor,
    tx: UnboundedSender<Msg>,
    /// The monitor said log lines wait in its inbox: take them before the
    /// next frame.
    logs_waiting: bool,
}

impl Parts {
    /// Apply one message; false when the console should end.
    fn handle(&mut self, app: &mut App, msg: Msg) -> bool {
        if matches!(msg, Msg::Monitor(MonitorEvent::LogsWaiting { .. })) {
            self.logs_waiting = true;
            return true;
        }
        handle(app, msg, &self.engine, &self.tx)
    }

    /// The log lines that came since the last frame, all at once: a flood
    /// costs one batch a frame, and what the inbox dropped is counted.
    fn take_logs(&mut self, app: &mut App) {
        if std::mem::take(&mut self.logs_waiting) {
            for ev in self.monitor.take_logs() {
                app.update(Msg::Monitor(ev));
            }
        }
    }
}

/// The engine, the monitor and the threads that feed the loop; the
/// engine connects every host ahead of the first command.
fn start_parts(
    config: &Arc<Config>,
    accept_new_host_keys: bool,
) -> (Parts, UnboundedReceiver<Msg>, CancelToken) {
    let (tx, rx): (UnboundedSender<Msg>, UnboundedReceiver<Msg>) = unbounded_channel();
    let engine_tx = tx.clone();
    let engine = Arc::new(Engine::new(
        config.clone(),
        accept_new_host_keys,
        EventSink::from_fn(move |e| {
            let _ = engine_tx.send(Msg::Engine(e));
        }),
    ));
    let monitor_tx = tx.clone();
    let monitor = Monitor::start(
        config.clone(),
        config.ssh.settings(accept_new_host_keys),
        Arc::new(move |e| {
            let _ = monitor_tx.send(Msg::Monitor(e));
        }),
    );
    spawn_store_poll(engine.clone(), tx.clone());
    let stop = CancelToken::new();
    let (keeper, keep_stop) = (engine.clone(), stop.clone());
    std::thread::spawn(move || keeper.keep_connected(&keep_stop));
    let parts = Parts {
        engine,
        monitor,
        tx,
        logs_waiting: false,
    };
    (parts, rx, stop)
}

async fn main_loop(
    config: Arc<Config>,
    readonly: bool,
    accept_new_host_keys: bool,
) -> Result<(), String> {
    let (mut parts, mut rx, stop) = start_parts(&config, accept_new_host_keys);
    let _stop_keeping = CancelOnDrop(stop);
    // The console owns the terminal: a passphrase prompt would be drawn over.
    crate::transport::ssh::keys::forbid_prompt();
    let mut terminal = ratatui::try_init().map_err(|e| format!("cannot open the terminal: {e}"))?;
    let _guard = TerminalGuard;
    spawn_input(parts.tx.clone());

    let theme = Theme::from_env();
    let mut app = App::new(config, readonly);
    if let Ok(size) = terminal.size() {
        app.update(Msg::Resize(size.width, size.height));
    }
    // When the next frame is due: soon after a key or an engine event, at a
    // calmer pace when only monitor data (log lines, samples) came in.
    let mut pace: Option<Duration> = Some(FRAME);
    let mut last_draw = Instant::now() - FRAME;
    let mut tick = tokio::time::interval(CHANGE_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some(p) = pace {
            let due = last_draw + p;
            let now = Instant::now();
            if now >= due {
                parts.take_logs(&mut app);
                app.now = SystemTime::now();
                terminal
                    .draw(|f| view::draw(f, &app, &theme))
                    .map_err(|e| format!("cannot draw: {e}"))?;
                last_draw = now;
                pace = None;
                continue;
            }
            // Wait out the frame, but keep taking messages meanwhile.
            tokio::select! {
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    pace = Some(p.min(pace_for(&msg)));
                    if !parts.handle(&mut app, msg) { break; }
                }
                _ = tokio::time::sleep_until(due.into()) => {}
            }
            continue;
        }
        // Idle: block until something happens; tick only while a clock is
        // on screen (a change runs, a pause counts down, `R` is armed).
        let running = app.needs_clock();
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            _ = tick.tick(), if running => Some(Msg::Tick),
        };
        let Some(msg) = msg else { break };
        match drain(&mut parts, &mut app, &mut rx, msg) {
            Some(p) => pace = Some(p),
            None => break,
        }
    }
    Ok(())
}

/// Handle `first` and whatever else waits (up to [`DRAIN_MAX`]); the pace
/// of the frame they need, or `None` when the console should end.
fn drain(
    parts: &mut Parts,
    app: &mut App,
    rx: &mut UnboundedReceiver<Msg>,
    first: Msg,
) -> Option<Duration> {
    let mut p = pace_for(&first);
    if !parts.handle(app, first) {
        return None;
    }
    for _ in 0..DRAIN_MAX {
        let Ok(msg) = rx.try_recv() else { break };
        p = p.min(pace_for(&msg));
        if !parts.handle(app, msg) {
            return None;
        }
    }
    Some(p)
}

/// How soon a message needs to be on screen.
fn pace_for(msg: &Msg) -> Duration {
    match msg {
        Msg::Monitor(_) | Msg::Releases(_) => MONITOR_FRAME,
        _ => FRAME,
    }
}

/// Apply one message; false when the console should end.
fn handle(app: &mut App, msg: Msg, engine: &Arc<Engine>, tx: &UnboundedSender<Msg>) -> bool {
    app.now = SystemTime::now();
    for effect in app.update(msg) {
        if !run_effect(effect, engine, tx) {
            return false;
        }
    }
    true
}
