//! `.shipdeck/finish.json`: a switched blue/green change whose old slot still
//! runs, until the change is finished.

use super::{ReleaseId, Slot};

/// A switched blue/green change whose old slot still runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingFinish {
    pub change: String,
    /// The slot taking traffic, and what it runs.
    pub live: Slot,
    pub release: ReleaseId,
    /// The slot still running the release traffic left; `None` on a host's
    /// first blue/green change, when that release ran outside the slots.
    pub old: Option<Slot>,
    pub old_release: Option<ReleaseId>,
    /// When the change finishes by itself (RFC 3339), if it does.
    pub finish_at: Option<String>,
}

impl PendingFinish {
    /// When the change finishes by itself; `None` when it waits for
    /// `shipdeck finish` (or its time cannot be read).
    pub fn due(&self) -> Option<std::time::SystemTime> {
        crate::model::time::parse_rfc3339(self.finish_at.as_deref()?)
    }
}

/// One line on a host's unfinished blue/green change, as `status` prints it.
pub fn describe_pending(env: &str, host: &str, p: &PendingFinish) -> String {
    let old = match (&p.old, &p.old_release) {
        (Some(slot), Some(r)) => format!("{slot} still runs {r}: a rollback is the switch back"),
        (None, Some(r)) => format!("{r} still runs outside the slots"),
        (_, None) => "nothing ran before".to_owned(),
    };
    let when = p.finish_at.as_ref().map_or_else(
        || format!("until `shipdeck finish {env}`"),
        |at| format!("until {at} (or `shipdeck finish {env}`)"),
    );
    format!(
        "{env} {host}: {} live with {}; {old}, {when}",
        p.live, p.release
    )
}
