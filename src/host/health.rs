//! Health probes and the gate after a switch.

use std::time::{Duration, Instant};

use super::{HookEnv, StepError, run_command};
use crate::config::{Health, Probe};
use crate::model::{HealthVerdict, Host};
use crate::transport::CancelToken;
use crate::transport::{BreaksSession, HostHandle, Transport, TransportError};

/// One probe's answer. `passed == false` with no response is *unknown* to a
/// monitor; to the gate it is simply not a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub passed: bool,
    pub latency: Duration,
    pub detail: String,
}

/// Probe once. Only a broken connection is an error; a refused port, a 500 or
/// a failing command is a failed probe.
pub fn probe_once(
    t: &mut dyn Transport,
    health: &Health,
    host: &Host,
    env: &HookEnv,
    dir: &str,
) -> Result<ProbeResult, StepError> {
    let started = Instant::now();
    let (passed, detail) = match (&health.probe, &host.health_http) {
        (Probe::Http(_), Some(http)) => {
            match t.http_get(&http.host, http.port, &http.path, health.timeout) {
                Ok(s) => ((200..300).contains(&s.code), format!("HTTP {}", s.code)),
                Err(e) if e.breaks_session() => return Err(e.into()),
                Err(e) => (false, e.to_string()),
            }
        }
        (Probe::Http(url), None) => (false, format!("no URL for this host from {url}")),
        (Probe::Command(cmd), _) => {
            match run_command(t, "health command", dir, cmd, env, health.timeout) {
                Ok(out) => (true, out.summary()),
                Err(StepError::Command { status, detail, .. }) => {
                    (false, format!("exit {status}: {detail}"))
                }
                Err(StepError::Transport(e)) if !e.breaks_session() => (false, e.to_string()),
                Err(e) => return Err(e),
            }
        }
    };
    Ok(ProbeResult {
        passed,
        latency: started.elapsed(),
        detail,
    })
}

/// What the gate probes, as the operator wrote it: named in its failures
/// instead of the script shipdeck wraps it in.
fn what_is_probed(health: &Health, host: &Host) -> String {
    match (&health.probe, &host.health_http) {
        (Probe::Command(cmd), _) => format!("health command `{cmd}`"),
        (Probe::Http(_), Some(http)) => {
            format!(
                "health check http://{}:{}{}",
                http.host, http.port, http.path
            )
        }
        (Probe::Http(url), None) => format!("health check {url}"),
    }
}

/// Why one probe of the gate did not answer: a probe that timed out or lost
/// its session is a failed probe, not the end of the gate.
fn unanswered(e: &StepError) -> String {
    match e {
        StepError::Transport(TransportError::Timeout { timeout, .. }) => {
            format!("no answer within {timeout:?}")
        }
        StepError::Transport(TransportError::Disconnected { reason, .. }) => {
            format!("connection lost ({reason}); reconnecting")
        }
        e => e.to_string(),
    }
}

/// Probe until `healthy_after` passes in a row, or until `gate` has gone by.
/// Each probe is one call on the host's connection: one that times out or
/// breaks the session drops it, the next one reconnects, and it counts as one
/// failed probe. `dir` is where a health command runs (`current`, or the
/// slot being gated).
pub fn gate(
    h: &HostHandle,
    health: &Health,
    host: &Host,
    env: &HookEnv,
    dir: &str,
    cancel: &CancelToken,
) -> Result<HealthVerdict, StepError> {
    let deadline = Instant::now() + health.gate;
    let mut in_a_row = 0;
    let mut last = String::new();
    loop {
        match h.with(|t| probe_once(t, health, host, env, dir)) {
            Ok(result) if result.passed => {
                in_a_row += 1;
                if in_a_row >= health.healthy_after {
                    return Ok(HealthVerdict::Passed);
                }
            }
            Ok(result) => {
                in_a_row = 0;
                last = result.detail;
            }
            Err(e) => {
                in_a_row = 0;
                last = unanswered(&e);
            }
        }
        if Instant::now() + health.interval > deadline {
            return Err(StepError::Refused(format!(
                "{} on {}: not healthy within {:?} ({} of {} passes in a row; last failure: {})",
                what_is_probed(health, host),
                host.name,
                health.gate,
                in_a_row,
                health.healthy_after,
                if last.is_empty() { "none" } else { &last }
            )));
        }
        if cancel.wait(health.interval) {
            return Err(StepError::Refused(
                "cancelled during the health gate".into(),
            ));
        }
    }
}
