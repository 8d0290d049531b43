//! The only code that touches hosts. Everything above this module speaks in
//! shell scripts, file uploads and HTTP probes; a transport carries them to a
//! directory on this machine (`local`) or to a host over SSH (`ssh`).

mod cancel;
pub mod known_hosts;
pub mod local;
pub mod pool;
pub mod ssh;

use std::path::Path;
use std::time::Duration;

pub use cancel::CancelToken;
pub use pool::{Fleet, HostHandle};

/// What a finished remote command left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    /// The most useful line to show an operator: the last line of stderr, else of stdout.
    pub fn summary(&self) -> String {
        let pick = |s: &str| {
            s.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_owned)
        };
        pick(&self.stderr)
            .or_else(|| pick(&self.stdout))
            .unwrap_or_else(|| format!("exit status {}", self.status))
    }
}

/// An HTTP response fetched through a transport (a health probe, a metrics page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub code: u16,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error(
        "host key of {host} is not in {known_hosts}\n  {key_type} key fingerprint is {fingerprint}\n  verify it, then trust it with --accept-new-host-keys (or add it to {known_hosts})"
    )]
    UnknownHostKey {
        host: String,
        key_type: String,
        fingerprint: String,
        known_hosts: String,
    },
    #[error(
        "HOST KEY OF {host} HAS CHANGED: it now offers a {key_type} key with fingerprint {fingerprint}, which does not match {known_hosts}\n  offered:  {key_type} {fingerprint}\n  recorded: {recorded}\n  this may be an attack; if the host was really reinstalled, remove its old line from {known_hosts}"
    )]
    ChangedHostKey {
        host: String,
        key_type: String,
        fingerprint: String,
        known_hosts: String,
        /// What known_hosts holds for this host and key type, one per line.
        recorded: String,
    },
    #[error("authentication as {user} on {host} failed: {reason}")]
    Auth {
        host: String,
        user: String,
        reason: String,
    },
    #[error("{host}: timed out after {timeout:?} running: {what}")]
    Timeout {
        host: String,
        timeout: Duration,
        what: String,
    },
    #[error("{host}: connection lost: {reason}")]
    Disconnected { host: String, reason: String },
    #[error("{host}: {reason}")]
    Io { host: String, reason: String },
}

/// Errors that may mean a kept-open session is dead and must be reopened.
pub trait BreaksSession {
    fn breaks_session(&self) -> bool;
}

impl BreaksSession for TransportError {
    fn breaks_session(&self) -> bool {
        matches!(
            self,
            TransportError::Disconnected { .. } | TransportError::Timeout { .. }
        )
    }
}

/// One kept-open connection to one host.
///
/// Scripts are POSIX `sh` scripts; every value in them has already been quoted
/// by the caller (see `host::sh`). Implementations run them with `sh -c`, never
/// through the login shell of the remote user, so the user's shell does not matter.
pub trait Transport: Send {
    /// Run a script; its exit status is data, not an error.
    fn exec(&mut self, script: &str, timeout: Duration) -> Result<Output, TransportError>;

    /// Copy a local file to `remote` (an absolute path), replacing what is there.
    fn upload(
        &mut self,
        local: &Path,
        remote: &str,
        timeout: Duration,
    ) -> Result<(), TransportError>;

    /// Run a long-lived script (a log tail), handing each line of its stdout to
    /// `on_line` until the script ends, the connection drops, or `on_line`
    /// returns false or `keep_going` (asked at least every second, even when
    /// no line comes) says stop; stopping ends the script. Returns its exit
    /// status, if it exited on its own.
    fn stream(
        &mut self,
        script: &str,
        on_line: &mut dyn FnMut(&str) -> bool,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<i32>, TransportError>;

    /// `GET path` from `host:port` as seen from the host itself (for SSH, through
    /// a direct-tcpip channel), so the app's port need not be reachable from here.
    fn http_get(
        &mut self,
        host: &str,
        port: u16,
        path: &str,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError>;

    /// One round trip that runs nothing on the host, to learn that a
    /// kept-open connection still works before anyone needs it.
    fn check_alive(&mut self, _timeout: Duration) -> Result<(), TransportError> {
        Ok(())
    }
}

/// Parse a whole HTTP/1.x response: status code and body.
pub(crate) fn parse_http_response(host: &str, raw: &[u8]) -> Result<HttpResponse, TransportError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let bad = |reason: String| TransportError::Io {
        host: host.to_owned(),
        reason,
    };
    match response.parse(raw) {
        Ok(httparse::Status::Complete(head)) => Ok(HttpResponse {
            code: response
                .code
                .ok_or_else(|| bad("HTTP response without a status".into()))?,
            body: String::from_utf8_lossy(&raw[head..]).into_owned(),
        }),
        Ok(httparse::Status::Partial) => Err(bad("incomplete HTTP response".into())),
        Err(e) => Err(bad(format!("bad HTTP response: {e}"))),
    }
}

/// Largest HTTP response read (a Prometheus page of a busy app fits).
pub(crate) const HTTP_CAP: usize = 4 * 1024 * 1024;

/// The request every transport sends for a health probe.
pub(crate) fn http_request(host: &str, port: u16, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: shipdeck\r\nConnection: close\r\n\r\n"
    )
}
