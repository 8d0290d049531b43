//! `hooks.notify`: local commands run on the operator's machine when a change
//! starts, pauses, finishes or is rolled back, so a team can post to its chat.
//! A notification never fails or delays a change beyond its own timeout.
//! Each command gets the notice as `SHIPDECK_*` variables and as one JSON
//! object on stdin (docs/json.md, kind `notify`).

use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::host::sh::exports;
use crate::transport::local::LocalTransport;

/// A chat webhook that takes longer than this is not worth a slower rollback.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(15);

/// What a notification says.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    /// `started`, `paused`, `succeeded`, `failed`, `rolled-back`, `cancelled`,
    /// `breach`, `override`.
    pub event: String,
    pub env: String,
    pub kind: String,
    pub release: String,
    pub outcome: String,
    pub who: String,
    pub change: String,
    pub summary: String,
}

impl Notice {
    fn vars(&self) -> Vec<(String, String)> {
        [
            ("SHIPDECK_EVENT", &self.event),
            ("SHIPDECK_ENV", &self.env),
            ("SHIPDECK_KIND", &self.kind),
            ("SHIPDECK_RELEASE", &self.release),
            ("SHIPDECK_OUTCOME", &self.outcome),
            ("SHIPDECK_WHO", &self.who),
            ("SHIPDECK_CHANGE", &self.change),
            ("SHIPDECK_SUMMARY", &self.summary),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }

    /// The notice as JSON: the same fields as the variables, an empty one
    /// as `null`.
    pub fn json(&self) -> serde_json::Value {
        let or_null = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        serde_json::json!({
            "schema": super::JSON_SCHEMA,
            "kind": "notify",
            "event": self.event,
            "env": self.env,
            "action": or_null(&self.kind),
            "release": or_null(&self.release),
            "outcome": or_null(&self.outcome),
            "who": self.who,
            "change": self.change,
            "summary": self.summary,
            "time": crate::model::time::now_rfc3339(),
        })
    }
}

/// Run every notify command in the background, in the config's folder; join
/// the handle before the process exits so the message goes out.
pub fn send(commands: &[String], dir: &Path, notice: Notice) -> Option<JoinHandle<()>> {
    if commands.is_empty() {
        return None;
    }
    let commands = commands.to_vec();
    let dir = dir.to_owned();
    Some(std::thread::spawn(move || {
        let mut t = LocalTransport::new("notify", &dir);
        let mut input = notice.json().to_string();
        input.push('\n');
        for cmd in &commands {
            let script = format!("{}{cmd}\n", exports(&notice.vars()));
            match t.exec_with_input(&script, input.as_bytes(), NOTIFY_TIMEOUT) {
                Ok(out) if out.success() => {}
                Ok(out) => {
                    tracing::warn!(command = %cmd, status = out.status, output = %out.summary(), "notify command failed")
                }
                Err(e) => tracing::warn!(command = %cmd, error = %e, "notify command did not run"),
            }
        }
    }))
}
