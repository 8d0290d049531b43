//! `shipdeck init`: a commented starter config that parses as written.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use super::json;
use super::{Flags, exit};
use crate::config::Config;

/// The first host when nobody says one: a folder beside the config, so the
/// starter deploys at once (`local:` runs commands on this machine).
const FIRST_HOST: &str = "local:hosts/staging-1";

pub fn run(flags: &Flags, path: &Path) -> i32 {
    if path.exists() {
        let message = format!(
            "{} exists; init never overwrites a config (move it away first)",
            path.display()
        );
        return flags.fail("usage", exit::USAGE, &message);
    }
    let default_name = default_app_name(path);
    let (name, host) = if std::io::stdin().is_terminal() && !flags.mode.is_json() {
        (
            ask("App name", &default_name),
            ask(
                "First staging host ([user@]host[:port], or local:DIR)",
                FIRST_HOST,
            ),
        )
    } else {
        (default_name, FIRST_HOST.to_owned())
    };
    let text = starter(&name, &host);
    // Refuse answers that would not parse before anything is written.
    if let Err(e) = Config::parse(path, &text) {
        return flags.fail(
            "config",
            exit::USAGE,
            &format!("the answers give a bad config: {e}"),
        );
    }
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = written {
        return flags.fail(
            "failed",
            exit::FAILED,
            &format!("cannot write {}: {e}", path.display()),
        );
    }
    if flags.mode.is_json() {
        json::print(
            flags.mode,
            "init",
            serde_json::json!({ "config": path, "app": name, "host": host }),
        );
    } else {
        println!(
            "wrote {}: edit [app] and the hosts, then `shipdeck check`",
            path.display()
        );
    }
    exit::OK
}

/// The folder the config goes in names the app, as a TOML-safe word.
fn default_app_name(path: &Path) -> String {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok())
        .and_then(|d| std::path::absolute(d).ok());
    let name: String = dir
        .as_deref()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        "app".to_owned()
    } else {
        name
    }
}

fn ask(question: &str, default: &str) -> String {
    eprint!("{question} [{default}]: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    let answer = answer.trim();
    if answer.is_empty() {
        default.to_owned()
    } else {
        answer.to_owned()
    }
}

/// A TOML basic string: the answers are typed by a person.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn starter(name: &str, host: &str) -> String {
    format!(
        r#"# shipdeck.toml: written by `shipdeck init`. Every key: docs/config.md.
# `shipdeck check` tries it; `shipdeck build` then `shipdeck deploy staging ID`.

[app]
name = {name}
# build = "make dist"            # run beside this file by `shipdeck build`
artifact = "dist"                # the folder (or file) each release ships
# On each host: releases/, shared/, current.
deploy_to = "/srv/{bare}"
keep_releases = 5
# shared = ["log", ".env"]       # kept across releases under deploy_to/shared

[hooks]
# Run on the host in the new release's folder, without a terminal: `sudo`
# there needs NOPASSWD for that command.
# before_switch = ["./bin/prepare"]
# run_once = ["./bin/migrate"]   # on one host, before any host switches
# restart = "sudo systemctl restart {bare}"
# after_switch = []
# on_rollback = []
# notify = ["./notify-chat.sh"]  # on this machine; the event as JSON on stdin

# [health]
# http = "http://127.0.0.1:8080/healthz"   # or: command = "./bin/healthcheck"
# gate = "60s"

# [logs]
# files = ["shared/log/app.log"] # or: command = "journalctl -fu {bare}"

[ssh]
# user = "deploy"
# identity = "~/.ssh/id_ed25519" # else the SSH agent, then ~/.ssh/id_*
# port = 22

[environments.staging]
hosts = [{host}]

# [environments.production]
# hosts = ["deploy@web-1.example.com", "deploy@web-2.example.com"]
# requires = "staging"           # only releases that passed staging
# strategy = {{ kind = "rolling", batch = 1 }}
# window = "Mon-Fri 09:00-16:00"
"#,
        name = quoted(name),
        bare = name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-"),
        host = quoted(host),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_parses_with_odd_answers() {
        for (name, host) in [
            ("hello", FIRST_HOST),
            ("my app \"x\"", "deploy@web-1.example.com:2222"),
        ] {
            let text = starter(name, host);
            let cfg = Config::parse(Path::new("shipdeck.toml"), &text)
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(cfg.environment_names(), ["staging"]);
        }
    }
}
