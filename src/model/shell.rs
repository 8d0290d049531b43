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
