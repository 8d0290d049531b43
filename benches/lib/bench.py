"""Helpers for benches/run: timing a command (to its exit and to every host's
`current` flipped), snapshots of the hosts' state, a log flood, key latency
on a tmux screen, and the CPU and memory of a process. Every timing starts
after this interpreter is up, so Python's own start-up is never counted.

Host lists are files of lines `PORT DIR NAME` (DIR is the host's deploy_to,
a local path: the hosts are sshds on loopback).
"""

import json
import os
import shutil
import subprocess
import sys
import threading
import time


def hosts(path):
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def all_flipped(dirs, target):
    for d in dirs:
        try:
            if os.readlink(d + "/current") != target:
                return False
        except OSError:
            return False
    return True


def cmd_time(args):
    """time [--flip TARGET HOSTS] -- CMD...: JSON with wall and flip seconds,
    the command's CPU (it and the children it waited for) and peak RSS."""
    flip, dirs = None, []
    while args and args[0] != "--":
        if args[0] == "--flip":
            flip, dirs = args[1], [h[1] for h in hosts(args[2])]
            args = args[3:]
        else:
            sys.exit("time: unknown option " + args[0])
    cmd = args[1:]
    out = open(os.environ.get("BENCH_CMD_LOG", os.devnull), "ab")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    flipped = done = None
    while flip is not None and flipped is None:
        c0 = time.perf_counter()
        if all_flipped(dirs, flip):
            flipped = c0 - t0
            break
        check = time.perf_counter() - c0
        if done is None:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                done = (status, ru, time.perf_counter() - t0)
        elif time.perf_counter() - t0 > done[2] + 30:
            break  # exited and never flipped: a failure, reported as flip null
        # polling as fast as the filesystem answers would take a core from
        # the thing measured: at most a third of one, and never finer than 1 ms
        time.sleep(max(0.001, 2 * check))
    if done is None:
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    else:
        status, ru, wall = done
    rc = os.waitstatus_to_exitcode(status)
    print(json.dumps({
        "wall": wall, "flip": flipped, "rc": rc,
        "cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss,
    }))


def cmd_snapshot(args):
    """snapshot HOSTS SNAPDIR: each host's .shipdeck and where current points."""
    listing, snap = hosts(args[0]), args[1]
    shutil.rmtree(snap, ignore_errors=True)
    os.makedirs(snap)
    for _, d, name in listing:
        shutil.copytree(d + "/.shipdeck", f"{snap}/{name}", symlinks=True)
        with open(f"{snap}/{name}.current", "w") as f:
            f.write(os.readlink(d + "/current"))


def cmd_restore(args):
    """restore HOSTS SNAPDIR [RELEASE...]: back to the snapshot; the releases
    named are removed (a deploy's new release, so it is uploaded again)."""
    listing, snap, drop = hosts(args[0]), args[1], args[2:]
    for _, d, name in listing:
        shutil.rmtree(d + "/.shipdeck", ignore_errors=True)
        shutil.copytree(f"{snap}/{name}", d + "/.shipdeck", symlinks=True)
        for r in drop:
            shutil.rmtree(f"{d}/releases/{r}", ignore_errors=True)
        for leftover in ("current.tmp", "current.new"):
            if os.path.lexists(f"{d}/{leftover}"):
                os.unlink(f"{d}/{leftover}")
        with open(f"{snap}/{name}.current") as f:
            target = f.read()
        tmp = d + "/.current.restore"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, d + "/current")


def cmd_check(args):
    """check HOSTS TARGET: exit 1 unless every current points at TARGET."""
    bad = [d for _, d, _ in hosts(args[0])
           if not os.path.lexists(d + "/current") or os.readlink(d + "/current") != args[1]]
    if bad:
        sys.exit(f"{len(bad)} hosts not on {args[1]}, first {bad[0]}")


def cmd_flood(args):
    """flood HOSTS FILE RATE SECONDS: RATE lines/s into DIR/FILE of each host,
    in 10 ms bursts, as an app's log grows."""
    listing, rel, rate, seconds = hosts(args[0]), args[1], int(args[2]), float(args[3])
    files = []
    for _, d, name in listing:
        os.makedirs(os.path.dirname(f"{d}/{rel}"), exist_ok=True)
        files.append((name, open(f"{d}/{rel}", "a", buffering=1 << 16)))
    per_tick = max(1, rate // 100)
    start = time.monotonic()
    tick = n = 0
    while time.monotonic() - start < seconds:
        for name, f in files:
            f.write("".join(
                f"2026-12-02T03:00:00Z INFO {name} GET /api/orders/{n + i} 200 {(n + i) % 97}ms\n"
                for i in range(per_tick)))
            f.flush()
        n += per_tick
        tick += 1
        time.sleep(max(0.0, start + tick * 0.01 - time.monotonic()))
    print(json.dumps({"lines_per_host": n, "seconds": time.monotonic() - start}))


def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def proc_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Watch:
    """CPU share and RSS of a process while something else runs."""

    def __init__(self, pid):
        self.pid, self.rss = pid, []
        self.t0, self.ticks0 = time.monotonic(), proc_ticks(pid)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self):
        while not self.stop.wait(0.25):
            try:
                self.rss.append(proc_rss_kb(self.pid))
            except OSError:
                return

    def done(self):
        self.stop.set()
        self.thread.join()
        hz = os.sysconf("SC_CLK_TCK")
        secs = time.monotonic() - self.t0
        return {
            "seconds": secs,
            "cpu_pct": 100.0 * (proc_ticks(self.pid) - self.ticks0) / hz / secs,
            "rss_max_mib": max(self.rss or [0]) / 1024,
            "rss_end_mib": proc_rss_kb(self.pid) / 1024,
        }


def screen(sock, target):
    return subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", target],
                          capture_output=True, text=True).stdout


def key_latency(sock, target, key, shown, deadline_s=30.0):
    """Seconds from sending KEY until shown(screen) holds (None: never)."""
    t0 = time.perf_counter()
    subprocess.run(["tmux", "-L", sock, "send-keys", "-t", target, key], check=True)
    while time.perf_counter() - t0 < deadline_s:
        if shown(screen(sock, target)):
            return time.perf_counter() - t0
        time.sleep(0.005)
    return None


def cmd_watch(args):
    """watch PID SECONDS [SOCK TARGET]: CPU and RSS of PID over SECONDS;
    with a tmux target, also how long `?` takes to open the key help on the
    screen and Esc to close it, over and over meanwhile."""
    pid, seconds = int(args[0]), float(args[1])
    sock, target = (args[2], args[3]) if len(args) > 3 else (None, None)
    w = Watch(pid)
    lat, never = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if sock is None:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            continue
        for key, shown in (("?", lambda s: " Keys " in s), ("Escape", lambda s: " Keys " not in s)):
            t = key_latency(sock, target, key, shown, max(1.0, end - time.monotonic() + 30))
            if t is None:
                never += 1
            else:
                lat.append(t)
        time.sleep(0.2)
    res = w.done()
    lat.sort()
    res.update({
        "keys": len(lat) + never, "never_shown": never,
        "key_median_ms": 1e3 * lat[len(lat) // 2] if lat else None,
        "key_max_ms": 1e3 * lat[-1] if lat else None,
    })
    if sock is not None:
        res["screen"] = screen(sock, target)
    print(json.dumps(res))


def cmd_median(args):
    """median FILE [KEY]: the median of KEY (default wall) over the JSON
    lines in FILE, the runs that exited 0 only."""
    key = args[1] if len(args) > 1 else "wall"
    with open(args[0]) as f:
        runs = [json.loads(line) for line in f if line.strip()]
    # a failed run has no time worth a median; the report counts failures
    vals = [r.get(key) for r in runs if r.get("rc") == 0]
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        print("nan")
        return
    n = len(vals)
    print(vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2)


def main():
    cmds = {"time": cmd_time, "snapshot": cmd_snapshot, "restore": cmd_restore,
            "check": cmd_check, "flood": cmd_flood, "watch": cmd_watch, "median": cmd_median}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit("usage: bench.py " + "|".join(cmds) + " ...")
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
