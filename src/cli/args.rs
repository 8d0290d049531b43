use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::model::ReleaseId;

/// Ship releases to plain Linux hosts over SSH, from a console or a script.
#[derive(Debug, Parser)]
#[command(name = "shipdeck", version, about, long_about = None)]
pub struct Cli {
    /// The config file.
    #[arg(
        long,
        short,
        global = true,
        default_value = "shipdeck.toml",
        env = "SHIPDECK_CONFIG"
    )]
    pub config: PathBuf,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Answer yes to every question.
    #[arg(long, short, global = true)]
    pub yes: bool,
    /// Trust and record the host keys of hosts not yet in known_hosts (never a changed key).
    #[arg(long, global = true)]
    pub accept_new_host_keys: bool,
    /// Look, never change: the console's keys that change hosts are off, and
    /// commands that change hosts (or the release store) are refused with exit 2.
    #[arg(long, global = true)]
    pub readonly: bool,
    /// How long a change queues behind another change's lock before giving
    /// up with exit 3 (`0s`: not at all).
    #[arg(long, global = true, value_parser = lock_wait, default_value = "5s")]
    pub lock_wait: std::time::Duration,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a sandbox (local hosts, a sample app, releases v1 v2 and a bad v3) and open the console on it.
    Demo {
        /// Where to build it (default: a fresh temporary folder).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Build the sandbox and print its config path; do not open the console.
        #[arg(long)]
        no_console: bool,
    },
    /// The demo's sample app (run by the demo's hooks).
    #[command(hide = true)]
    SampleApp(crate::demo::SampleAppArgs),
    /// Preflight: config, reachability, host keys, deploy_to writable, free disk, locks.
    Check { env: Option<String> },
    /// Package app.artifact (after running app.build) into the local release store.
    Build {
        #[arg(long)]
        id: Option<ReleaseId>,
        /// A note kept in the release's manifest.
        #[arg(long)]
        notes: Option<String>,
    },
    /// Local releases, and where each one runs.
    Releases,
    /// Per environment and host: current, previous, health, lock.
    Status { env: Option<String> },
    /// Dry run: the batches and steps `deploy` would run.
    Plan { env: String, release: ReleaseId },
    /// Deploy a release with the environment's strategy.
    Deploy {
        env: String,
        release: ReleaseId,
        #[command(flatten)]
        window: WindowOverride,
    },
    /// Deploy a release that passed the environment this one requires.
    Promote {
        release: ReleaseId,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        window: WindowOverride,
    },
    /// Switch back to the previous release (by history), or to --to; undoes an interrupted change.
    Rollback {
        env: String,
        #[arg(long)]
        to: Option<ReleaseId>,
        /// Roll back across a release that carries a schema migration.
        #[arg(long)]
        force: bool,
        /// Roll back every host that answers; name and record the others.
        #[arg(long)]
        skip_unreachable: bool,
    },
    /// Move a paused canary on to its next step (from any machine).
    Continue {
        env: String,
        /// Go through every remaining step without pausing again.
        #[arg(long)]
        all: bool,
    },
    /// Stop a paused canary and put its canary hosts back (from any machine).
    Abort { env: String },
    /// Stop the old slots of a blue/green change: after this, rollback restarts the old release.
    Finish { env: String },
    /// Continue an interrupted change from the exact host and step it stopped at.
    Resume {
        env: String,
        #[command(flatten)]
        window: WindowOverride,
    },
    /// Follow logs from every host of an environment, prefixed with the host.
    Logs {
        env: String,
        #[arg(long)]
        host: Option<String>,
        /// Lines of history to show first, per host.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
    },
    /// What was done, by whom, when, with what outcome.
    History { env: Option<String> },
    /// Hold an environment: no change starts until it is unlocked.
    Lock {
        env: String,
        #[arg(long)]
        reason: String,
    },
    /// Release an environment's lock.
    Unlock {
        env: String,
        /// Break a lock held by someone else or by a change whose operator is
        /// gone (needs --reason: the history keeps who broke it and why).
        #[arg(long, requires = "reason")]
        force: bool,
        #[arg(long)]
        reason: Option<String>,
    },
}

impl Command {
    /// What the command would change, as the refusal under `--readonly` says
    /// it; `None` for a command that only reads. Every command is named here,
    /// so a new one must be placed on one side or the other.
    pub fn changes(&self) -> Option<&'static str> {
        match self {
            Command::Deploy { .. } => Some("deploy switches hosts to a release"),
            Command::Promote { .. } => Some("promote switches hosts to a release"),
            Command::Rollback { .. } => Some("rollback switches hosts back"),
            Command::Resume { .. } => Some("resume goes on with a change on the hosts"),
            Command::Continue { .. } => Some("continue moves a paused canary on"),
            Command::Abort { .. } => Some("abort puts a paused canary's hosts back"),
            Command::Finish { .. } => Some("finish stops the old blue/green slots"),
            Command::Lock { .. } => Some("lock holds an environment"),
            Command::Unlock { .. } => Some("unlock releases an environment's lock"),
            Command::Build { .. } => Some("build writes a release into the local store"),
            // The demo builds its own sandbox and opens a read-only console on it.
            Command::Demo { .. }
            | Command::SampleApp(_)
            | Command::Check { .. }
            | Command::Releases
            | Command::Status { .. }
            | Command::Plan { .. }
            | Command::Logs { .. }
            | Command::History { .. } => None,
        }
    }
}

/// Starting a change outside its deploy window or in a freeze.
#[derive(Debug, clap::Args)]
pub struct WindowOverride {
    /// Start even outside the deploy window or inside a freeze (needs --reason).
    #[arg(long = "override", requires = "reason")]
    pub override_window: bool,
    /// Why; kept in the history with who overrode.
    #[arg(long)]
    pub reason: Option<String>,
}

impl WindowOverride {
    pub fn options(&self) -> crate::engine::ChangeOptions {
        crate::engine::ChangeOptions {
            override_reason: self.override_window.then(|| self.reason.clone()).flatten(),
            ..Default::default()
        }
    }
}

/// `--lock-wait`: a duration as the config writes them, or `0s` for none.
fn lock_wait(s: &str) -> Result<std::time::Duration, String> {
    if s.trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    crate::model::time::parse_duration(s)
}
