use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand};

use crate::model::ReleaseId;

/// What every `--help` ends with: scripts decide on these.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0  done (a change succeeded, or there was nothing to do)
  1  failed: a host failed or could not be reached (switched hosts went back)
  2  usage: bad arguments or config, refused under --readonly, not confirmed
  3  locked: another operator or change holds the environment
  4  refused by a gate: not promoted, outside the deploy window, a migration
Under --json an error is a JSON object on stdout; the exit code stays the same."
    };
}

/// A subcommand's `after_help`: its examples, then the exit codes.
macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:\n", $("  ", $line, "\n",)+ "\n", exit_codes!())
    };
    ($($line:literal),+ ; $note:literal) => {
        concat!("Examples:\n", $("  ", $line, "\n",)+ "\n", $note, "\n\n", exit_codes!())
    };
}

/// Ship releases to plain Linux hosts over SSH, from a console or a script.
#[derive(Debug, Parser)]
#[command(
    name = "shipdeck",
    version,
    about,
    long_about = None,
    after_help = concat!(
        "Examples:
  shipdeck init                              write a commented shipdeck.toml
  shipdeck check                             config, hosts, keys, disk, locks
  shipdeck build --id v1                     package app.artifact as release v1
  shipdeck deploy staging v1                 ship it with staging's strategy
  shipdeck promote v1 --to production        once staging passed with v1
  shipdeck rollback production               back to the previous release
  shipdeck --json status production | jq '.hosts[].current'
  shipdeck deploy staging v2 --events        NDJSON progress, one event a line
  shipdeck                                   open the console

JSON output: docs/json.md. Config keys: docs/config.md. shipdeck's own log:
$XDG_STATE_HOME/shipdeck/shipdeck.log (usually ~/.local/state/shipdeck/).

",
        exit_codes!()
    ),
)]
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
    /// Print one JSON object on stdout instead of tables, errors included
    /// (schema in docs/json.md).
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors.
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Copy shipdeck's log to stderr (-v: info, -vv: debug).
    #[arg(long, short, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// The console: look, never change (the keys that change hosts are off).
    /// Before a subcommand: refuse it if it changes anything (exit 2).
    #[arg(long)]
    pub readonly: bool,
    /// Trust and record the host keys of hosts not yet in known_hosts (never a changed key).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Answer yes to every question (kept before the subcommand for old scripts).
    #[arg(long, short, hide = true)]
    pub yes: bool,
    /// Kept before the subcommand for old scripts; see `deploy --help`.
    #[arg(long, value_parser = lock_wait, hide = true)]
    pub lock_wait: Option<Duration>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The flags of a command that reaches hosts.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct HostFlags {
    /// Trust and record the host keys of hosts not yet in known_hosts (never a changed key).
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

/// The flags of a command that changes hosts but runs no change (lock, unlock).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct WriteFlags {
    /// Refuse this command (exit 2): it changes hosts.
    #[arg(long)]
    pub readonly: bool,
    #[command(flatten)]
    pub hosts: HostFlags,
}

/// The flags of `continue` and `abort`.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct SignalFlags {
    /// Print NDJSON on stdout: the result as one JSON line (docs/json.md).
    #[arg(long)]
    pub events: bool,
    #[command(flatten)]
    pub write: WriteFlags,
}

/// The flags of a change: deploy, promote, rollback, resume, finish.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct ChangeFlags {
    /// Print NDJSON on stdout: one JSON object per step as it happens, the
    /// final report last (docs/json.md).
    #[arg(long)]
    pub events: bool,
    /// How long to queue behind another change's lock before giving up
    /// with exit 3 (`0s`: not at all) [default: 5s].
    #[arg(long, value_parser = lock_wait)]
    pub lock_wait: Option<Duration>,
    #[command(flatten)]
    pub write: WriteFlags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented starter shipdeck.toml (never over an existing file).
    #[command(after_help = examples!("shipdeck init", "shipdeck init --config deploy/shipdeck.toml"; "On a terminal it asks for the app's name and a first host; otherwise it asks nothing."))]
    Init,
    /// Print a shell completion script.
    #[command(after_help = examples!("shipdeck completions bash > /etc/bash_completion.d/shipdeck", "shipdeck completions zsh > \"${fpath[1]}/_shipdeck\"", "shipdeck completions fish > ~/.config/fish/completions/shipdeck.fish"))]
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a folder.
    #[command(after_help = examples!("shipdeck man | man -l -", "shipdeck man --dir /usr/local/share/man/man1"))]
    Man {
        /// Write shipdeck.1 and shipdeck-COMMAND.1 here instead.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a sandbox (local hosts, a sample app, releases v1 v2 and a bad v3) and open the console on it.
    #[command(after_help = examples!("shipdeck demo", "shipdeck demo --dir /tmp/shipdeck-demo --no-console"))]
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
    #[command(after_help = examples!("shipdeck check", "shipdeck check production --json"; "Exit 1 when a host has a problem, 3 when one is locked."))]
    Check {
        /// Only this environment (default: all).
        env: Option<String>,
        #[command(flatten)]
        hosts: HostFlags,
    },
    /// Package app.artifact (after running app.build) into the local release store.
    #[command(after_help = examples!("shipdeck build --id v1 --notes 'first release'", "shipdeck build            # id from git describe or the time"))]
    Build {
        /// The release id (letters, digits, `.`, `-`, `_`).
        #[arg(long)]
        id: Option<ReleaseId>,
        /// A note kept in the release's manifest.
        #[arg(long)]
        notes: Option<String>,
        /// Refuse this command (exit 2): it writes the release store.
        #[arg(long)]
        readonly: bool,
    },
    /// Local releases, and where each one runs.
    #[command(after_help = examples!("shipdeck releases", "shipdeck releases --json | jq -r '.releases[].id'"))]
    Releases {
        #[command(flatten)]
        hosts: HostFlags,
    },
    /// Per environment and host: current, previous, health, lock.
    #[command(after_help = examples!("shipdeck status", "shipdeck status production --json | jq '.hosts[] | {host, current}'"; "Exit 1 when a host cannot be reached."))]
    Status {
        /// Only this environment (default: all).
        env: Option<String>,
        #[command(flatten)]
        hosts: HostFlags,
    },
    /// Dry run: the batches and steps `deploy` would run.
    #[command(after_help = examples!("shipdeck plan production v2"; "Exit 4 when a gate would refuse the deploy."))]
    Plan {
        /// The environment.
        env: String,
        /// The release from the local store.
        release: ReleaseId,
        #[command(flatten)]
        hosts: HostFlags,
    },
    /// Deploy a release with the environment's strategy.
    #[command(after_help = examples!("shipdeck deploy staging v2", "shipdeck deploy production v2 --override --reason 'hotfix #412'", "shipdeck deploy staging v2 --events | jq -c 'select(.kind==\"event\")'"))]
    Deploy {
        /// The environment.
        env: String,
        /// The release from the local store (`shipdeck releases`).
        release: ReleaseId,
        #[command(flatten)]
        window: WindowOverride,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Deploy a release that passed the environment this one requires.
    #[command(after_help = examples!("shipdeck promote v2 --to production"))]
    Promote {
        /// The release that passed the required environment.
        release: ReleaseId,
        /// The environment to deploy it to.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        window: WindowOverride,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Switch back to the previous release (by history), or to --to; undoes an interrupted change.
    #[command(after_help = examples!("shipdeck rollback production", "shipdeck rollback production --to v1", "shipdeck rollback production --skip-unreachable"))]
    Rollback {
        /// The environment.
        env: String,
        /// The release to go back to (default: the one before, by history).
        #[arg(long)]
        to: Option<ReleaseId>,
        /// Roll back across a release that carries a schema migration.
        #[arg(long)]
        force: bool,
        /// Roll back every host that answers; name and record the others.
        #[arg(long)]
        skip_unreachable: bool,
        /// Rollback asks nothing; kept for old scripts.
        #[arg(long, short, hide = true)]
        yes: bool,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Move a paused canary on to its next step (from any machine).
    #[command(after_help = examples!("shipdeck continue production", "shipdeck continue production --all"))]
    Continue {
        /// The environment whose canary is paused.
        env: String,
        /// Go through every remaining step without pausing again.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        flags: SignalFlags,
    },
    /// Stop a paused canary and put its canary hosts back (from any machine).
    #[command(after_help = examples!("shipdeck abort production"))]
    Abort {
        /// The environment whose canary is paused.
        env: String,
        #[command(flatten)]
        flags: SignalFlags,
    },
    /// Stop the old slots of a blue/green change: after this, rollback restarts the old release.
    #[command(after_help = examples!("shipdeck finish production"))]
    Finish {
        /// The blue/green environment.
        env: String,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Continue an interrupted change from the exact host and step it stopped at.
    #[command(after_help = examples!("shipdeck resume production"))]
    Resume {
        /// The environment with an interrupted change.
        env: String,
        #[command(flatten)]
        window: WindowOverride,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Follow logs from every host of an environment, prefixed with the host.
    #[command(after_help = examples!("shipdeck logs production", "shipdeck logs production --host web-1 -n 100", "shipdeck logs production --json | jq -r 'select(.error) | .line'"))]
    Logs {
        /// The environment.
        env: String,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Lines of history to show first, per host.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
        #[command(flatten)]
        hosts: HostFlags,
    },
    /// What was done, by whom, when, with what outcome.
    #[command(after_help = examples!("shipdeck history production", "shipdeck history --json | jq '.records[-1]'"))]
    History {
        /// Only this environment (default: all).
        env: Option<String>,
        #[command(flatten)]
        hosts: HostFlags,
    },
    /// Hold an environment: no change starts until it is unlocked.
    #[command(after_help = examples!("shipdeck lock production --reason 'db maintenance until 14:00'"))]
    Lock {
        /// The environment.
        env: String,
        /// Why; shown to whoever is refused.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        flags: WriteFlags,
    },
    /// Release an environment's lock.
    #[command(after_help = examples!("shipdeck unlock production", "shipdeck unlock production --force --reason 'alice is on leave' --yes"))]
    Unlock {
        /// The environment.
        env: String,
        /// Break a lock held by someone else or by a change whose operator is
        /// gone (needs --reason: the history keeps who broke it and why).
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why the lock is broken.
        #[arg(long)]
        reason: Option<String>,
        /// Do not ask before breaking the lock.
        #[arg(long, short)]
        yes: bool,
        #[command(flatten)]
        flags: WriteFlags,
    },
}

/// What a subcommand's own flags say, merged with those given before it.
#[derive(Debug, Default, Clone)]
pub struct SubFlags {
    pub readonly: bool,
    pub accept_new_host_keys: bool,
    pub yes: bool,
    pub events: bool,
    pub lock_wait: Option<Duration>,
}

impl SubFlags {
    fn change(f: &ChangeFlags) -> Self {
        SubFlags {
            events: f.events,
            lock_wait: f.lock_wait,
            ..Self::write(&f.write)
        }
    }

    fn write(f: &WriteFlags) -> Self {
        SubFlags {
            readonly: f.readonly,
            accept_new_host_keys: f.hosts.accept_new_host_keys,
            ..Self::default()
        }
    }

    fn hosts(f: &HostFlags) -> Self {
        SubFlags {
            accept_new_host_keys: f.accept_new_host_keys,
            ..Self::default()
        }
    }
}

impl Command {
    /// The flags given after the subcommand.
    pub fn flags(&self) -> SubFlags {
        match self {
            Command::Deploy { flags, .. }
            | Command::Promote { flags, .. }
            | Command::Resume { flags, .. }
            | Command::Finish { flags, .. } => SubFlags::change(flags),
            Command::Rollback { flags, yes, .. } => SubFlags {
                yes: *yes,
                ..SubFlags::change(flags)
            },
            Command::Continue { flags, .. } | Command::Abort { flags, .. } => SubFlags {
                events: flags.events,
                ..SubFlags::write(&flags.write)
            },
            Command::Lock { flags, .. } => SubFlags::write(flags),
            Command::Unlock { flags, yes, .. } => SubFlags {
                yes: *yes,
                ..SubFlags::write(flags)
            },
            Command::Build { readonly, .. } => SubFlags {
                readonly: *readonly,
                ..SubFlags::default()
            },
            Command::Check { hosts, .. }
            | Command::Releases { hosts }
            | Command::Status { hosts, .. }
            | Command::Plan { hosts, .. }
            | Command::Logs { hosts, .. }
            | Command::History { hosts, .. } => SubFlags::hosts(hosts),
            Command::Init
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Demo { .. }
            | Command::SampleApp(_) => SubFlags::default(),
        }
    }

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
            // init writes only a new local file, never a host; the demo
            // builds its own sandbox and opens a read-only console on it.
            Command::Init
            | Command::Completions { .. }
            | Command::Man { .. }
            | Command::Demo { .. }
            | Command::SampleApp(_)
            | Command::Check { .. }
            | Command::Releases { .. }
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
fn lock_wait(s: &str) -> Result<Duration, String> {
    if s.trim_end_matches(|c: char| c.is_ascii_alphabetic()) == "0" {
        return Ok(Duration::ZERO);
    }
    crate::model::time::parse_duration(s)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_positional_argument_is_described_and_every_command_has_examples() {
        let cli = super::Cli::command();
        cli.clone().debug_assert();
        for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
            for arg in sub.get_positionals() {
                assert!(
                    arg.get_help().is_some(),
                    "{} {}: no description",
                    sub.get_name(),
                    arg.get_id()
                );
            }
            let after = sub.get_after_help().map(ToString::to_string);
            assert!(
                after
                    .as_deref()
                    .is_some_and(|a| a.contains("Examples:") && a.contains("Exit codes:")),
                "{}: {after:?}",
                sub.get_name()
            );
        }
    }
}
