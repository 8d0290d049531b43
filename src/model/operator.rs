/// Who is making a change and from which machine; written into locks and history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Operator {
    pub who: String,
    pub machine: String,
}

impl Operator {
    /// `SHIPDECK_OPERATOR`, else the login name; `SHIPDECK_MACHINE`, else the
    /// machine's host name (a CI container's host name changes every run, and
    /// a stable name lets its next run tell its own dead changes).
    pub fn current() -> Self {
        let who = ["SHIPDECK_OPERATOR", "USER", "LOGNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
            .or_else(login_name_from_passwd)
            .unwrap_or_else(|| "unknown".to_owned());
        let machine = std::env::var("SHIPDECK_MACHINE")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned());
        Operator { who, machine }
    }
}

/// The name of this process's user, from /etc/passwd (for cron jobs and
/// containers that set no `USER`).
fn login_name_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.who, self.machine)
    }
}
