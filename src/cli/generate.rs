//! `shipdeck completions` and `shipdeck man`: generated from the clap
//! definitions, so they cannot fall behind the flags.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::{Cli, exit};

pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "shipdeck", &mut out);
    let _ = out.flush();
    exit::OK
}

/// One page on stdout, or with `dir` a page per command (`shipdeck-deploy.1` …).
pub fn man(dir: Option<&Path>) -> i32 {
    let result = match dir {
        // The bare command: generate_to leaves out clap's `help` pseudo-command
        // only when it builds the command itself.
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir)),
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .and_then(|()| out.flush())
        }
    };
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            let at = dir.map(|d| format!(" into {}", d.display()));
            eprintln!(
                "error: cannot write the man page{}: {e}",
                at.unwrap_or_default()
            );
            exit::FAILED
        }
    }
}
