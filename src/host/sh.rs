//! Quoting for POSIX `sh`. Every value that reaches a remote shell goes through
//! `quote`, so no release id, path or message can be read as shell syntax.

pub use crate::model::shell::quote;

/// `export NAME='value'` lines for a hook's environment.
pub fn exports(vars: &[(String, String)]) -> String {
    vars.iter()
        .map(|(k, v)| format!("export {k}={}\n", quote(v)))
        .collect()
}
