//! Quoting for POSIX `sh`: every value that reaches a remote shell goes
//! through [`quote`], so no release id, path or message can be read as shell
//! syntax. The scripts themselves are written by `host` alone; the transport
//! only runs each one as `sh -c <one quoted word>`.

/// `s` as one single-quoted shell word.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn quoted_words_come_back_unchanged_through_a_real_shell() {
        for s in [
            "plain",
            "",
            "it's",
            "$(id)",
            "`id`",
            "a b\nc",
            "'; rm -rf / #",
            "\\'\"",
        ] {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), s);
        }
    }
}

/// Where the program a configured command runs lives, as `check` looks for
/// it before any change: on the host's `PATH`, at an absolute path on the
/// host, or in the release (a relative path, run in the release folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    OnPath(String),
    Absolute(String),
    InRelease(String),
}

/// Words a command may start with that are the shell's own, not a program.
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "fi", "for", "while", "until", "do", "done", "case", "esac", "{", "(",
    "!", "[", "[[", "test", "true", "false", ":", ".", "cd", "echo", "printf", "exec", "export",
    "set", "unset", "exit", "return", "read", "eval", "command", "trap", "wait", "sleep",
];

/// The program a command line starts with (after `VAR=value` assignments),
/// or `None` when it starts with the shell's own syntax or a builtin.
pub fn first_program(command: &str) -> Option<Program> {
    let word = command
        .split_whitespace()
        .find(|w| !(w.contains('=') && !w.starts_with('=') && !w.contains('/')))?;
    if SHELL_WORDS.contains(&word) || word.contains(['$', '`', '\'', '"', ';', '|', '&']) {
        return None;
    }
    Some(if word.starts_with('/') {
        Program::Absolute(word.to_owned())
    } else if word.contains('/') {
        Program::InRelease(word.trim_start_matches("./").to_owned())
    } else {
        Program::OnPath(word.to_owned())
    })
}

#[cfg(test)]
mod program_tests {
    use super::*;

    #[test]
    fn the_first_program_of_a_command() {
        assert_eq!(
            first_program("sudo systemctl restart hello"),
            Some(Program::OnPath("sudo".into()))
        );
        assert_eq!(
            first_program("RAILS_ENV=production ./bin/migrate --all"),
            Some(Program::InRelease("bin/migrate".into()))
        );
        assert_eq!(
            first_program("/usr/bin/env true"),
            Some(Program::Absolute("/usr/bin/env".into()))
        );
        assert_eq!(first_program("if [ -f x ]; then y; fi"), None);
        assert_eq!(first_program("$HOME/bin/x"), None);
        assert_eq!(first_program("   "), None);
    }
}
