# The report of benches/run: markdown tables on stdout, in
# $WORK/results/table.md and benches/results.md.

jget() { $PY -c 'import json, sys
try:
    v = json.load(open(sys.argv[1])).get(sys.argv[2])
except (OSError, ValueError):
    v = None
print("nan" if v is None else v)' "$1" "$2"; }
f1() { awk -v v="$1" -v d="${2:-1}" 'BEGIN { if (v == "nan" || v == "") print "–"; else printf "%.*f", d, v }'; }
per_host() { awk -v v="$1" -v n="$2" 'BEGIN { if (v == "nan" || v == "") print "–"; else printf "%.1f ms", 1000 * v / n }'; }

marginal() { # T_A T_B N_A N_B: seconds per host between two fleet sizes
    awk -v x="$1" -v y="$2" -v a="$3" -v b="$4" 'BEGIN { if (x == "nan" || y == "nan") print "– (failed)"; else printf "%.1f ms", 1000 * (y - x) / (b - a) }'
}

row() { # LABEL KEY SIZES...: one table row of medians
    local label=$1 key=$2 n out
    shift 2
    out="| $label |"
    for n in "$@"; do out+=" $(fmt_s "${CELL[$key,$n]:-nan}") |"; done
    echo "$out"
}
ratio_row() { # LABEL KEY_A KEY_B SIZES...
    local label=$1 a=$2 b=$3 n out
    shift 3
    out="| $label |"
    for n in "$@"; do out+=" $(ratio "${CELL[$a,$n]:-nan}" "${CELL[$b,$n]:-nan}") |"; done
    echo "$out"
}
header() { # FIRST SIZES...
    local h="| $1 |" r="| --- |" n
    shift
    for n in "$@"; do h+=" N=$n |"; r+=" ---: |"; done
    echo "$h"
    echo "$r"
}

report_cold() {
    echo "### Cold rollback (a fresh process per run, connect and handshake included)"
    echo
    echo "Every run from the same state (v1 then v2 deployed by shipdeck, \`current -> releases/v2\`);"
    echo "the peers run \`cd DIR && ln -s releases/v1 current.tmp && mv -T current.tmp current\` per host."
    echo
    header "tool" "${COLD_N[@]}"
    row "**shipdeck rollback**" cold-sd "${COLD_N[@]}"
    row "plain \`ssh\`, N in parallel, default kex" cold-ssh "${COLD_N[@]}"
    row "plain \`ssh\`, \`-o KexAlgorithms=curve25519-sha256\`" cold-curve "${COLD_N[@]}"
    row "fabric $FABRIC_VERSION ThreadingGroup" cold-fab "${COLD_N[@]}"
    row "minimal ssh2 client (examples/ssh_floor.rs)" cold-floor "${COLD_N[@]}"
    ratio_row "shipdeck / ssh default" cold-sd cold-ssh "${COLD_N[@]}"
    ratio_row "shipdeck / ssh curve25519" cold-sd cold-curve "${COLD_N[@]}"
    ratio_row "shipdeck / fabric" cold-sd cold-fab "${COLD_N[@]}"
    ratio_row "shipdeck / ssh2 floor" cold-sd cold-floor "${COLD_N[@]}"
    row "client CPU: shipdeck" cold-sd-cpu "${COLD_N[@]}"
    row "client CPU: ssh2 floor" cold-floor-cpu "${COLD_N[@]}"
    echo
}

report_warm() {
    echo "### Warm \`R\` in the console (the first key after opening), to every host's \`current\` flipped"
    echo
    echo "Timed from sending the key (\`tmux send-keys R\`) until every host's \`current\` is read as"
    echo "\`releases/v1\` (polled every millisecond on the hosts' folders); the peer: N \`ssh\` over open"
    echo "ControlMaster sockets doing the same switch, timed the same way."
    echo
    header "what" "${COLD_N[@]}"
    row "**console R**, first key" warm-sd "${COLD_N[@]}"
    row "\`ssh\` over ControlMaster" warm-cm "${COLD_N[@]}"
    ratio_row "console R / ControlMaster ssh" warm-sd warm-cm "${COLD_N[@]}"
    ratio_row "console R / cold CLI rollback" warm-sd cold-sd "${COLD_N[@]}"
    local out="| sessions the console had open before the key (fewest of the runs) |" n
    for n in "${COLD_N[@]}"; do out+=" ${CELL[warm-conns,$n]:-–} |"; done
    echo "$out"
    echo
}

report_deploy() {
    echo "### Deploy of a 10 MiB artifact (random bytes, so no compression helps)"
    echo
    echo "From v1 deployed to v2 deployed; the peer: per host in parallel, \`scp\` of the .tar.gz, then one"
    echo "\`ssh\` that unpacks it into \`releases/v2\` and switches (both with curve25519). shipdeck also"
    echo "checks the artifact's sha256, journals and records history."
    echo
    header "tool" "${DEPLOY_N[@]}"
    row "**shipdeck deploy**" deploy-sd "${DEPLOY_N[@]}"
    row "parallel \`scp\` + \`ssh tar x\`" deploy-scp "${DEPLOY_N[@]}"
    ratio_row "shipdeck / scp + ssh" deploy-sd deploy-scp "${DEPLOY_N[@]}"
    echo
}

report_scale() {
    local n out
    echo "### Rollback and status from 10 to ${SCALE_N[-1]} hosts (\`[ssh] parallel = 64\`)"
    echo
    echo "Host i is a folder of its own (\`deploy_to\`) behind sshd number i mod $SSHDS (each its own port),"
    echo "each a host entry \`{ address = \"$USR@127.0.0.1:PORT\", deploy_to = \"…/hI\", name = \"hI\" }\`."
    echo
    header "what" "${SCALE_N[@]}"
    row "rollback (fresh process)" scale-rb "${SCALE_N[@]}"
    out="| rollback per host |"
    for n in "${SCALE_N[@]}"; do out+=" $(per_host "${CELL[scale-rb,$n]:-nan}" "$n") |"; done
    echo "$out"
    row "\`status --json\`" scale-st "${SCALE_N[@]}"
    out="| status per host |"
    for n in "${SCALE_N[@]}"; do out+=" $(per_host "${CELL[scale-st,$n]:-nan}" "$n") |"; done
    echo "$out"
    out="| peak RSS, rollback / status |"
    for n in "${SCALE_N[@]}"; do
        out+=" $(awk -v a="${CELL[scale-rb-rss,$n]:-nan}" -v b="${CELL[scale-st-rss,$n]:-nan}" 'function m(v) { return v == "nan" ? "–" : sprintf("%.0f", v / 1024) } BEGIN { printf "%s / %s MiB", m(a), m(b) }') |"
    done
    echo "$out"
    out="| runs that failed (rc ≠ 0; left out of the medians) |"
    for n in "${SCALE_N[@]}"; do out+=" ${CELL[scale-fail,$n]:-–} |"; done
    echo "$out"
    echo
    local a=${SCALE_N[0]} b=${SCALE_N[-1]}
    echo "Marginal cost per host from N=$a to N=$b: rollback $(marginal "${CELL[scale-rb,$a]:-nan}" "${CELL[scale-rb,$b]:-nan}" "$a" "$b"),"
    echo "status $(marginal "${CELL[scale-st,$a]:-nan}" "${CELL[scale-st,$b]:-nan}" "$a" "$b")."
    echo "Setup (not timed above): deploy of a 1 KiB release to ${CELL[setup,n]} hosts, 200 at a time, took $(fmt_s "${CELL[setup,v1]}") in all (v1, first), $(fmt_s "${CELL[setup,v2]}") (v2)."
    echo
}

report_flood() {
    local r=$WORK/results lines written dropped
    written=$(jget "$r/flood-writer.json" lines_per_host)
    lines=$(cat "$r/flood-reader.lines" 2>/dev/null || echo nan)
    dropped=$(grep -i 'dropped' "$r/flood-reader.err" 2>/dev/null | tail -1 | cut -c1-120 || true)
    echo "### The console under a flood: $FLOOD_HOSTS hosts × 1,000 log lines/s each, plus a \`shipdeck logs\` reader"
    echo
    echo "Key latency: \`?\` until the key help is on the screen, \`Esc\` until it is gone, over and over,"
    echo "polled with \`tmux capture-pane\` every 5 ms (so each figure includes tmux's own ~5–10 ms)."
    echo
    echo "| what | quiet (logs followed, no lines) | flood, ${WATCH_S} s | after the flood |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| key to screen, median / worst | $(f1 "$(jget "$r/flood-quiet.json" key_median_ms)" 0) / $(f1 "$(jget "$r/flood-quiet.json" key_max_ms)" 0) ms | $(f1 "$(jget "$r/flood.json" key_median_ms)" 0) / $(f1 "$(jget "$r/flood.json" key_max_ms)" 0) ms | – |"
    echo "| keys pressed / never shown | $(jget "$r/flood-quiet.json" keys) / $(jget "$r/flood-quiet.json" never_shown) | $(jget "$r/flood.json" keys) / $(jget "$r/flood.json" never_shown) | – |"
    echo "| console CPU (% of one core) | $(f1 "$(jget "$r/flood-quiet.json" cpu_pct)") | $(f1 "$(jget "$r/flood.json" cpu_pct)") | $(f1 "$(jget "$r/flood-after.json" cpu_pct)") |"
    echo "| console RSS, peak / end | $(f1 "$(jget "$r/flood-quiet.json" rss_max_mib)") / $(f1 "$(jget "$r/flood-quiet.json" rss_end_mib)") MiB | $(f1 "$(jget "$r/flood.json" rss_max_mib)") / $(f1 "$(jget "$r/flood.json" rss_end_mib)") MiB | $(f1 "$(jget "$r/flood-after.json" rss_max_mib)") / $(f1 "$(jget "$r/flood-after.json" rss_end_mib)") MiB |"
    echo
    echo "Lines written: $written per host ($(awk -v w="$written" -v n="$FLOOD_HOSTS" 'BEGIN { printf "%d", w * n }') in all). The \`shipdeck logs\` reader printed $lines lines;"
    echo "its last word on drops: ${dropped:-none}. The console's logs pane said:"
    echo "\`$($PY -c 'import json, sys
try: s = json.load(open(sys.argv[1])).get("screen", "")
except (OSError, ValueError): s = ""
hits = [l.strip(" │─┌┐") for l in s.splitlines() if "dropped" in l]
print(hits[0][:110] if hits else "no dropped count on screen")' "$r/flood.json")\`"
    echo
}

report_idle() {
    local r=$WORK/results
    echo "### The console left alone (CPU of the console process, RSS)"
    echo
    echo "| where | CPU (% of one core) | RSS |"
    echo "| --- | ---: | ---: |"
    echo "| the demo, its apps logging, ${WATCH_S} s | $(f1 "$(jget "$r/idle-demo.json" cpu_pct)" 2) | $(f1 "$(jget "$r/idle-demo.json" rss_end_mib)") MiB |"
    echo "| the demo, apps stopped (SIGSTOP: no log lines, health probes unanswered), ${WATCH_S} s | $(f1 "$(jget "$r/idle-demo-paused.json" cpu_pct)" 2) | $(f1 "$(jget "$r/idle-demo-paused.json" rss_end_mib)") MiB |"
    echo "| $FLOOD_HOSTS ssh hosts, logs followed, no lines, 10 s (keys pressed meanwhile) | $(f1 "$(jget "$r/flood-quiet.json" cpu_pct)" 2) | $(f1 "$(jget "$r/flood-quiet.json" rss_end_mib)") MiB |"
    echo
}

report_frame() {
    echo "### The console's frame (\`cargo bench --bench console\`)"
    echo
    echo '```'
    cat "$WORK/results/console.txt" 2>/dev/null || echo "(not run)"
    echo '```'
    echo
}

report() {
    local load_mean load_max mins
    load_mean=$(awk '{ s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "–" }' "$LOADLOG")
    load_max=$(sort -n "$LOADLOG" | tail -1)
    mins=$(( ($(date +%s) - STARTED + 30) / 60 ))
    {
        echo "# shipdeck benchmarks"
        echo
        echo "\`benches/run $MODE\` on $(date -u +%F), $mins min; $(nproc) cores, Linux $(uname -r);"
        echo "**load average: $LOAD_START at start, $load_mean mean and ${load_max:-–} max (1-min, sampled every 5 s) while it ran.**"
        echo "Median of $RUNS runs after one warm-up repetition (deploy, rollback and status at 100 hosts and"
        echo "more: $BIG_RUNS runs, no warm-up), the tools interleaved in every repetition. Hosts: $SSHDS root sshds on loopback, logging in as \`$USR\` (shell"
        echo "\`/bin/sh\`). $(ssh -V 2>&1 | cut -d, -f1); shipdeck $("$SD" --version | cut -d' ' -f2) at $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')."
        echo "Ratios are shipdeck / peer: under 1 is shipdeck ahead."
        echo
        report_cold
        report_warm
        report_deploy
        report_scale
        report_flood
        report_idle
        report_frame
    } >"$WORK/results/table.md"
    cp "$WORK/results/table.md" "$ROOT/benches/results.md"
    echo
    cat "$WORK/results/table.md"
}
