#!/usr/bin/env bash
# Idle cost of the open console: `shipdeck demo` in a tmux terminal, left
# alone; CPU of the console process over a minute, and its memory.
#
#   benches/idle.sh [SECONDS]      (default 60; needs tmux; builds the release binary)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_TO_WATCH=${1:-60}
cargo build --release --manifest-path "$ROOT/Cargo.toml" >/dev/null 2>&1
BIN=$ROOT/target/release/shipdeck
WORK=$(mktemp -d)
SOCK=shipdeck-idle-$$
cleanup() { tmux -L "$SOCK" kill-server 2>/dev/null || true; sleep 2; rm -rf "$WORK"; }
trap cleanup EXIT
tmux -L "$SOCK" new-session -d -s idle -x 120 -y 40 "XDG_STATE_HOME=$WORK/state $BIN demo --dir $WORK/demo"
for _ in $(seq 1 600); do
    tmux -L "$SOCK" capture-pane -p -t idle | grep -q 'Health' && break
    sleep 0.1
done
pid=$(pgrep -f -n "$BIN demo --dir $WORK/demo")
sleep 10 # let start-up settle
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
sleep "$SECONDS_TO_WATCH"
t1=$(ticks)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
threads=$(awk '/Threads/ {print $2}' "/proc/$pid/status")
awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$SECONDS_TO_WATCH" -v rss="$rss" -v th="$threads" 'BEGIN {
    printf "console idle over %d s: %.2f%% of one core (%d ticks); RSS %.1f MiB; %d threads\n", s, 100 * d / hz / s, d, rss / 1024, th
}'
