use std::path::Path;
use std::time::Duration;

use super::layout::Layout;
use super::sh::{exports, quote};
use super::state::{HostState, LockState, parse_probe, probe_script};
use crate::model::pending::PendingFinish;
use crate::model::{HistoryRecord, LockOwner, ReleaseId, Slot};
use crate::transport::{BreaksSession, Output, Transport, TransportError};

/// Bookkeeping commands (probe, lock, switch, record) are quick; a host that
/// cannot answer them in this time is treated as gone.
pub const QUICK: Duration = Duration::from_secs(30);

/// Commands every host needs for shipdeck's own steps.
pub const REQUIRED_COMMANDS: &[&str] = &[
    "sh",
    "mkdir",
    "mv",
    "ln",
    "readlink",
    "rm",
    "cp",
    "tar",
    "gzip",
    "sha256sum",
    "df",
    "tail",
    "sed",
    "tr",
    "cat",
    "awk",
    "cut",
    "grep",
    "dirname",
];

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{what} failed (exit {status}): {detail}")]
    Command {
        what: String,
        status: i32,
        detail: String,
    },
    #[error("{0}")]
    Refused(String),
}

impl StepError {
    fn command(what: impl Into<String>, out: &Output) -> Self {
        StepError::Command {
            what: what.into(),
            status: out.status,
            detail: out.summary(),
        }
    }
}

impl BreaksSession for StepError {
    fn breaks_session(&self) -> bool {
        matches!(self, StepError::Transport(e) if e.breaks_session())
    }
}

fn run(
    t: &mut dyn Transport,
    what: &str,
    script: &str,
    timeout: Duration,
) -> Result<Output, StepError> {
    let out = t.exec(script, timeout)?;
    if out.success() {
        Ok(out)
    } else {
        Err(StepError::command(what, &out))
    }
}

/// Read everything shipdeck needs to know about a host.
pub fn probe(t: &mut dyn Transport, layout: &Layout) -> Result<HostState, StepError> {
    let out = run(t, "reading the host's state", &probe_script(layout), QUICK)?;
    Ok(parse_probe(&out.stdout))
}

pub enum LockAttempt {
    /// The lock is ours; the state was read while holding it.
    Acquired(HostState),
    /// Someone else holds it.
    Held(LockState, HostState),
}

/// Take the lock atomically (`mkdir`) and read the host's state in the same
/// round trip. Creates `deploy_to` and its folders on a new host.
///
/// `take_over` names an interrupted change whose lock may be taken: its owner
/// file is replaced in the same script, so no other operator can slip in.
pub fn lock(
    t: &mut dyn Transport,
    layout: &Layout,
    owner: &LockOwner,
    take_over: Option<&str>,
) -> Result<LockAttempt, StepError> {
    let json = serde_json::to_string(owner).expect("a lock owner serializes");
    let take_over = match take_over {
        Some(change) => format!(
            "elif [ -f {owner} ] && read -r o < {owner} && case \"$o\" in *{marker}*) true;; *) false;; esac; then printf '%s\\n' {json} > {owner} || exit 1; echo lock-acquired; ",
            owner = quote(&layout.lock_owner()),
            marker = quote(&change_marker(change)),
            json = quote(&json),
        ),
        None => String::new(),
    };
    let script = format!(
        "[ -d {releases} ] && [ -d {shared} ] && [ -d {uploads} ] && [ -d {verified} ] || mkdir -p {releases} {shared} {uploads} {verified} || exit 1\n\
         if mkdir {lock} 2>/dev/null; then printf '%s\\n' {json} > {owner} || {{ rm -rf {lock}; exit 1; }}; echo lock-acquired; {take_over}else echo lock-held; fi\n{probe}",
        releases = quote(&layout.releases()),
        shared = quote(&layout.shared()),
        uploads = quote(&layout.uploads()),
        verified = quote(&layout.verified_dir()),
        lock = quote(&layout.lock()),
        owner = quote(&layout.lock_owner()),
        json = quote(&json),
        probe = probe_script(layout),
    );
    let out = run(t, "taking the lock", &script, QUICK)?;
    let state = parse_probe(&out.stdout);
    if out.stdout.lines().any(|l| l == "lock-acquired") {
        Ok(LockAttempt::Acquired(state))
    } else {
        let held = state
            .lock
            .clone()
            .unwrap_or_else(|| LockState::Unknown(String::new()));
        Ok(LockAttempt::Held(held, state))
    }
}

/// Release a lock. Without `force`, only a lock whose owner file names `change`
/// (or, for a hold, the same operator) is removed.
pub fn unlock(
    t: &mut dyn Transport,
    layout: &Layout,
    owned_by: Option<&str>,
) -> Result<(), StepError> {
    run(
        t,
        "releasing the lock",
        &unlock_script(layout, owned_by),
        QUICK,
    )?;
    Ok(())
}

pub fn unlock_script(layout: &Layout, owned_by: Option<&str>) -> String {
    match owned_by {
        None => format!("rm -rf {}", quote(&layout.lock())),
        Some(marker) => format!(
            "if [ -f {owner} ]; then read -r o < {owner}; case \"$o\" in *{marker}*) rm -rf {lock};; esac; fi",
            marker = quote(marker),
            owner = quote(&layout.lock_owner()),
            lock = quote(&layout.lock()),
        ),
    }
}

/// Write this host's journal atomically: a journal is whole or absent.
pub fn journal_script(layout: &Layout, journal: &crate::model::journal::Journal) -> String {
    let json = serde_json::to_string(journal).expect("a journal serializes");
    let path = layout.journal();
    format!(
        "printf '%s\\n' {json} > {tmp} && mv -f {tmp} {path}",
        json = quote(&json),
        tmp = quote(&format!("{path}.tmp")),
        path = quote(&path),
    )
}

/// The change is over: no journal, no word left for it.
pub fn clear_journal_script(layout: &Layout) -> String {
    format!(
        "rm -f {} {}",
        quote(&layout.journal()),
        quote(&layout.signal())
    )
}

/// Leave a word for a paused change; `None` removes it once read.
pub fn signal_script(layout: &Layout, word: Option<&str>) -> String {
    match word {
        Some(w) => format!("printf '%s\\n' {} > {}", quote(w), quote(&layout.signal())),
        None => format!("rm -f {}", quote(&layout.signal())),
    }
}

/// The text that identifies a change's lock in its owner file.
pub fn change_marker(change: &str) -> String {
    format!(
        "\"change\":{}",
        serde_json::Value::String(change.to_owned())
    )
}

/// What `unlock` matches in a lock's owner file so that only the lock that
/// was read goes: one taken since by someone else stays.
pub fn owner_marker(o: &LockOwner) -> String {
    format!(
        "\"pid\":{},\"since\":{}",
        o.pid,
        serde_json::Value::String(o.since.clone())
    )
}

/// Upload the artifact, check its sha256 on the host, unpack it into a hidden
/// temporary directory and rename that into `releases/<id>`: a release
/// directory is either complete or absent.
pub fn upload_and_unpack(
    t: &mut dyn Transport,
    layout: &Layout,
    artifact: &Path,
    id: &ReleaseId,
    sha256: &str,
    nonce: &str,
    timeout: Duration,
) -> Result<(), StepError> {
    let part = layout.upload_part(id, nonce);
    t.upload(artifact, &part, timeout)?;
    let tmp = format!("{}/.{id}.tmp-{nonce}", layout.releases());
    let script = format!(
        r#"part={part}; tmp={tmp}; rel={rel}; cur={cur}
got=$(sha256sum "$part" | cut -d' ' -f1)
if [ "$got" != {sha} ]; then rm -f "$part"; echo "uploaded file has sha256 $got, expected "{sha} >&2; exit 1; fi
rm -rf {releases}/.{id_q}.tmp-* && mkdir "$tmp" && tar --no-same-owner -xzf "$part" -C "$tmp" || {{ rm -rf "$tmp" "$part"; echo 'unpacking failed' >&2; exit 1; }}
if [ -e "$rel" ]; then
  if [ "$(readlink "$cur" 2>/dev/null)" = "releases/"{id_q} ]; then rm -rf "$tmp" "$part"; echo "releases/"{id_q}" is the current release but holds other content; refusing to replace it" >&2; exit 1; fi
  rm -rf "$rel"
fi
mv -T "$tmp" "$rel" && printf '%s\n' {sha} > {verified} && rm -f "$part"
"#,
        part = quote(&part),
        tmp = quote(&tmp),
        rel = quote(&layout.release(id)),
        cur = quote(&layout.current()),
        sha = quote(sha256),
        releases = quote(&layout.releases()),
        id_q = quote(id.as_str()),
        verified = quote(&layout.verified(id)),
    );
    run(t, "verifying and unpacking", &script, timeout)?;
    Ok(())
}

/// Link each shared path into the release. A shared path that does not exist
/// yet is seeded from the release when it ships one, else created as a folder.
pub fn link_shared(
    t: &mut dyn Transport,
    layout: &Layout,
    id: &ReleaseId,
    shared: &[String],
) -> Result<(), StepError> {
    if shared.is_empty() {
        return Ok(());
    }
    let rel = layout.release(id);
    let mut script = String::from("set -e\n");
    for p in shared {
        let target = layout.shared_path(p);
        let link = format!("{rel}/{p}");
        script.push_str(&format!(
            "t={t}; l={l}\nmkdir -p \"$(dirname \"$t\")\"\n\
             if [ ! -e \"$t\" ] && [ ! -L \"$t\" ]; then if [ -e \"$l\" ]; then cp -a \"$l\" \"$t\"; else mkdir -p \"$t\"; fi; fi\n\
             rm -rf \"$l\"; mkdir -p \"$(dirname \"$l\")\"; ln -s \"$t\" \"$l\"\n",
            t = quote(&target),
            l = quote(&link),
        ));
    }
    run(t, "linking shared paths", &script, QUICK)?;
    Ok(())
}

/// Environment variables every hook sees.
#[derive(Debug, Clone)]
pub struct HookEnv {
    pub env: String,
    pub host: String,
    pub release: ReleaseId,
    pub previous: Option<ReleaseId>,
    pub deploy_to: String,
    pub release_dir: String,
    /// The host's `vars`, exported as `SHIPDECK_VAR_<NAME>`.
    pub host_vars: std::collections::BTreeMap<String, String>,
    /// The blue/green slot this command is about, and its port
    /// (`SHIPDECK_SLOT`, `SHIPDECK_SLOT_PORT`).
    pub slot: Option<(crate::model::Slot, u16)>,
}

impl HookEnv {
    fn vars(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = self
            .host_vars
            .iter()
            .map(|(k, v)| {
                (
                    format!("SHIPDECK_VAR_{}", k.to_ascii_uppercase()),
                    v.clone(),
                )
            })
            .collect();
        vars.extend(
            [
                ("SHIPDECK_ENV", self.env.clone()),
                ("SHIPDECK_HOST", self.host.clone()),
                ("SHIPDECK_RELEASE", self.release.to_string()),
                (
                    "SHIPDECK_PREVIOUS_RELEASE",
                    self.previous
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                ),
                ("SHIPDECK_DEPLOY_TO", self.deploy_to.clone()),
                ("SHIPDECK_RELEASE_DIR", self.release_dir.clone()),
            ]
            .map(|(k, v)| (k.to_owned(), v)),
        );
        if let Some((slot, port)) = self.slot {
            vars.push(("SHIPDECK_SLOT".into(), slot.to_string()));
            vars.push(("SHIPDECK_SLOT_PORT".into(), port.to_string()));
        }
        vars
    }
}

/// Run one configured command (a hook, the restart, a health command) in `dir`.
/// Its exit status decides; its output is kept for the operator.
pub fn run_command(
    t: &mut dyn Transport,
    what: &str,
    dir: &str,
    command: &str,
    env: &HookEnv,
    timeout: Duration,
) -> Result<Output, StepError> {
    let script = format!(
        "{}cd {} || exit 1\n{command}\n",
        exports(&env.vars()),
        quote(dir)
    );
    run(t, what, &script, timeout)
}

/// Point `current` at `to` atomically: a new link under a temporary name,
/// renamed over `current` (`mv -T` is rename(2); `ln -sfn` is not atomic).
/// `None` removes `current`, which is how a host that ran nothing goes back.
pub fn switch(
    t: &mut dyn Transport,
    layout: &Layout,
    to: Option<&ReleaseId>,
    nonce: &str,
) -> Result<(), StepError> {
    run(
        t,
        "switching current",
        &switch_script(layout, to, nonce),
        QUICK,
    )?;
    Ok(())
}

pub fn switch_script(layout: &Layout, to: Option<&ReleaseId>, nonce: &str) -> String {
    match to {
        Some(id) => link_script(
            layout,
            id,
            &format!("releases/{id}"),
            &format!(".current.tmp-{nonce}"),
            "current",
        ),
        None => format!("rm -f {}", quote(&layout.current())),
    }
}

/// Point a blue/green slot (`slots/blue`) at `release`, atomically, like
/// `current`. A finish left pending by an earlier change is over once its old
/// slot is reused.
pub fn link_slot_script(layout: &Layout, slot: Slot, release: &ReleaseId, nonce: &str) -> String {
    format!(
        "{}\nrm -f {}",
        link_script(
            layout,
            release,
            &format!("../releases/{release}"),
            &format!("slots/.{slot}.tmp-{nonce}"),
            &format!("slots/{slot}"),
        ),
        quote(&layout.pending_finish())
    )
}

/// Record which slot takes traffic (`.shipdeck/slot`).
pub fn live_slot_script(layout: &Layout, slot: Slot) -> String {
    format!("printf '%s\\n' {slot} > {}", quote(&layout.live_slot()))
}

/// Write what a switched blue/green change leaves to finish
/// (`.shipdeck/finish.json`), or clear it.
pub fn pending_finish_script(layout: &Layout, pending: Option<&PendingFinish>) -> String {
    match pending {
        Some(p) => format!(
            "printf '%s\\n' {} > {}",
            quote(&serde_json::to_string(p).expect("a pending finish serializes")),
            quote(&layout.pending_finish())
        ),
        None => format!("rm -f {}", quote(&layout.pending_finish())),
    }
}

/// In `deploy_to`: make `link` (relative to it) point at `target` by a new
/// link under `tmp` renamed over it, once the release is known to be there.
fn link_script(
    layout: &Layout,
    release: &ReleaseId,
    target: &str,
    tmp: &str,
    link: &str,
) -> String {
    let dir = link.rsplit_once('/').map(|(dir, _)| dir);
    format!(
        "cd {root} || exit 1\n{mkdir}[ -d {rel} ] || {{ echo \"release \"{rel}\" is not on this host\" >&2; exit 1; }}\n\
         ln -s {target} {tmp} && mv -T {tmp} {link} || {{ rm -f {tmp}; exit 1; }}",
        root = quote(layout.root()),
        mkdir = dir.map_or(String::new(), |d| format!(
            "mkdir -p {} || exit 1\n",
            quote(d)
        )),
        rel = quote(&format!("releases/{release}")),
        target = quote(target),
        tmp = quote(tmp),
        link = quote(link),
    )
}

pub fn append_history(
    t: &mut dyn Transport,
    layout: &Layout,
    record: &HistoryRecord,
) -> Result<(), StepError> {
    run(t, "writing history", &history_script(layout, record), QUICK)?;
    Ok(())
}

/// Append one record to the host's history, crash-safe:
/// - the record and its newline go out in one `write` (one `printf '%s'` of
///   one word; `printf '%s\n'` is two writes in dash), so a record is never
///   half-written by a second writer, and a full disk cuts at most this line;
/// - a torn last line (no newline at the end: a full disk or a kill cut it)
///   is never glued onto: the record then starts on a line of its own, and
///   the torn line stays where it is, reported as corrupt by whoever reads;
/// - a record goes in whole or not at all: it is first written to a file of
///   its own, and appended only once that file took every byte (a full disk
///   refuses the record, and the step fails, instead of cutting it).
pub fn history_script(layout: &Layout, record: &HistoryRecord) -> String {
    let json = serde_json::to_string(record).expect("a history record serializes");
    format!(
        "{{ [ -d {meta} ] || mkdir -p {meta}; }} &&\n\
         h={history} && r={line} &&\n\
         if [ -s \"$h\" ] && [ -n \"$(tail -c 1 \"$h\")\" ]; then r={after_torn}; fi &&\n\
         t=\"$h.room-$$\" && {{ printf '%s' \"$r\" > \"$t\" && [ \"$(wc -c < \"$t\")\" -eq \"$(printf '%s' \"$r\" | wc -c)\" ]; }}; room=$?; rm -f \"$t\"; \
         [ \"$room\" -eq 0 ] || {{ echo 'no room on the disk for a history record: nothing was written' >&2; exit 1; }}\n\
         printf '%s' \"$r\" >> \"$h\"",
        meta = quote(&layout.meta()),
        history = quote(&layout.history()),
        line = quote(&format!("{json}\n")),
        after_torn = quote(&format!("\n{json}\n")),
    )
}

/// Succeeds only while `current` points at `release`: a success is recorded
/// for what the host runs, never for what a journal or a plan expected.
pub fn current_is_script(layout: &Layout, release: &ReleaseId) -> String {
    format!(
        "l=$(readlink {current}) || l=nothing; [ \"$l\" = {want} ] || {{ echo \"current points at $l, not \"{want} >&2; exit 1; }}",
        current = quote(&layout.current()),
        want = quote(&format!("releases/{release}")),
    )
}

/// Run several steps' scripts in one round trip, each only if the one before
/// succeeded. Over many hosts a round trip is the dominant cost of a rollback.
pub fn run_together(
    t: &mut dyn Transport,
    what: &str,
    scripts: &[String],
) -> Result<(), StepError> {
    let script = scripts
        .iter()
        .map(|s| format!("{{\n{s}\n}}"))
        .collect::<Vec<_>>()
        .join(" &&\n");
    run(t, what, &script, QUICK)?;
    Ok(())
}

/// Remove these release directories and their verification marks.
pub fn remove_releases(
    t: &mut dyn Transport,
    layout: &Layout,
    ids: &[ReleaseId],
) -> Result<(), StepError> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut script = String::new();
    for id in ids {
        script.push_str(&format!(
            "rm -rf {} {}\n",
            quote(&layout.release(id)),
            quote(&layout.verified(id))
        ));
    }
    run(t, "removing old releases", &script, QUICK)?;
    Ok(())
}

/// What preflight learns about a host beyond its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preflight {
    pub writable: bool,
    /// Free space on the file system that holds (or will hold) `deploy_to`.
    pub free_bytes: Option<u64>,
    pub missing_commands: Vec<String>,
    /// Of the programs asked about, those not on the host (`command -v`).
    pub missing_programs: Vec<String>,
}

/// `programs`: what the configured hooks and health command start with,
/// by name or absolute path, looked up as the deploy user's `sh` would.
pub fn preflight(
    t: &mut dyn Transport,
    layout: &Layout,
    programs: &[String],
) -> Result<Preflight, StepError> {
    let asked = if programs.is_empty() {
        String::new()
    } else {
        format!(
            "for c in {}; do command -v \"$c\" >/dev/null 2>&1 || printf 'missing-program %s\\n' \"$c\"; done\n",
            programs
                .iter()
                .map(|p| quote(p))
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let script = format!(
        r#"d={root}
while [ ! -e "$d" ]; do d=$(dirname "$d"); done
if [ -w "$d" ]; then echo writable; fi
printf 'free %s\n' "$(df -Pk "$d" | awk 'NR==2 {{print $4}}')"
for c in {commands}; do command -v "$c" >/dev/null 2>&1 || printf 'missing %s\n' "$c"; done
{asked}"#,
        root = quote(layout.root()),
        commands = REQUIRED_COMMANDS.join(" "),
    );
    let out = run(t, "preflight", &script, QUICK)?;
    let mut p = Preflight {
        writable: false,
        free_bytes: None,
        missing_commands: Vec::new(),
        missing_programs: Vec::new(),
    };
    for line in out.stdout.lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        match k {
            "writable" => p.writable = true,
            "free" => p.free_bytes = v.trim().parse::<u64>().ok().map(|kb| kb * 1024),
            "missing" => p.missing_commands.push(v.to_owned()),
            "missing-program" => p.missing_programs.push(v.to_owned()),
            _ => {}
        }
    }
    Ok(p)
}
