//! `shipdeck demo`: a sandbox that shows the whole product on a machine with
//! no SSH server and no network. Six `local:` hosts (staging: 1, production:
//! 3, a canary; production-eu: 2, blue/green behind a front), three built releases (v1 and v2 healthy; v3 passes its health
//! check but fails a third of its requests, which staging's health gate lets
//! through and production's canary analysis catches) and a sample app that
//! shipdeck itself provides (`shipdeck sample-app`, hidden), so the demo needs
//! nothing outside this binary.

mod app;
mod consoles;
mod daemon;
mod front;
mod process;
mod sandbox;

use std::path::{Path, PathBuf};

use crate::model::Slot;

pub use consoles::note as note_console;
pub use sandbox::{DemoError, create, is_sandbox, start_apps};

/// Where each demo host keeps its app's pid file, under its deploy_to.
pub const PID_FILE: &str = "shared/app.pid";
/// Where each demo host's app writes its log, under its deploy_to. On a
/// blue/green host both slots' apps and the front write to it.
pub const LOG_FILE: &str = "shared/log/app.log";
/// A blue/green host's front: its pid file, under its deploy_to.
pub const FRONT_PID_FILE: &str = "shared/front.pid";
/// The port of a blue/green host's live slot, which `bin/switch` replaces
/// in one rename: the front sends each new connection there, and a slot's
/// app makes traffic only while it names its port.
pub const UPSTREAM_FILE: &str = "shared/upstream";

/// The pid file of a blue/green slot's app, under its deploy_to
/// (`shared/app-blue.pid`): each slot's app starts and stops on its own.
pub fn slot_pid_file(slot: Slot) -> String {
    format!("shared/app-{slot}.pid")
}

/// Every pid file a demo host may hold, under its deploy_to.
fn host_pid_files() -> [String; 4] {
    [
        PID_FILE.to_owned(),
        slot_pid_file(Slot::Blue),
        slot_pid_file(Slot::Green),
        FRONT_PID_FILE.to_owned(),
    ]
}

/// `shipdeck sample-app`: the demo's app, started and stopped by the demo's
/// restart hook. Not meant to be typed by hand, hence hidden.
#[derive(Debug, Clone, clap::Args)]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct SampleAppArgs {
    /// Serve HTTP on 127.0.0.1:PORT (`/healthz`, `/metrics`).
    #[arg(long, required_unless_present = "stop")]
    pub port: Option<u16>,
    /// Append log lines here (default: stdout).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// The app writes its pid here, and exits once the file is removed or
    /// names another process (a newer app of the same host took over).
    #[arg(long, required = true)]
    pub pid_file: Option<PathBuf>,
    /// Exit once this folder is gone (the release the app runs from, so a
    /// deleted sandbox takes its apps with it).
    #[arg(long)]
    pub watch: Option<PathBuf>,
    /// The release id, shown in logs and in `/metrics`.
    #[arg(long, default_value = "dev")]
    pub release: String,
    /// A blue/green slot's app (`blue` or `green`): it names its slot in its
    /// log lines, on `/` and in `/metrics`, and makes traffic only while
    /// --upstream-file names its --port (the front sends traffic there).
    #[arg(long, value_parser = parse_slot, requires = "upstream_file", conflicts_with = "stop")]
    pub slot: Option<Slot>,
    /// With --slot: the front's upstream file, holding the live slot's port.
    #[arg(long, value_name = "FILE", requires = "slot")]
    pub upstream_file: Option<PathBuf>,
    /// Behave as the demo's bad release: `/healthz` passes (slowly), but
    /// about a third of requests fail with a 5xx and an `ERROR ... panicked`
    /// log line, and the rest are slower.
    #[arg(long)]
    pub bad: bool,
    /// Start in the background (own process group, no tie to this terminal
    /// or pipe) and return once the app listens.
    #[arg(long, conflicts_with = "stop")]
    pub detach: bool,
    /// Stop the app named by --pid-file (SIGTERM, then SIGKILL) and wait for it.
    #[arg(long)]
    pub stop: bool,
    #[command(subcommand)]
    pub mode: Option<SampleAppMode>,
}

fn parse_slot(s: &str) -> Result<Slot, String> {
    match s {
        "blue" => Ok(Slot::Blue),
        "green" => Ok(Slot::Green),
        _ => Err(format!("{s:?} is not a slot: blue or green")),
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SampleAppMode {
    /// A TCP front for a blue/green host: each connection goes to
    /// 127.0.0.1:PORT, PORT read from --upstream-file when the connection is
    /// accepted, so rewriting that file (in one rename) moves traffic.
    Front(FrontArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct FrontArgs {
    /// Accept connections on 127.0.0.1:PORT.
    #[arg(long, value_name = "PORT")]
    pub listen: u16,
    /// Holds the port to send each new connection to (`8081`); replace it
    /// with a rename to switch.
    #[arg(long, value_name = "FILE")]
    pub upstream_file: PathBuf,
    /// Append log lines here (default: stdout).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Write the pid here, and exit once the file is removed or names
    /// another process. `sample-app --stop --pid-file` stops the front too.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Exit once this folder is gone.
    #[arg(long)]
    pub watch: Option<PathBuf>,
    /// Start in the background and return once the front listens; when the
    /// front --pid-file names already listens, return at once.
    #[arg(long)]
    pub detach: bool,
}

/// Run `shipdeck sample-app`; the process exit code.
pub fn sample_app(args: SampleAppArgs) -> i32 {
    if let Some(SampleAppMode::Front(f)) = args.mode {
        let options = front::Options {
            listen: f.listen,
            upstream_file: f.upstream_file,
            log: f.log,
            pid_file: f.pid_file,
            watch: f.watch,
        };
        return if f.detach {
            front::detach(&options)
        } else {
            front::run(options)
        };
    }
    let Some(pid_file) = args.pid_file else {
        eprintln!("sample-app: --pid-file is required");
        return 2;
    };
    if args.stop {
        return app::stop(&pid_file);
    }
    let Some(port) = args.port else {
        eprintln!("sample-app: --port is required");
        return 2;
    };
    let options = app::Options {
        port,
        log: args.log,
        pid_file,
        watch: args.watch,
        release: args.release,
        bad: args.bad,
        slot: args.slot.zip(args.upstream_file),
    };
    if args.detach {
        app::detach(&options)
    } else {
        app::run(options)
    }
}

/// This process, a console on the sandbox at `config_dir` (the folder
/// holding its `shipdeck.toml`), is done with it: stop its sample apps,
/// unless another console still shows them (`create` and `start_apps` note
/// the process that will show the sandbox; a second `shipdeck` on the same
/// demo that quits leaves the first one's apps running). See
/// [`stop_all_apps`].
pub fn stop_apps(config_dir: &Path) {
    consoles::forget(config_dir, std::process::id());
    let others = consoles::showing(config_dir);
    if let Some(pid) = others.first() {
        eprintln!(
            "shipdeck demo: the sample apps keep running: another console (pid {pid}) still shows {}",
            config_dir.display()
        );
        return;
    }
    stop_all_apps(config_dir);
}

/// Stop every sample app of the sandbox at `config_dir`: those its hosts'
/// pid files name (the app's, each blue/green slot's, the front's), and any
/// other whose pid file lies in the sandbox. Returns once they are gone (a
/// few seconds at most: SIGTERM, then SIGKILL). Safe to call on any folder:
/// only processes that are sample apps are ever signalled.
pub fn stop_all_apps(config_dir: &Path) {
    let mut pids = Vec::new();
    let mut pid_files = Vec::new();
    if let Ok(hosts) = std::fs::read_dir(config_dir.join(sandbox::HOSTS_DIR)) {
        for host in hosts.flatten() {
            for file in host_pid_files() {
                let file = host.path().join(file);
                if let Some(pid) = process::read_pid(&file) {
                    pids.push(pid);
                }
                pid_files.push(file);
            }
        }
    }
    pids.extend(process::apps_under(config_dir));
    pids.sort_unstable();
    pids.dedup();
    process::stop_pids(&pids);
    for file in pid_files {
        if process::read_pid(&file).is_some_and(|pid| !process::is_alive(pid)) {
            let _ = std::fs::remove_file(&file);
        }
    }
}
