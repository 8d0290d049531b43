//! Host metrics from `/proc`: one command per sample, parsed without I/O.

/// The aggregate `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Every tick counted (guest time is already inside user time).
    pub total: u64,
    /// Ticks spent idle or waiting for I/O.
    pub idle: u64,
}

/// One reading of `/proc`, before the CPU share is known (it needs two).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    pub cpu: Option<CpuTimes>,
    /// Bytes.
    pub mem_total: u64,
    /// Bytes not available to new work: total minus `MemAvailable`.
    pub mem_used: u64,
    pub load1: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable /proc sample: {0}")]
pub struct ProcError(&'static str);

/// Parse the output of `host::readings::PROC_SCRIPT`; whole files under the same `==name`
/// headers (as `cat` would print them) parse the same way.
pub fn parse_proc(text: &str) -> Result<ProcSample, ProcError> {
    let mut section = "";
    let mut cpu = None;
    let mut load1 = None;
    let mut mem = MemInfo::default();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("==") {
            section = name.trim();
            continue;
        }
        match section {
            "stat" if cpu.is_none() => {
                if let Some(rest) = line.strip_prefix("cpu ") {
                    cpu = parse_cpu(rest);
                }
            }
            "meminfo" => mem.line(line),
            "loadavg" if load1.is_none() => {
                load1 = line
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<f64>().ok());
            }
            _ => {}
        }
    }
    let mem_total = mem.total.ok_or(ProcError("no MemTotal in /proc/meminfo"))?;
    let available = match mem.available {
        Some(a) => a,
        // Kernels before 3.14: the old estimate of what could be freed.
        None => mem
            .free
            .ok_or(ProcError("no MemAvailable or MemFree in /proc/meminfo"))?
            .saturating_add(mem.buffers.unwrap_or(0))
            .saturating_add(mem.cached.unwrap_or(0)),
    };
    Ok(ProcSample {
        cpu,
        mem_total: mem_total.saturating_mul(1024),
        mem_used: mem_total.saturating_sub(available).saturating_mul(1024),
        load1: load1.ok_or(ProcError("no load average in /proc/loadavg"))?,
    })
}

fn parse_cpu(fields: &str) -> Option<CpuTimes> {
    let ticks: Vec<u64> = fields
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle [iowait irq softirq steal [guest guest_nice]]
    if ticks.len() < 4 {
        return None;
    }
    let counted = &ticks[..ticks.len().min(8)];
    Some(CpuTimes {
        total: counted.iter().sum(),
        idle: ticks[3] + ticks.get(4).copied().unwrap_or(0),
    })
}

/// Kilobyte values of the `/proc/meminfo` keys used.
#[derive(Default)]
struct MemInfo {
    total: Option<u64>,
    free: Option<u64>,
    available: Option<u64>,
    buffers: Option<u64>,
    cached: Option<u64>,
}

impl MemInfo {
    fn line(&mut self, line: &str) {
        let Some((key, rest)) = line.split_once(':') else {
            return;
        };
        let slot = match key {
            "MemTotal" => &mut self.total,
            "MemFree" => &mut self.free,
            "MemAvailable" => &mut self.available,
            "Buffers" => &mut self.buffers,
            "Cached" => &mut self.cached,
            _ => return,
        };
        *slot = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok());
    }
}

/// The busy share of all CPUs between two readings, in percent. `None` when
/// it cannot be told: no time passed, or the counters went back (a reboot).
pub fn cpu_percent(before: CpuTimes, after: CpuTimes) -> Option<f64> {
    let total = after.total.checked_sub(before.total)?;
    let idle = after.idle.checked_sub(before.idle)?;
    if total == 0 {
        return None;
    }
    let busy = total.saturating_sub(idle);
    Some((busy as f64 * 100.0 / total as f64).clamp(0.0, 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole files from a Debian 12 machine (2 cores, kernel 6.x), as
    /// `echo ==stat; cat /proc/stat; …` prints them.
    const FULL: &str = "==stat
cpu  240735 0 95226 337110 2321 0 1723 92 0 0
cpu0 115790 0 46099 175389 477 0 782 46 0 0
cpu1 124944 0 49127 161720 1843 0 940 46 0 0
intr 2307693 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1 1 14 0 0 0 0 679 356 0 67
ctxt 4913265
btime 1763780000
processes 29142
procs_running 1
procs_blocked 0
softirq 1170405 0 240271 3 106702 0 0 4147 486395 0 332887
==meminfo
MemTotal:       24684092 kB
MemFree:        24373612 kB
MemAvailable:   24301292 kB
Buffers:             328 kB
Cached:            20172 kB
SwapCached:            0 kB
Active:            10780 kB
Inactive:          68792 kB
==loadavg
0.28 3.96 11.27 1/132 29142
";

    #[test]
    fn parses_whole_proc_files() {
        let s = parse_proc(FULL).unwrap();
        assert_eq!(
            s.cpu,
            Some(CpuTimes {
                total: 240735 + 95226 + 337110 + 2321 + 1723 + 92,
                idle: 337110 + 2321,
            })
        );
        assert_eq!(s.mem_total, 24684092 * 1024);
        assert_eq!(s.mem_used, (24684092 - 24301292) * 1024);
        assert_eq!(s.load1, 0.28);
    }

    #[test]
    fn parses_what_the_script_prints() {
        let out = "==stat\ncpu  10 0 10 80 0 0 0 0 0 0\n==meminfo\nMemTotal:  1000 kB\n\
                   MemFree:  100 kB\nMemAvailable:  600 kB\nBuffers:  1 kB\nCached:  2 kB\n\
                   ==loadavg\n1.50 1.00 0.50 2/300 4242\n";
        let s = parse_proc(out).unwrap();
        assert_eq!(
            s.cpu,
            Some(CpuTimes {
                total: 100,
                idle: 80
            })
        );
        assert_eq!((s.mem_used, s.mem_total), (400 * 1024, 1000 * 1024));
        assert_eq!(s.load1, 1.5);
    }

    #[test]
    fn old_kernels_without_mem_available_use_free_buffers_and_cache() {
        // A 2.6/3.x kernel: no MemAvailable, and only four fields on the cpu line.
        let out = "==stat\ncpu  5 5 5 85\n==meminfo\nMemTotal: 1000 kB\nMemFree: 200 kB\n\
                   Buffers: 50 kB\nCached: 250 kB\nSwapCached: 0 kB\n==loadavg\n0.00 0.00 0.00 1/1 1\n";
        let s = parse_proc(out).unwrap();
        assert_eq!(s.mem_used, 500 * 1024);
        assert_eq!(
            s.cpu,
            Some(CpuTimes {
                total: 100,
                idle: 85
            })
        );
    }

    #[test]
    fn the_monitor_tick_reads_this_machine() {
        use crate::host::Layout;
        use crate::host::readings::{monitor_tick_script, split_monitor_tick};
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(monitor_tick_script(&Layout::new("/nonexistent/app")))
            .output()
            .unwrap();
        assert!(out.status.success());
        let out = String::from_utf8(out.stdout).unwrap();
        let (proc, fingerprint) = split_monitor_tick(&out);
        assert_eq!(fingerprint, Some("absent\n"), "{out}");
        let s = parse_proc(proc).unwrap();
        assert!(s.mem_total > 0 && s.mem_used <= s.mem_total);
        assert!(s.cpu.is_some_and(|c| c.total > c.idle));
        assert!(s.load1 >= 0.0);
    }

    #[test]
    fn junk_is_an_error_not_a_zero() {
        assert!(parse_proc("").is_err());
        assert!(parse_proc("sh: /proc/stat: No such file or directory").is_err());
        let no_load = "==meminfo\nMemTotal: 1 kB\nMemAvailable: 1 kB\n==loadavg\n";
        assert!(parse_proc(no_load).is_err());
    }

    #[test]
    fn cpu_share_comes_from_the_delta_of_two_readings() {
        let a = CpuTimes {
            total: 1_000,
            idle: 800,
        };
        let b = CpuTimes {
            total: 1_200,
            idle: 850,
        };
        // 200 ticks passed, 50 of them idle: 75 % busy.
        assert_eq!(cpu_percent(a, b), Some(75.0));
        assert_eq!(cpu_percent(a, a), None, "no time passed");
        assert_eq!(cpu_percent(b, a), None, "counters went back: a reboot");
        let all_idle = CpuTimes {
            total: 1_100,
            idle: 900,
        };
        assert_eq!(cpu_percent(a, all_idle), Some(0.0));
    }
}
