//! The command line: parse, run one command headless (or open the console),
//! print tables or JSON, and exit with the code DESIGN §4 promises.

mod args;
pub mod logging;
mod logs;
mod progress;
mod table;

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use clap::Parser;

use crate::config::Config;
use crate::engine::Command as Request;
use crate::engine::{
    CancelToken, ChangeOptions, ChangeReport, Control, Done, Engine, EngineError, EventSink,
    LockReport,
};
pub use args::{Cli, Command};

/// Exit codes (DESIGN §4).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const LOCKED: i32 = 3;
    pub const REFUSED: i32 = 4;
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    logging::init();
    tracing::info!(command = ?cli.command, "start");
    let flags = cli_flags(&cli);
    if flags.readonly
        && let Some(what) = cli.command.as_ref().and_then(Command::changes)
    {
        eprintln!("error: refused under --readonly: {what}; nothing was changed");
        return exit::USAGE;
    }
    let command = match cli.command {
        Some(Command::SampleApp(args)) => return crate::demo::sample_app(args),
        Some(Command::Demo { dir, no_console }) => {
            return match crate::demo::create(dir.as_deref()) {
                Ok(config) if no_console => {
                    println!("{}", config.display());
                    exit::OK
                }
                Ok(config) => {
                    let code = open_console(&flags, &config);
                    // The sample apps live as long as the console that shows them.
                    if let Some(dir) = config.parent() {
                        crate::demo::stop_apps(dir);
                    }
                    println!(
                        "the demo sandbox stays in {}",
                        config.parent().map_or_else(
                            || config.display().to_string(),
                            |d| d.display().to_string()
                        )
                    );
                    code
                }
                Err(e) => {
                    eprintln!("error: cannot build the demo: {e}");
                    exit::FAILED
                }
            };
        }
        None => {
            // A demo sandbox opened again: its sample apps run while the console does.
            let demo_dir = cli
                .config
                .parent()
                .map(|d| {
                    if d.as_os_str().is_empty() {
                        std::path::Path::new(".")
                    } else {
                        d
                    }
                })
                .filter(|d| crate::demo::is_sandbox(d))
                .map(std::path::Path::to_path_buf);
            if let Some(dir) = &demo_dir
                && let Err(e) = crate::demo::start_apps(dir)
            {
                eprintln!("warning: cannot start the demo's sample apps: {e}");
            }
            let code = open_console(&flags, &cli.config);
            if let Some(dir) = &demo_dir {
                crate::demo::stop_apps(dir);
            }
            return code;
        }
        Some(c) => c,
    };
    let config = match Config::load(&cli.config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    match run(&flags, config, command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

struct Flags {
    json: bool,
    yes: bool,
    accept_new_host_keys: bool,
    readonly: bool,
    lock_wait: std::time::Duration,
}

fn cli_flags(cli: &Cli) -> Flags {
    Flags {
        json: cli.json,
        yes: cli.yes,
        accept_new_host_keys: cli.accept_new_host_keys,
        readonly: cli.readonly,
        lock_wait: cli.lock_wait,
    }
}

/// `shipdeck` with no subcommand: the console on a config.
fn open_console(flags: &Flags, path: &std::path::Path) -> i32 {
    let config = match Config::load(path) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    match crate::tui::run(config, flags.readonly, flags.accept_new_host_keys) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::FAILED
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

/// Ctrl-C, SIGTERM (what CI runners send on cancel) and SIGHUP (a closed
/// terminal) stop a change between steps (switched hosts go back); a second
/// signal quits at once. The handlers are in place before this returns, so a
/// signal during the change is never the default one that kills mid-step.
fn cancel_on_ctrl_c(token: CancelToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let streams = {
        let _in_runtime = rt.enter();
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        )
    };
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = streams else {
        return;
    };
    std::thread::spawn(move || {
        rt.block_on(async {
            // The exit status a shell gives a process killed by the signal.
            let mut next = async || {
                tokio::select! {
                    _ = int.recv() => ("Ctrl-C", 130),
                    _ = term.recv() => ("SIGTERM", 143),
                    _ = hup.recv() => ("SIGHUP", 129),
                }
            };
            let (name, _) = next().await;
            token.cancel();
            // After a SIGHUP stderr may be gone: saying so must not stop the cancel.
            let _ = writeln!(
                std::io::stderr(),
                "\n{name}: cancelling: the change stops after the current step and switched hosts go back (a second Ctrl-C or signal quits at once; locks stay held)"
            );
            let (_, code) = next().await;
            std::process::exit(code);
        });
    });
}

fn run(flags: &Flags, config: Arc<Config>, command: Command) -> Result<i32, EngineError> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let printer = progress::spawn_printer(rx);
    let engine = Engine::new(config, flags.accept_new_host_keys, EventSink::new(tx));
    let result = dispatch(flags, &engine, command);
    drop(engine);
    let _ = printer.join();
    result
}

fn dispatch(flags: &Flags, engine: &Engine, command: Command) -> Result<i32, EngineError> {
    match command {
        Command::Demo { .. } | Command::SampleApp(_) => {
            unreachable!("handled before the config is read")
        }
        Command::Check { env } => {
            let report = engine.check(env.as_deref())?;
            if flags.json {
                print_json(&report);
            } else {
                table::check(&report);
            }
            Ok(report.exit_code())
        }
        Command::Build { id, notes } => {
            let r = engine.store.build(id, notes).map_err(|e| match e {
                crate::store::StoreError::Exists(_) | crate::store::StoreError::NoArtifact(_) => {
                    EngineError::Usage(e.to_string())
                }
                _ => EngineError::Failed(e.to_string()),
            })?;
            if flags.json {
                print_json(&r.manifest);
            } else {
                println!(
                    "built {} ({}, sha256 {}) in {}",
                    r.manifest.id,
                    crate::engine::bytes(r.manifest.size),
                    r.manifest.sha256,
                    r.tarball.display()
                );
            }
            Ok(exit::OK)
        }
        Command::Releases => {
            let releases = engine
                .store
                .list()
                .map_err(|e| EngineError::Failed(e.to_string()))?;
            let status = engine.status(None, false)?;
            let rows = table::release_rows(engine, &releases, &status);
            if flags.json {
                print_json(&rows);
            } else {
                table::releases(&rows);
            }
            Ok(exit::OK)
        }
        Command::Status { env } => {
            let status = engine.status(env.as_deref(), true)?;
            if flags.json {
                print_json(&status);
            } else {
                table::status(&status);
            }
            Ok(if status.iter().all(|s| s.reachable) {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Plan { env, release } => {
            let (plan, gate) = engine.plan(&env, &release)?;
            if flags.json {
                print_json(&serde_json::json!({
                    "plan": plan,
                    "refused": gate.as_ref().map(ToString::to_string),
                }));
            } else {
                table::plan(&plan, gate.as_ref());
            }
            Ok(gate.map_or(exit::OK, |g| g.exit_code()))
        }
        Command::Deploy {
            env,
            release,
            window,
        } => change(
            flags,
            engine,
            Request::Deploy { env, release },
            window.options(),
        ),
        Command::Promote {
            release,
            to,
            window,
        } => change(
            flags,
            engine,
            Request::Promote { release, to },
            window.options(),
        ),
        Command::Rollback {
            env,
            to,
            force,
            skip_unreachable,
        } => change(
            flags,
            engine,
            Request::Rollback { env, to },
            ChangeOptions {
                force,
                skip_unreachable,
                ..ChangeOptions::default()
            },
        ),
        Command::Resume { env, window } => {
            change(flags, engine, Request::Resume { env }, window.options())
        }
        Command::Continue { env, all } => {
            let control = if all { Control::Promote } else { Control::Next };
            said(flags, engine, Request::Signal { env, control })
        }
        Command::Finish { env } => change(
            flags,
            engine,
            Request::Finish { env, change: None },
            ChangeOptions::default(),
        ),
        Command::Abort { env } => said(
            flags,
            engine,
            Request::Signal {
                env,
                control: Control::Abort,
            },
        ),
        Command::Logs { env, host, lines } => {
            logs::follow(engine, &env, host.as_deref(), lines, flags.json)
        }
        Command::History { env } => {
            let (records, errors) = engine.history(env.as_deref())?;
            for e in &errors {
                eprintln!("warning: {e}");
            }
            if flags.json {
                print_json(&records);
            } else {
                table::history(&records);
            }
            Ok(if errors.is_empty() {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        Command::Lock { env, reason } => {
            let r = locked(
                engine,
                Request::Lock {
                    env: env.clone(),
                    reason: reason.clone(),
                },
            )?;
            if flags.json {
                print_json(&r);
            } else if let (true, Some(kept)) = (r.changed.is_empty(), &r.kept) {
                println!("{env} was already locked by {kept}; that hold and its reason stay");
            } else {
                println!("{env} is locked ({}): {reason}", engine.operator);
            }
            Ok(exit::OK)
        }
        Command::Unlock { env, force, reason } => {
            if force && !flags.yes {
                confirm(&format!(
                    "Break the lock on {env} even if someone else holds it?"
                ))?;
            }
            let r = locked(
                engine,
                Request::Unlock {
                    env: env.clone(),
                    force,
                    reason,
                },
            )?;
            if flags.json {
                print_json(&r);
            } else if r.changed.is_empty() {
                println!("{env} was not locked");
            } else {
                println!(
                    "{env} is unlocked ({} host{})",
                    r.changed.len(),
                    if r.changed.len() == 1 { "" } else { "s" }
                );
            }
            Ok(exit::OK)
        }
    }
}

/// A change run headless: Ctrl-C stops it after the current step, and a
/// blue/green change waits out its `finish_after` here.
fn change(
    flags: &Flags,
    engine: &Engine,
    command: Request,
    opts: ChangeOptions,
) -> Result<i32, EngineError> {
    let opts = ChangeOptions {
        lock_wait: Some(flags.lock_wait),
        ..opts
    };
    cancel_on_ctrl_c(engine.cancel_token());
    let report = engine.run_change(&command, &opts)?;
    match command {
        Request::Rollback { .. } | Request::Finish { .. } => finish(flags, &report),
        _ => shipped(flags, engine, report),
    }
}

fn said(flags: &Flags, engine: &Engine, command: Request) -> Result<i32, EngineError> {
    match engine.run(&command, &ChangeOptions::default())? {
        Done::Told(message) => told(flags, message),
        other => Err(EngineError::Usage(format!(
            "{command:?} said nothing: {other:?}"
        ))),
    }
}

fn locked(engine: &Engine, command: Request) -> Result<LockReport, EngineError> {
    match engine.run(&command, &ChangeOptions::default())? {
        Done::Lock(report) => Ok(report),
        other => Err(EngineError::Usage(format!(
            "{command:?} is not a lock: {other:?}"
        ))),
    }
}

/// What `continue` and `abort` did.
fn told(flags: &Flags, message: String) -> Result<i32, EngineError> {
    if flags.json {
        print_json(&serde_json::json!({ "message": message }));
    } else {
        println!("{message}");
    }
    Ok(0)
}

/// A deploy, promote or resume is done; a blue/green `finish_after` is
/// waited out by the engine (`Engine::finish_when_due`).
fn shipped(flags: &Flags, engine: &Engine, report: ChangeReport) -> Result<i32, EngineError> {
    let code = finish(flags, &report)?;
    let Some(finished) = engine.finish_when_due(&report) else {
        return Ok(code);
    };
    match finished {
        Ok(done) if done.exit_code() == exit::OK => Ok(code),
        Ok(done) => {
            eprintln!(
                "error: {} runs {} everywhere, but stopping its old slots failed: {}\n  run `shipdeck finish {}` once that is fixed",
                report.env,
                report
                    .release
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                done.summary,
                report.env
            );
            Ok(exit::FAILED)
        }
        Err(e) => {
            eprintln!(
                "error: {} is switched, but its old slots could not be stopped: {e}\n  run `shipdeck finish {}`",
                report.env, report.env
            );
            Ok(e.exit_code())
        }
    }
}

fn finish(flags: &Flags, report: &ChangeReport) -> Result<i32, EngineError> {
    if flags.json {
        print_json(&report);
    } else {
        table::change(report);
    }
    Ok(report.exit_code())
}

/// Ask on a terminal; refuse (exit 2) where nobody can answer.
fn confirm(question: &str) -> Result<(), EngineError> {
    if !std::io::stdin().is_terminal() {
        return Err(EngineError::Usage(format!(
            "{question} Pass --yes to confirm (no terminal to ask on)."
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        Err(EngineError::Usage(
            "not confirmed; nothing was changed".into(),
        ))
    }
}
