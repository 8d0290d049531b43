//! The command line: parse, run one command headless (or open the console),
//! print tables or JSON, and exit with the code DESIGN §4 promises.

mod args;
mod commands;
mod generate;
mod init;
pub mod json;
pub mod logging;
mod logs;
mod progress;
mod signals;
mod table;

use std::io::{IsTerminal, Write};
use std::sync::Arc;

use clap::Parser;

use crate::config::Config;
use crate::engine::EngineError;
pub use args::{Cli, Command};
use json::Mode;

/// Exit codes (DESIGN §4).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const LOCKED: i32 = 3;
    pub const REFUSED: i32 = 4;
}

/// What the flags before and after the subcommand say together.
struct Flags {
    mode: Mode,
    quiet: bool,
    yes: bool,
    accept_new_host_keys: bool,
    readonly: bool,
    lock_wait: std::time::Duration,
}

impl Flags {
    fn new(cli: &Cli) -> Self {
        let sub = cli.command.as_ref().map(Command::flags).unwrap_or_default();
        Flags {
            mode: if sub.events {
                Mode::Events
            } else if cli.json {
                Mode::Json
            } else {
                Mode::Text
            },
            quiet: cli.quiet,
            yes: cli.yes || sub.yes,
            accept_new_host_keys: cli.accept_new_host_keys || sub.accept_new_host_keys,
            readonly: cli.readonly || sub.readonly,
            lock_wait: sub
                .lock_wait
                .or(cli.lock_wait)
                .unwrap_or(crate::engine::DEFAULT_LOCK_WAIT),
        }
    }

    /// Say why the command stopped: on stderr always, and as the JSON error
    /// object on stdout in the JSON modes. Returns the exit code.
    fn fail(&self, kind: &str, code: i32, message: &str) -> i32 {
        let _ = writeln!(std::io::stderr(), "error: {message}");
        if self.mode.is_json() {
            json::emit(self.mode, &json::error_value(kind, code, message));
        }
        code
    }

    fn engine_error(&self, e: &EngineError) -> i32 {
        let _ = writeln!(std::io::stderr(), "error: {e}");
        if self.mode.is_json() {
            json::emit(self.mode, &json::error(e));
        }
        e.exit_code()
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let console = matches!(cli.command, None | Some(Command::Demo { .. }));
    logging::init(
        logging::Verbosity::from_flags(cli.quiet, cli.verbose),
        console,
    );
    tracing::info!(command = ?cli.command, "start");
    let flags = Flags::new(&cli);
    if flags.readonly
        && let Some(what) = cli.command.as_ref().and_then(Command::changes)
    {
        let message = format!("refused under --readonly: {what}; nothing was changed");
        return flags.fail("readonly", exit::USAGE, &message);
    }
    let command = match cli.command {
        Some(Command::Init) => return init::run(&flags, &cli.config),
        Some(Command::Completions { shell }) => return generate::completions(shell),
        Some(Command::Man { dir }) => return generate::man(dir.as_deref()),
        Some(Command::SampleApp(args)) => return crate::demo::sample_app(args),
        Some(Command::Demo { dir, no_console }) => return demo(&flags, dir, no_console),
        None => return console_on(&flags, &cli.config),
        Some(c) => c,
    };
    let config = match Config::load(&cli.config) {
        Ok(c) => Arc::new(c),
        Err(e) => return flags.fail("config", exit::USAGE, &e.to_string()),
    };
    match commands::run(&flags, config, command) {
        Ok(code) => code,
        Err(e) => flags.engine_error(&e),
    }
}

/// clap refused the arguments (exit 2), or printed help or the version (exit 0).
fn usage_error(e: &clap::Error) -> i32 {
    if !e.use_stderr() {
        let _ = e.print();
        return exit::OK;
    }
    let _ = e.print();
    // clap stops before `--json` is read; a script that asked for JSON
    // still gets the error as JSON.
    if std::env::args().any(|a| a == "--json" || a == "--events") {
        // clap's text up to its usage line, as one line.
        let text = e.render().to_string();
        let message: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.starts_with("Usage:"))
            .filter(|l| !l.is_empty())
            .collect();
        let message = message.join(" ");
        let message = message.strip_prefix("error: ").unwrap_or(&message);
        json::emit(
            Mode::Json,
            &json::error_value("usage", exit::USAGE, message),
        );
    }
    exit::USAGE
}

/// `shipdeck demo`: build the sandbox, then open the console on it.
fn demo(flags: &Flags, dir: Option<std::path::PathBuf>, no_console: bool) -> i32 {
    let config = match crate::demo::create(dir.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            return flags.fail(
                "failed",
                exit::FAILED,
                &format!("cannot build the demo: {e}"),
            );
        }
    };
    if no_console {
        if flags.mode.is_json() {
            json::print(flags.mode, "demo", serde_json::json!({ "config": config }));
        } else {
            println!("{}", config.display());
        }
        return exit::OK;
    }
    let code = open_console(flags, &config);
    // The sample apps live as long as the console that shows them.
    if let Some(dir) = config.parent() {
        crate::demo::stop_apps(dir);
    }
    println!(
        "the demo sandbox stays in {}",
        config
            .parent()
            .map_or_else(|| config.display().to_string(), |d| d.display().to_string())
    );
    code
}

/// `shipdeck` alone: the console. A demo sandbox opened again gets its
/// sample apps back while the console runs.
fn console_on(flags: &Flags, path: &std::path::Path) -> i32 {
    let demo_dir = path
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
    let code = open_console(flags, path);
    if let Some(dir) = &demo_dir {
        crate::demo::stop_apps(dir);
    }
    code
}

fn open_console(flags: &Flags, path: &std::path::Path) -> i32 {
    let config = match Config::load(path) {
        Ok(c) => Arc::new(c),
        Err(e) => return flags.fail("config", exit::USAGE, &e.to_string()),
    };
    match crate::tui::run(config, flags.readonly, flags.accept_new_host_keys) {
        Ok(()) => exit::OK,
        Err(e) => flags.fail("failed", exit::FAILED, &e),
    }
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
