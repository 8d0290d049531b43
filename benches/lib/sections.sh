# The parts of benches/run, sourced by it (it sets WORK, SD, PORTS, the sizes
# and the helpers these use). Each part writes JSON lines under
# $WORK/results and fills CELL[...] for the report.

SMALL=$WORK/project-small # tiny releases: rollback and status do not move the artifact
BIG=$WORK/project-big     # 10 MiB releases, for deploy
SNAP=$HOSTS_DIR/.snap
SSH_OPTS=(-F /dev/null -i "$WORK/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
    -o UserKnownHostsFile="$WORK/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes)
restore() { as_user $PY "$WORK/bin/bench.py" restore "$@"; }

write_scripts() {
    cp "$LIB/bench.py" "$LIB/fab_switch.py" "$WORK/bin/"
    # the switch by plain ssh, one background process per host; KEX, CM
    cat >"$WORK/bin/ssh-switch" <<EOF
#!/usr/bin/env bash
# ssh-switch HOSTS TARGET [KEX|cm]: ln -s && mv -T on every host, N ssh processes at once
set -u
extra=()
case \${3:-} in
    '') ;;
    cm) extra=(-o ControlMaster=no) ;;
    *) extra=(-o KexAlgorithms=\$3) ;;
esac
pids=()
while read -r port dir name; do
    [ "\${3:-}" = cm ] && extra=(-o ControlMaster=no -o ControlPath=$WORK/cp/\$name)
    ssh ${SSH_OPTS[*]} "\${extra[@]}" -p "\$port" $USR@127.0.0.1 \\
        "cd \$dir && ln -s \$2 current.tmp && mv -T current.tmp current" </dev/null &
    pids+=(\$!)
done <"\$1"
rc=0
for p in "\${pids[@]}"; do wait "\$p" || rc=1; done
exit \$rc
EOF
    cat >"$WORK/bin/scp-deploy" <<EOF
#!/usr/bin/env bash
# scp-deploy HOSTS TARBALL ID: per host, in parallel: scp the tarball, then one
# ssh that unpacks it into releases/ID and switches current (curve25519 both)
set -u
o=(${SSH_OPTS[*]} -o KexAlgorithms=curve25519-sha256)
pids=()
while read -r port dir name; do
    { scp -q "\${o[@]}" -P "\$port" "\$2" "$USR@127.0.0.1:\$dir/\$3.tar.gz" &&
      ssh "\${o[@]}" -p "\$port" $USR@127.0.0.1 "cd \$dir && mkdir -p releases/\$3 && tar xzf \$3.tar.gz -C releases/\$3 && rm \$3.tar.gz && ln -s releases/\$3 current.tmp && mv -T current.tmp current"; } </dev/null &
    pids+=(\$!)
done <"\$1"
rc=0
for p in "\${pids[@]}"; do wait "\$p" || rc=1; done
exit \$rc
EOF
    chmod 755 "$WORK/bin"/*
}

section_setup() {
    write_scripts
    local n max_h=0 hf cfg
    for n in "${SCALE_N[@]}" "${COLD_N[@]}" "$FLOOD_HOSTS"; do [ "$n" -gt "$max_h" ] && max_h=$n; done
    rm -rf "$SMALL" "$BIG"
    mkdir -p "$SMALL" "$BIG"
    cfg=$(write_config "$SMALL" h "$FLOOD_HOSTS" "[logs]
files = [\"log/app.log\"]
")
    mv "$cfg" "$SMALL/flood.toml"
    for n in "${SCALE_N[@]}" "${COLD_N[@]}"; do write_config "$SMALL" h "$n" >/dev/null; done
    cfg=$(write_config "$SMALL" h "$max_h")
    build_release "$SMALL" v1 1024
    build_release "$SMALL" v2 1024
    hf=$(hosts_file h "$max_h")
    # in slices of 200 hosts: one deploy to 1,000 hosts at once stops (see
    # results.md); the state each host ends in is the same
    local first t0 t1 t2 v1=0 v2=0 slice=$WORK/setup-slice.hosts
    : >"$WORK/results/setup-deploy.log"
    for ((first = 1; first <= max_h; first += 200)); do
        sed -n "${first},$((first + 199))p" "$hf" >"$slice"
        config_of "$slice" "$SMALL/setup-slice.toml"
        log "deploying v1 then v2 (1 KiB) to hosts $((first - 1)).. of $max_h"
        t0=$(date +%s%N)
        sd "$SMALL/setup-slice.toml" deploy production v1 >>"$WORK/results/setup-deploy.log" 2>&1 || die "deploy v1: $(tail -3 "$WORK/results/setup-deploy.log")"
        t1=$(date +%s%N)
        sd "$SMALL/setup-slice.toml" deploy production v2 >>"$WORK/results/setup-deploy.log" 2>&1 || die "deploy v2: $(tail -3 "$WORK/results/setup-deploy.log")"
        t2=$(date +%s%N)
        v1=$((v1 + t1 - t0)) v2=$((v2 + t2 - t1))
    done
    cell setup,n "$max_h"
    cell setup,v1 "$(awk -v a="$v1" 'BEGIN { print a / 1e9 }')"
    cell setup,v2 "$(awk -v a="$v2" 'BEGIN { print a / 1e9 }')"
    $PY "$WORK/bin/bench.py" check "$hf" releases/v2 || die "setup: not every host on v2"
    as_user $PY "$WORK/bin/bench.py" snapshot "$hf" "$SNAP/h"

    n=$(printf '%s\n' "${DEPLOY_N[@]}" | sort -n | tail -1)
    cfg=$(write_config "$BIG" d "$n")
    for d in "${DEPLOY_N[@]}"; do write_config "$BIG" d "$d" >/dev/null; done
    build_release "$BIG" v1 $((10 * 1024 * 1024))
    build_release "$BIG" v2 $((10 * 1024 * 1024))
    tar czf "$WORK/v2.tar.gz" -C "$BIG/dist" .
    log "deploying v1 (10 MiB) to $n hosts"
    sd "$cfg" deploy production v1 >>"$WORK/results/setup-deploy.log" 2>&1 || die "deploy v1 (10 MiB): $(tail -3 "$WORK/results/setup-deploy.log")"
    as_user $PY "$WORK/bin/bench.py" snapshot "$(hosts_file d "$n")" "$SNAP/d"
}

# first_rep N: 0 (a warm-up repetition first) below 100 hosts, else 1; and
# last_rep N: RUNS below 100 hosts, else BIG_RUNS (the big fleets cost minutes a run)
first_rep() { if [ "$1" -lt 100 ]; then echo 0; else echo 1; fi; }
last_rep() { if [ "$1" -lt 100 ]; then echo "$RUNS"; else echo "$BIG_RUNS"; fi; }

# file for a tool's runs; the warm-up repetition (rep 0) goes elsewhere
runs_file() { if [ "$2" = 0 ]; then echo "$WORK/results/warmup.jsonl"; else echo "$WORK/results/$1.jsonl"; fi; }

section_cold() {
    local n rep hf cfg f floor_args
    for n in "${COLD_N[@]}"; do
        hf=$(hosts_file h "$n")
        cfg=$SMALL/shipdeck-h-$n.toml
        floor_args=()
        while read -r port dir name; do floor_args+=("$port:$dir"); done <"$hf"
        log "cold rollback, N=$n: shipdeck, ssh, ssh curve25519, fabric, ssh2 floor × $((RUNS + 1))"
        for ((rep = 0; rep <= RUNS; rep++)); do
            restore "$hf" "$SNAP/h"
            timed "$(runs_file "cold-sd-$n" $rep)" --flip releases/v1 "$hf" -- "$SD" --config "$cfg" rollback production --yes
            restore "$hf" "$SNAP/h"
            timed "$(runs_file "cold-ssh-$n" $rep)" --flip releases/v1 "$hf" -- "$WORK/bin/ssh-switch" "$hf" releases/v1
            restore "$hf" "$SNAP/h"
            timed "$(runs_file "cold-curve-$n" $rep)" --flip releases/v1 "$hf" -- "$WORK/bin/ssh-switch" "$hf" releases/v1 curve25519-sha256
            restore "$hf" "$SNAP/h"
            timed "$(runs_file "cold-fab-$n" $rep)" --flip releases/v1 "$hf" -- "$WORK/venv/bin/python" "$WORK/bin/fab_switch.py" "$WORK/id_ed25519" "$USR" releases/v1 "$hf"
            restore "$hf" "$SNAP/h"
            timed "$(runs_file "cold-floor-$n" $rep)" --flip releases/v1 "$hf" -- "$FLOOR" "$WORK/id_ed25519" "$WORK/known_hosts" "$USR" \
                "cd {dir} && ln -s releases/v1 current.tmp && mv -T current.tmp current" "${floor_args[@]}"
        done
        for f in sd ssh curve fab floor; do
            cell "cold-$f,$n" "$(med "$WORK/results/cold-$f-$n.jsonl")"
            cell "cold-$f-cpu,$n" "$(med "$WORK/results/cold-$f-$n.jsonl" cpu)"
        done
    done
}

# open_console SOCK CONFIG N: the console in tmux, on the screen, with N
# sessions to the hosts open (or 30 s gone); prints its pid
open_console() {
    local sock=$1 cfg=$2 n=$3 pid deadline conns=0
    tmux -L "$sock" new-session -d -s c -x 120 -y 40 "cd $(dirname "$cfg") && exec $SD --config $cfg"
    pid=$(tmux -L "$sock" list-panes -t c -F '#{pane_pid}')
    deadline=$(($(date +%s) + 30))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        conns=$(ss -Htnp state established 2>/dev/null | grep -c "pid=$pid," || true)
        if [ "$conns" -ge "$n" ] && tmux -L "$sock" capture-pane -p -t c | grep -q 'roll back production'; then break; fi
        sleep 0.1
    done
    echo "$pid $conns"
}

section_warm() {
    local n rep hf cfg sock pid conns
    for n in "${COLD_N[@]}"; do
        hf=$(hosts_file h "$n")
        cfg=$SMALL/shipdeck-h-$n.toml
        log "warm R, N=$n: console (first key after opening) vs ssh over ControlMaster × $((RUNS + 1))"
        local masters=()
        while read -r port dir name; do
            ssh "${SSH_OPTS[@]}" -o ControlMaster=yes -o ControlPath="$WORK/cp/$name" -o ControlPersist=yes \
                -fN -p "$port" "$USR@127.0.0.1" </dev/null &
            masters+=($!)
        done <"$hf"
        wait "${masters[@]}" || die "ControlMaster connections failed"
        : >"$WORK/results/warm-conns-$n.txt"
        for ((rep = 0; rep <= RUNS; rep++)); do
            restore "$hf" "$SNAP/h"
            sock=sdbench-$$-$n-$rep
            SOCKS+=("$sock")
            read -r pid conns < <(open_console "$sock" "$cfg" "$n")
            echo "$conns" >>"$WORK/results/warm-conns-$n.txt"
            sleep 1 # let the screen settle: the key is the first the console gets
            timed "$(runs_file "warm-sd-$n" $rep)" --flip releases/v1 "$hf" -- tmux -L "$sock" send-keys -t c R
            for _ in $(seq 1 300); do
                tmux -L "$sock" capture-pane -p -t c | grep -q 'rolled production back' && break
                sleep 0.1
            done
            tmux -L "$sock" kill-server 2>/dev/null || true
            restore "$hf" "$SNAP/h"
            timed "$(runs_file "warm-cm-$n" $rep)" --flip releases/v1 "$hf" -- "$WORK/bin/ssh-switch" "$hf" releases/v1 cm
        done
        while read -r port dir name; do
            ssh -o ControlPath="$WORK/cp/$name" -O exit x >/dev/null 2>&1 || true
        done <"$hf"
        cell "warm-sd,$n" "$(med "$WORK/results/warm-sd-$n.jsonl" flip)"
        cell "warm-cm,$n" "$(med "$WORK/results/warm-cm-$n.jsonl" flip)"
        cell "warm-conns,$n" "$(sort -n "$WORK/results/warm-conns-$n.txt" | head -1)"
    done
}

section_deploy() {
    local n rep hf cfg
    for n in "${DEPLOY_N[@]}"; do
        hf=$(hosts_file d "$n")
        cfg=$BIG/shipdeck-d-$n.toml
        log "deploy 10 MiB, N=$n: shipdeck vs scp + ssh tar x, repetitions $(first_rep "$n")..$(last_rep "$n")"
        for ((rep = $(first_rep "$n"); rep <= $(last_rep "$n"); rep++)); do
            restore "$hf" "$SNAP/d" v2
            timed "$(runs_file "deploy-sd-$n" $rep)" --flip releases/v2 "$hf" -- "$SD" --config "$cfg" deploy production v2
            restore "$hf" "$SNAP/d" v2
            timed "$(runs_file "deploy-scp-$n" $rep)" --flip releases/v2 "$hf" -- "$WORK/bin/scp-deploy" "$hf" "$WORK/v2.tar.gz" v2
        done
        cell "deploy-sd,$n" "$(med "$WORK/results/deploy-sd-$n.jsonl")"
        cell "deploy-scp,$n" "$(med "$WORK/results/deploy-scp-$n.jsonl")"
    done
    restore "$(hosts_file d "$n")" "$SNAP/d" v2
}

section_scale() {
    local n rep hf cfg
    for n in "${SCALE_N[@]}"; do
        hf=$(hosts_file h "$n")
        cfg=$SMALL/shipdeck-h-$n.toml
        log "rollback and status, N=$n, repetitions $(first_rep "$n")..$(last_rep "$n")"
        for ((rep = $(first_rep "$n"); rep <= $(last_rep "$n"); rep++)); do
            restore "$hf" "$SNAP/h"
            timed "$(runs_file "scale-rb-$n" $rep)" --flip releases/v1 "$hf" -- "$SD" --config "$cfg" rollback production --yes
            timed "$(runs_file "scale-st-$n" $rep)" -- "$SD" --config "$cfg" --json status production
        done
        cell "scale-rb,$n" "$(med "$WORK/results/scale-rb-$n.jsonl")"
        cell "scale-st,$n" "$(med "$WORK/results/scale-st-$n.jsonl")"
        cell "scale-rb-rss,$n" "$(med "$WORK/results/scale-rb-$n.jsonl" maxrss_kb)"
        cell "scale-st-rss,$n" "$(med "$WORK/results/scale-st-$n.jsonl" maxrss_kb)"
        cell "scale-fail,$n" "$(grep -c '"rc": [1-9]' "$WORK/results/scale-rb-$n.jsonl" "$WORK/results/scale-st-$n.jsonl" | awk -F: '{ s += $2 } END { print s + 0 }')"
    done
}

section_flood() {
    local n=$FLOOD_HOSTS hf cfg=$SMALL/flood.toml sock=sdbench-$$-flood pid conns wpid rpid
    hf=$(hosts_file h "$n")
    restore "$hf" "$SNAP/h"
    while read -r port dir name; do rm -f "$dir/log/app.log"; done <"$hf"
    log "the console under a flood: $n hosts × 1,000 lines/s, and a shipdeck logs reader"
    SOCKS+=("$sock")
    read -r pid conns < <(open_console "$sock" "$cfg" "$n")
    sleep 2
    $PY "$WORK/bin/bench.py" watch "$pid" 10 "$sock" c >"$WORK/results/flood-quiet.json"
    $PY "$WORK/bin/bench.py" flood "$hf" log/app.log 1000 $((WATCH_S + 6)) >"$WORK/results/flood-writer.json" &
    wpid=$!
    "$SD" --config "$cfg" logs production -n 0 2>"$WORK/results/flood-reader.err" > >(wc -l >"$WORK/results/flood-reader.lines") &
    rpid=$!
    sleep 3
    $PY "$WORK/bin/bench.py" watch "$pid" "$WATCH_S" "$sock" c >"$WORK/results/flood.json"
    wait "$wpid" || true
    sleep 2
    kill -TERM "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    $PY "$WORK/bin/bench.py" watch "$pid" 5 >"$WORK/results/flood-after.json"
    tmux -L "$sock" kill-server 2>/dev/null || true
    sleep 0.5
}

# the demo's sample apps (processes this run started, found by their folder)
demo_apps() {
    local p c
    for p in /proc/[0-9]*; do
        c=$(readlink "$p/cwd" 2>/dev/null) || continue
        case $c in "$WORK/demo"/*) echo "${p#/proc/}" ;; esac
    done
}

section_idle() {
    local sock=sdbench-$$-idle pid apps
    rm -rf "$WORK/demo"
    log "the console idle on the demo: apps logging, then apps paused"
    SOCKS+=("$sock")
    tmux -L "$sock" new-session -d -s c -x 120 -y 40 "exec $SD demo --dir $WORK/demo"
    for _ in $(seq 1 1200); do
        tmux -L "$sock" capture-pane -p -t c | grep -q 'Health' && break
        sleep 0.1
    done
    pid=$(tmux -L "$sock" list-panes -t c -F '#{pane_pid}')
    sleep 10 # start-up settles
    $PY "$WORK/bin/bench.py" watch "$pid" "$WATCH_S" >"$WORK/results/idle-demo.json"
    apps=$(demo_apps)
    # shellcheck disable=SC2086
    kill -STOP $apps 2>/dev/null || true
    sleep 3
    $PY "$WORK/bin/bench.py" watch "$pid" "$WATCH_S" >"$WORK/results/idle-demo-paused.json"
    # shellcheck disable=SC2086
    kill -CONT $apps 2>/dev/null || true
    tmux -L "$sock" kill-server 2>/dev/null || true
    sleep 2
    apps=$(demo_apps)
    # shellcheck disable=SC2086
    [ -z "$apps" ] || kill -TERM $apps 2>/dev/null || true
}

section_frame() {
    log "console frame benchmarks (cargo bench --bench console)"
    (cd "$ROOT" && $CARGO bench -q --bench console 2>/dev/null) >"$WORK/results/console.txt" ||
        log "warning: cargo bench --bench console failed"
}

source "$LIB/report.sh"
