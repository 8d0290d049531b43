//! Each headless command onto the engine, and how its result prints.

use std::sync::Arc;

use serde_json::json;

use super::json;
use super::{Command, Flags, exit, progress, table};
use crate::config::Config;
use crate::engine::Command as Request;
use crate::engine::{ChangeOptions, ChangeReport, Control, Done, Engine, EngineError, LockReport};

pub(super) fn run(
    flags: &Flags,
    config: Arc<Config>,
    command: Command,
) -> Result<i32, EngineError> {
    let (sink, printer) = progress::sink(progress::Out::of(flags.mode, flags.quiet));
    let engine = Engine::new(config, flags.accept_new_host_keys, sink);
    let result = dispatch(flags, &engine, command);
    drop(engine);
    if let Some(printer) = printer {
        let _ = printer.join();
    }
    result
}

fn dispatch(flags: &Flags, engine: &Engine, command: Command) -> Result<i32, EngineError> {
    match command {
        Command::Check { env, .. } => check(flags, engine, env.as_deref()),
        Command::Build { id, notes, .. } => build(flags, engine, id, notes),
        Command::Releases { .. } => releases(flags, engine),
        Command::Status { env, .. } => status(flags, engine, env.as_deref()),
        Command::Plan { env, release, .. } => {
            let (plan, gate) = engine.plan(&env, &release)?;
            if flags.mode.is_json() {
                json::print(
                    flags.mode,
                    "plan",
                    json!({ "plan": plan, "refused": gate.as_ref().map(ToString::to_string) }),
                );
            } else {
                table::plan(&plan, gate.as_ref());
            }
            Ok(gate.map_or(exit::OK, |g| g.exit_code()))
        }
        Command::Logs {
            env, host, lines, ..
        } => super::logs::follow(engine, &env, host.as_deref(), lines, flags.mode.is_json()),
        Command::History { env, .. } => history(flags, engine, env.as_deref()),
        Command::Lock { env, reason, .. } => lock(flags, engine, env, reason),
        Command::Unlock {
            env, force, reason, ..
        } => unlock(flags, engine, env, force, reason),
        Command::Continue { env, all, .. } => {
            let control = if all { Control::Promote } else { Control::Next };
            said(flags, engine, Request::Signal { env, control })
        }
        Command::Abort { env, .. } => said(
            flags,
            engine,
            Request::Signal {
                env,
                control: Control::Abort,
            },
        ),
        other => change_command(flags, engine, other),
    }
}

/// deploy, promote, rollback, resume and finish: a change with its report.
fn change_command(flags: &Flags, engine: &Engine, command: Command) -> Result<i32, EngineError> {
    let (request, opts) = match command {
        Command::Deploy {
            env,
            release,
            window,
            ..
        } => (Request::Deploy { env, release }, window.options()),
        Command::Promote {
            release,
            to,
            window,
            ..
        } => (Request::Promote { release, to }, window.options()),
        Command::Rollback {
            env,
            to,
            force,
            skip_unreachable,
            ..
        } => (
            Request::Rollback { env, to },
            ChangeOptions {
                force,
                skip_unreachable,
                ..ChangeOptions::default()
            },
        ),
        Command::Resume { env, window, .. } => (Request::Resume { env }, window.options()),
        Command::Finish { env, .. } => (
            Request::Finish { env, change: None },
            ChangeOptions::default(),
        ),
        other => {
            return Err(EngineError::Usage(format!(
                "{other:?} is handled before the config is read"
            )));
        }
    };
    change(flags, engine, request, opts)
}

fn check(flags: &Flags, engine: &Engine, env: Option<&str>) -> Result<i32, EngineError> {
    let report = engine.check(env)?;
    if flags.mode.is_json() {
        json::print(flags.mode, "check", &report);
    } else {
        table::check(&report);
    }
    Ok(report.exit_code())
}

fn build(
    flags: &Flags,
    engine: &Engine,
    id: Option<crate::model::ReleaseId>,
    notes: Option<String>,
) -> Result<i32, EngineError> {
    let r = engine.store.build(id, notes).map_err(|e| match e {
        crate::store::StoreError::Exists(_) | crate::store::StoreError::NoArtifact(_) => {
            EngineError::Usage(e.to_string())
        }
        _ => EngineError::Failed(e.to_string()),
    })?;
    if flags.mode.is_json() {
        json::print(
            flags.mode,
            "build",
            json!({ "release": r.manifest, "tarball": r.tarball }),
        );
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

fn releases(flags: &Flags, engine: &Engine) -> Result<i32, EngineError> {
    let releases = engine
        .store
        .list()
        .map_err(|e| EngineError::Failed(e.to_string()))?;
    let status = engine.status(None, false)?;
    let rows = table::release_rows(engine, &releases, &status);
    if flags.mode.is_json() {
        json::print(flags.mode, "releases", json!({ "releases": rows }));
    } else {
        table::releases(&rows);
    }
    Ok(exit::OK)
}

fn status(flags: &Flags, engine: &Engine, env: Option<&str>) -> Result<i32, EngineError> {
    let status = engine.status(env, true)?;
    if flags.mode.is_json() {
        json::print(flags.mode, "status", json!({ "env": env, "hosts": status }));
    } else {
        table::status(&status);
    }
    Ok(if status.iter().all(|s| s.reachable) {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn history(flags: &Flags, engine: &Engine, env: Option<&str>) -> Result<i32, EngineError> {
    let (records, errors) = engine.history(env)?;
    if !flags.quiet {
        for e in &errors {
            eprintln!("warning: {e}");
        }
    }
    if flags.mode.is_json() {
        let records: Vec<_> = records.iter().map(json::history_record).collect();
        json::print(
            flags.mode,
            "history",
            json!({ "env": env, "records": records, "warnings": errors }),
        );
    } else {
        table::history(&records);
    }
    Ok(if errors.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn lock(flags: &Flags, engine: &Engine, env: String, reason: String) -> Result<i32, EngineError> {
    let request = Request::Lock {
        env: env.clone(),
        reason: reason.clone(),
    };
    let r = locked(engine, request)?;
    if flags.mode.is_json() {
        json::print(flags.mode, "lock", lock_body(&r, Some(&reason)));
    } else if let (true, Some(kept)) = (r.changed.is_empty(), &r.kept) {
        println!("{env} was already locked by {kept}; that hold and its reason stay");
    } else {
        println!("{env} is locked ({}): {reason}", engine.operator);
    }
    Ok(exit::OK)
}

fn unlock(
    flags: &Flags,
    engine: &Engine,
    env: String,
    force: bool,
    reason: Option<String>,
) -> Result<i32, EngineError> {
    if force && !flags.yes {
        super::confirm(&format!(
            "Break the lock on {env} even if someone else holds it?"
        ))?;
    }
    let request = Request::Unlock {
        env: env.clone(),
        force,
        reason: reason.clone(),
    };
    let r = locked(engine, request)?;
    if flags.mode.is_json() {
        let mut body = lock_body(&r, reason.as_deref());
        body["forced"] = json!(force);
        json::print(flags.mode, "unlock", body);
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

fn lock_body(r: &LockReport, reason: Option<&str>) -> serde_json::Value {
    json!({ "env": r.env, "changed": r.changed, "already": r.already, "kept": r.kept,
        "reason": reason })
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
    super::signals::cancel_on_ctrl_c(engine.cancel_token());
    let report = engine.run_change(&command, &opts)?;
    match command {
        Request::Rollback { .. } | Request::Finish { .. } => finish(flags, &report),
        _ => shipped(flags, engine, report),
    }
}

fn said(flags: &Flags, engine: &Engine, command: Request) -> Result<i32, EngineError> {
    let Request::Signal { env, control } = &command else {
        return Err(EngineError::Usage(format!("{command:?} is not a word")));
    };
    match engine.run(&command, &ChangeOptions::default())? {
        Done::Told(message) => {
            if flags.mode.is_json() {
                let kind = match control {
                    Control::Abort => "abort",
                    _ => "continue",
                };
                json::print(
                    flags.mode,
                    kind,
                    json!({ "env": env, "control": control.as_str(), "message": message }),
                );
            } else {
                println!("{message}");
            }
            Ok(exit::OK)
        }
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

/// A deploy, promote or resume is done; a blue/green `finish_after` is
/// waited out by the engine (`Engine::finish_when_due`).
fn shipped(flags: &Flags, engine: &Engine, report: ChangeReport) -> Result<i32, EngineError> {
    let code = finish(flags, &report)?;
    let Some(finished) = engine.finish_when_due(&report) else {
        return Ok(code);
    };
    let release = report
        .release
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    match finished {
        Ok(done) if done.exit_code() == exit::OK => Ok(code),
        Ok(done) => Ok(flags.fail(
            "failed",
            exit::FAILED,
            &format!(
                "{} runs {release} everywhere, but stopping its old slots failed: {}\n  run `shipdeck finish {}` once that is fixed",
                report.env, done.summary, report.env
            ),
        )),
        Err(e) => Ok(flags.fail(
            "failed",
            e.exit_code(),
            &format!(
                "{} is switched, but its old slots could not be stopped: {e}\n  run `shipdeck finish {}`",
                report.env, report.env
            ),
        )),
    }
}

/// The change report: the last object of an `--events` stream.
fn finish(flags: &Flags, report: &ChangeReport) -> Result<i32, EngineError> {
    let code = report.exit_code();
    if flags.mode.is_json() {
        json::print(flags.mode, "change", report);
    } else if !(flags.quiet && code == exit::OK) {
        table::change(report);
    }
    Ok(code)
}
