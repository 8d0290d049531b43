//! The scripts the monitor and the canary read hosts with: log follows,
//! the state fingerprint, the `/proc` sample. Only `host` writes shell; the
//! readers parse what these print.

use crate::config::Config;

use super::Layout;
use super::sh::quote;

/// Reads only the lines the parser needs, with shell builtins: one `sh` and
/// no other process per sample, and no multi-kilobyte `intr` line over the
/// wire. Five meminfo lines cover kernels with and without `MemAvailable`.
pub const PROC_SCRIPT: &str = "read -r c < /proc/stat\n\
{ read -r m1; read -r m2; read -r m3; read -r m4; read -r m5; } < /proc/meminfo\n\
read -r l < /proc/loadavg\n\
printf '%s\\n' '==stat' \"$c\" '==meminfo' \"$m1\" \"$m2\" \"$m3\" \"$m4\" \"$m5\" '==loadavg' \"$l\"\n";

/// The script that follows a host's logs, or `None` when `[logs]` names nothing.
pub fn tail_script(cfg: &Config, deploy_to: &str, lines: usize) -> Option<String> {
    let layout = Layout::new(deploy_to);
    if let Some(cmd) = &cfg.logs.command {
        // `exec sh -c`: the command may be a pipeline or a list, and the
        // follow still ends with the channel.
        return Some(format!(
            "cd {} 2>/dev/null || cd {} || exit 1\nexec sh -c {}",
            quote(&layout.current()),
            quote(deploy_to),
            quote(cmd)
        ));
    }
    if cfg.logs.files.is_empty() {
        return None;
    }
    Some(format!(
        "exec tail -q -F -n {lines} -- {} 2>/dev/null",
        resolved_files(cfg, deploy_to).join(" ")
    ))
}

/// `[logs] files`, each quoted, a relative one taken as under `deploy_to`
/// (the login directory of whoever runs the follow means nothing here).
pub fn resolved_files(cfg: &Config, deploy_to: &str) -> Vec<String> {
    let root = deploy_to.trim_end_matches('/');
    cfg.logs
        .files
        .iter()
        .map(|f| {
            if f.starts_with('/') {
                quote(f)
            } else {
                quote(&format!("{root}/{f}"))
            }
        })
        .collect()
}

/// Printed by [`monitor_tail_script`] between the backlog and the live lines.
/// Starts with a control character no log line is expected to hold.
pub const LIVE_MARKER: &str = "\u{1e}shipdeck-live";

/// The backlog is read from at most this many bytes at the end of each file,
/// so a huge log costs no more than a small one.
const BACKLOG_BYTES: u64 = 256 * 1024;

/// Like [`tail_script`], but for files the last `backlog` lines come first,
/// then [`LIVE_MARKER`], then every byte written after them: each file's size
/// is taken once, the backlog ends there and the follow starts there, so a
/// line written at the moment of a (re)connect is neither lost nor doubled,
/// and a follow that reconnects can tell the lines it already showed from
/// the new ones (see [`Resync`]). Returns the script and whether it prints
/// the marker.
pub fn monitor_tail_script(
    cfg: &Config,
    deploy_to: &str,
    backlog: usize,
) -> Option<(String, bool)> {
    if cfg.logs.command.is_some() {
        return tail_script(cfg, deploy_to, backlog).map(|s| (s, false));
    }
    let files = resolved_files(cfg, deploy_to);
    if files.is_empty() {
        return None;
    }
    let mut script = String::new();
    for (i, f) in files.iter().enumerate() {
        script.push_str(&format!("s{i}=$(wc -c 2>/dev/null < {f}) || s{i}=0\n"));
    }
    for (i, f) in files.iter().enumerate() {
        script.push_str(&format!(
            "b=$((s{i} - {BACKLOG_BYTES})); [ \"$b\" -gt 0 ] || b=0\n\
             tail -c +$((b + 1)) {f} 2>/dev/null | head -c $((s{i} - b)) | tail -n {backlog}\n"
        ));
    }
    script.push_str("printf '\\036shipdeck-live\\n'\n");
    if let [f] = files.as_slice() {
        script.push_str(&format!("exec tail -c +$((s0 + 1)) -F {f} 2>/dev/null\n"));
    } else {
        for (i, f) in files.iter().enumerate() {
            script.push_str(&format!("tail -c +$((s{i} + 1)) -F {f} 2>/dev/null &\n"));
        }
        script.push_str("wait\n");
    }
    Some((script, true))
}

/// Names, sizes, times and link targets of everything a host view (`monitor::HostView`) is read
/// from, in one line per path. Comparing it with the last one tells whether
/// the full probe (up to `HISTORY_TAIL` history lines) is worth reading again:
/// a `mv -T` switch changes `current`'s target, a new or removed release the
/// `releases` directory's time, a lock its presence, a history line the
/// file's size, a change's journal its presence and time, a blue/green
/// switch or finish the slot and finish files. One `stat`
/// process; the globs are the shell's. (A change whose process died changes
/// no file: the periodic full read finds it interrupted.)
pub fn fingerprint_script(layout: &Layout) -> String {
    format!(
        "cd {root} 2>/dev/null || {{ echo absent; exit 0; }}\n\
         exec stat -c '%n %s %Y %N' current releases releases/* .shipdeck/lock .shipdeck/lock/owner.json .shipdeck/history.jsonl .shipdeck/change.json .shipdeck/slot .shipdeck/finish.json 2>/dev/null\n",
        root = quote(layout.root()),
    )
}

/// Between the two halves of [`monitor_tick_script`]'s output.
pub const STATE_MARK: &str = "@@shipdeck-state";

/// The monitor's regular look at a host in one command: the `/proc` sample
/// (builtins only), then [`STATE_MARK`], then the state fingerprint. One
/// session channel and one `sh` every two seconds instead of two.
pub fn monitor_tick_script(layout: &Layout) -> String {
    format!(
        "{PROC_SCRIPT}echo {STATE_MARK}\n{}",
        fingerprint_script(layout)
    )
}

/// [`monitor_tick_script`]'s output as (`/proc` sample, fingerprint); the
/// fingerprint is `None` when the marker never came (the script was cut
/// short).
pub fn split_monitor_tick(out: &str) -> (&str, Option<&str>) {
    let mark = format!("{STATE_MARK}\n");
    match out.find(&mark) {
        Some(at) => (&out[..at], Some(&out[at + mark.len()..])),
        None => (out, None),
    }
}

/// Log bytes the canary reads per file and tick; a log growing faster than
/// this is read behind, catching up over the next ticks.
pub const MAX_LOG_READ: u64 = 1 << 20;
pub const FILE_MARK: &str = "@@shipdeck-file ";
pub const MISSING_MARK: &str = "@@shipdeck-missing ";
pub const SIGNAL_MARK: &str = "@@shipdeck-signal ";
pub const END_MARK: &str = "@@shipdeck-end";

/// What a canary's tick reads from one host: the new bytes of each log file
/// (`files`: quoted path and the offset read so far, `None` on the first
/// tick, which only learns where the file ends) with marks around them, and
/// the word `shipdeck continue`/`abort` may have left. Without `read_files`
/// (a `logs.command` is followed instead) only the word.
pub fn canary_read_script(
    read_files: bool,
    layout: &Layout,
    files: &[(&str, Option<u64>)],
) -> String {
    let mut s = String::new();
    if read_files {
        for (i, (file, offset)) in files.iter().enumerate() {
            // The first tick only learns where the file ends.
            let read = match offset {
                None => String::new(),
                Some(off) => format!(
                    "if [ \"$s\" -ge {off} ]; then tail -c +{} {file} | head -c {MAX_LOG_READ}; else head -c {MAX_LOG_READ} {file}; fi",
                    off + 1
                ),
            };
            // `wc` pads its count on some systems: keep the last word.
            s.push_str(&format!(
                "if [ -f {file} ] && [ -r {file} ]; then\n\
                 s=$(wc -c < {file}) || s=0\ns=${{s##* }}\n\
                 printf '\\n{FILE_MARK}{i} %s\\n' \"$s\"\n{read}\n\
                 else printf '\\n{MISSING_MARK}{i}\\n'; fi\n"
            ));
        }
        // Every mark starts with a newline of its own, so the text before it
        // ends exactly where the file's bytes did.
        s.push_str(&format!("printf '\\n{END_MARK}\\n'\n"));
    }
    s.push_str(&format!(
        "if [ -f {sig} ]; then printf '\\n{SIGNAL_MARK}'; cat {sig}; fi\n",
        sig = quote(&layout.signal())
    ));
    s
}
