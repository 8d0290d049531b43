#!/usr/bin/env bash
# Benchmark: switch `current` on N sshd-backed loopback hosts, shipdeck vs
# ansible-core vs plain ssh. See benches/README.md.
#
#   benches/switch.sh [--skip-shipdeck | --only-shipdeck] [N ...]     (default N: 10 50; root only)
#
# Environment: BENCH_WORK (work dir, default /tmp/shipdeck-bench; the ansible
# venv there is reused), BENCH_RUNS (default 5), SHIPDECK_BIN (use this binary
# instead of `cargo build --release` + target/release/shipdeck).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_WORK:-/tmp/shipdeck-bench}
RUNS=${BENCH_RUNS:-5}
BENCH_USER=shipdeck-bench
BENCH_HOME=/home/$BENCH_USER
HOSTS_DIR=$BENCH_HOME/hosts
PY=/usr/bin/python3

skip_shipdeck=0
only_shipdeck=0
sizes=()
for arg in "$@"; do
    case $arg in
        --skip-shipdeck) skip_shipdeck=1 ;;
        --only-shipdeck) only_shipdeck=1 ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *[!0-9]* | '') echo "usage: $0 [--skip-shipdeck] [N ...]" >&2; exit 2 ;;
        *) sizes+=("$arg") ;;
    esac
done
[ ${#sizes[@]} -gt 0 ] || sizes=(10 50)

[ "$(id -u)" = 0 ] || { echo "run as root (starts root sshds, creates $BENCH_USER)" >&2; exit 2; }
case $WORK in *[[:space:]]*) echo "BENCH_WORK must not contain spaces" >&2; exit 2 ;; esac

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
ARGS="$*"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- tools -------------------------------------------------------------------
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@" </dev/null >/dev/null ||
        { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "$@" </dev/null >/dev/null; }
}
[ -x /usr/sbin/sshd ] || apt_install openssh-server
command -v hyperfine >/dev/null || apt_install hyperfine || log "hyperfine unavailable: timing in-script"
HAVE_HYPERFINE=0
command -v hyperfine >/dev/null && HAVE_HYPERFINE=1
$PY -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
mkdir -p /run/sshd "$WORK"/{bin,results,sshd,ansible}

# --- the bench user: shell /bin/sh, so no ~/.bashrc runs on each command -------
id "$BENCH_USER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$BENCH_USER"
usermod -p '*' "$BENCH_USER" # a root sshd with UsePAM no refuses a locked (!) account
[ -f "$WORK/id_ed25519" ] || ssh-keygen -t ed25519 -N '' -q -C shipdeck-bench -f "$WORK/id_ed25519"
install -d -m 700 -o "$BENCH_USER" -g "$BENCH_USER" "$BENCH_HOME/.ssh"
install -m 600 -o "$BENCH_USER" -g "$BENCH_USER" "$WORK/id_ed25519.pub" "$BENCH_HOME/.ssh/authorized_keys"

# --- ansible-core in a venv under the work dir --------------------------------
if [ ! -x "$WORK/venv/bin/ansible" ]; then
    log "installing ansible-core into $WORK/venv"
    $PY -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q ansible-core
fi
ANSIBLE_VERSION=$("$WORK/venv/bin/ansible" --version | head -1)

# --- shipdeck -----------------------------------------------------------------
SD=${SHIPDECK_BIN:-$ROOT/target/release/shipdeck}
PROJECT=$WORK/project
export SHIPDECK_OPERATOR=bench
export XDG_DATA_HOME=$WORK/xdg/data XDG_STATE_HOME=$WORK/xdg/state \
    XDG_CACHE_HOME=$WORK/xdg/cache XDG_CONFIG_HOME=$WORK/xdg/config
if [ $skip_shipdeck = 0 ]; then
    if [ -z "${SHIPDECK_BIN:-}" ]; then
        log "cargo build --release"
        (cd "$ROOT" && cargo build --release -q)
    fi
    [ -x "$SD" ] || die "no shipdeck binary at $SD"
    DEPLOY_YES=()
    "$SD" deploy --help 2>/dev/null | grep -q -- '--yes' && DEPLOY_YES=(--yes)
fi

# --- hosts --------------------------------------------------------------------
declare -a PORTS=()

pick_ports() { # N -> N distinct free ports on 127.0.0.1
    $PY -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

stop_fleet() {
    local f pid
    for f in "$WORK"/sshd/h*/sshd.pid; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        rm -f "$f"
    done
    exit_ansible_masters
}

exit_ansible_masters() { # end ControlPersist masters left by an ansible run
    local s
    for s in "$WORK"/ansible/cp/*; do
        [ -S "$s" ] && ssh -o ControlPath="$s" -O exit bench >/dev/null 2>&1 || true
    done
}

start_fleet() { # N: one root sshd per host, own port, own host key
    local n=$1 i dir port deadline
    read -r -a PORTS <<<"$(pick_ports "$n")"
    : >"$WORK/known_hosts"
    : >"$WORK/hosts.txt"
    for ((i = 0; i < n; i++)); do
        dir=$WORK/sshd/h$i
        port=${PORTS[$i]}
        mkdir -p "$dir"
        [ -f "$dir/host_key" ] || ssh-keygen -t ed25519 -N '' -q -C "h$i" -f "$dir/host_key"
        cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 200:30:300
Subsystem sftp internal-sftp
AllowTcpForwarding yes
PrintMotd no
UseDNS no
LogLevel VERBOSE
EOF
        rm -f "$dir/sshd.pid"
        /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
        echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/host_key.pub")" >>"$WORK/known_hosts"
        echo "$port $HOSTS_DIR/h$i" >>"$WORK/hosts.txt"
    done
    # the pid file is written after the port is bound; then check it accepts
    deadline=$(($(date +%s) + 10))
    for ((i = 0; i < n; i++)); do
        dir=$WORK/sshd/h$i
        until [ -s "$dir/sshd.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/${PORTS[$i]}") 2>/dev/null; do
            [ "$(date +%s)" -lt "$deadline" ] || { tail -5 "$dir/sshd.log" >&2; die "sshd h$i (port ${PORTS[$i]}) not up"; }
            sleep 0.02
        done
    done
}

cleanup() {
    stop_fleet
    rm -rf "$HOSTS_DIR"
}
trap cleanup EXIT

reset_hosts() { # empty hosts/ (each host's deploy_to is left to shipdeck to create)
    rm -rf "$HOSTS_DIR"
    install -d -o "$BENCH_USER" -g "$BENCH_USER" "$HOSTS_DIR"
}

# --- helper scripts the timings run ------------------------------------------
SWITCH_CMD='ln -s releases/v1 current.tmp && mv -T current.tmp current'

cat >"$WORK/bin/layout" <<EOF
#!/usr/bin/env bash
# hand-made layout for the ansible/ssh runs: releases v1 and v2, current -> v2
set -euo pipefail
rm -rf "$HOSTS_DIR"
install -d -o $BENCH_USER -g $BENCH_USER "$HOSTS_DIR"
while read -r port dir; do
    mkdir -p "\$dir/releases/v1" "\$dir/releases/v2" "\$dir/shared"
    ln -s releases/v2 "\$dir/current"
done <"$WORK/hosts.txt"
chown -R $BENCH_USER:$BENCH_USER "$HOSTS_DIR"
EOF

cat >"$WORK/bin/unswitch" <<EOF
#!/usr/bin/env bash
# back to current -> releases/v2 on every host, and no ansible connection left
set -euo pipefail
while read -r port dir; do
    rm -f "\$dir/current.tmp"
    ln -s releases/v2 "\$dir/current.new" && mv -T "\$dir/current.new" "\$dir/current"
    chown -h $BENCH_USER:$BENCH_USER "\$dir/current"
done <"$WORK/hosts.txt"
for s in "$WORK"/ansible/cp/*; do
    [ -S "\$s" ] && ssh -o ControlPath="\$s" -O exit bench >/dev/null 2>&1 || true
done
EOF

cat >"$WORK/bin/check-switched" <<EOF
#!/usr/bin/env bash
# every host's current -> releases/v1
while read -r port dir; do
    [ "\$(readlink "\$dir/current")" = releases/v1 ] || { echo "\$dir/current -> \$(readlink "\$dir/current")" >&2; exit 1; }
done <"$WORK/hosts.txt"
EOF

cat >"$WORK/bin/ssh-switch" <<EOF
#!/usr/bin/env bash
# the switch by plain ssh, one background process per host
set -u
pids=()
while read -r port dir; do
    ssh -F /dev/null -i "$WORK/id_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \\
        -o UserKnownHostsFile="$WORK/known_hosts" -o GlobalKnownHostsFile=/dev/null \\
        -o StrictHostKeyChecking=yes -p "\$port" $BENCH_USER@127.0.0.1 \\
        "cd \$dir && $SWITCH_CMD" </dev/null &
    pids+=(\$!)
done <"$WORK/hosts.txt"
rc=0
for p in "\${pids[@]}"; do wait "\$p" || rc=1; done
exit \$rc
EOF

for mode in default pipelining; do
    cat >"$WORK/bin/ansible-$mode" <<EOF
#!/usr/bin/env bash
export ANSIBLE_CONFIG="$WORK/ansible/$mode.cfg" ANSIBLE_HOME="$WORK/ansible/home"
exec "$WORK/venv/bin/ansible" all -i "$WORK/ansible/inventory.ini" -m shell \\
    -a 'cd {{ deploy_dir }} && $SWITCH_CMD'
EOF
done

cat >"$WORK/bin/sd-prepare-deploy" <<EOF
#!/usr/bin/env bash
# state before a timed deploy: v1 deployed by shipdeck on fresh hosts
set -euo pipefail
rm -rf "$HOSTS_DIR"; install -d -o $BENCH_USER -g $BENCH_USER "$HOSTS_DIR"
cd "$PROJECT"
"$SD" --config "$PROJECT/shipdeck.toml" deploy production v1 ${DEPLOY_YES[*]:-} >/dev/null
EOF

cat >"$WORK/bin/sd-prepare-rollback" <<EOF
#!/usr/bin/env bash
# state before a timed rollback: v1 then v2 deployed by shipdeck on fresh hosts
set -euo pipefail
"$WORK/bin/sd-prepare-deploy"
cd "$PROJECT"
"$SD" --config "$PROJECT/shipdeck.toml" deploy production v2 ${DEPLOY_YES[*]:-} >/dev/null
EOF

cat >"$WORK/bin/sd-deploy-v2" <<EOF
#!/usr/bin/env bash
cd "$PROJECT" && exec "$SD" --config "$PROJECT/shipdeck.toml" deploy production v2 ${DEPLOY_YES[*]:-}
EOF

cat >"$WORK/bin/sd-rollback" <<EOF
#!/usr/bin/env bash
cd "$PROJECT" && exec "$SD" --config "$PROJECT/shipdeck.toml" rollback production --yes
EOF
chmod +x "$WORK"/bin/*

write_ansible_files() { # N
    local n=$1 i
    {
        echo "[all]"
        for ((i = 0; i < n; i++)); do
            echo "h$i ansible_host=127.0.0.1 ansible_port=${PORTS[$i]} ansible_user=$BENCH_USER" \
                "ansible_ssh_private_key_file=$WORK/id_ed25519" \
                "ansible_ssh_common_args='-o UserKnownHostsFile=$WORK/known_hosts -o GlobalKnownHostsFile=/dev/null'" \
                "deploy_dir=$HOSTS_DIR/h$i"
        done
    } >"$WORK/ansible/inventory.ini"
    for mode in default pipelining; do
        {
            echo "[defaults]"
            echo "forks = $n"
            echo "[ssh_connection]"
            echo "control_path_dir = $WORK/ansible/cp"
            [ $mode = pipelining ] && echo "pipelining = True"
        } >"$WORK/ansible/$mode.cfg"
    done
}

write_shipdeck_config() { # N
    local n=$1 i sep=""
    mkdir -p "$PROJECT"
    {
        cat <<EOF
[app]
name = "bench"
artifact = "dist"
deploy_to = "$HOSTS_DIR/default"

[ssh]
identity = "$WORK/id_ed25519"
known_hosts = "$WORK/known_hosts"
parallel = 64

[environments.production]
strategy = { kind = "all-at-once" }
EOF
        printf 'hosts = ['
        for ((i = 0; i < n; i++)); do
            printf '%s\n  { address = "%s@127.0.0.1:%s", deploy_to = "%s/h%s" }' "$sep" "$BENCH_USER" "${PORTS[$i]}" "$HOSTS_DIR" "$i"
            sep=","
        done
        printf '\n]\n'
    } >"$PROJECT/shipdeck.toml"
}

build_releases() { # v1 and v2, each a dist/ holding 10 MiB of random bytes
    local id
    rm -rf "$PROJECT/dist" "$WORK/xdg" "$PROJECT/.shipdeck" "$PROJECT/releases"
    for id in v1 v2; do
        mkdir -p "$PROJECT/dist"
        head -c $((10 * 1024 * 1024)) /dev/urandom >"$PROJECT/dist/payload.bin"
        echo "$id" >"$PROJECT/dist/VERSION"
        (cd "$PROJECT" && "$SD" --config "$PROJECT/shipdeck.toml" build --id "$id" >/dev/null) ||
            die "shipdeck build --id $id failed"
    done
}

# --- timing -------------------------------------------------------------------
declare -A RESULT=()

median_of() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure KEY N PREPARE COMMAND: median seconds of RUNS runs after 1 warm-up,
# each run started from the state PREPARE makes
measure() {
    local key=$1 n=$2 prepare=$3 cmd=$4 out=$WORK/results/$1-n$2 median
    log "N=$n $key"
    if [ $HAVE_HYPERFINE = 1 ]; then
        hyperfine --runs "$RUNS" --warmup 1 --shell=none --style basic \
            --prepare "$prepare" --command-name "$key (N=$n)" \
            --export-json "$out.json" --export-markdown "$out.md" "$cmd" >&2
        median=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' "$out.json")
    else
        local r t0 t1
        : >"$out.txt"
        for ((r = 0; r <= RUNS; r++)); do
            $prepare >/dev/null
            t0=$(date +%s%N)
            $cmd >/dev/null
            t1=$(date +%s%N)
            [ $r = 0 ] || echo "$(((t1 - t0) / 1000)) " >>"$out.txt"
        done
        median=$(median_of <"$out.txt" | awk '{ print $1 / 1e6 }')
    fi
    RESULT[$key,$n]=$(printf '%.2f s' "$median")
}

# --- run ----------------------------------------------------------------------
for n in "${sizes[@]}"; do
    log "starting $n hosts"
    start_fleet "$n"
    write_ansible_files "$n"

    # c) ansible-core, d) plain ssh: each run switches v2 -> v1 on every host
    if [ $only_shipdeck = 0 ]; then
    "$WORK/bin/layout"
    "$WORK/bin/ssh-switch" || die "ssh switch failed"
    "$WORK/bin/check-switched" || die "ssh switch did not switch"
    "$WORK/bin/unswitch"
    "$WORK/bin/ansible-default" >"$WORK/results/ansible-check.log" 2>&1 ||
        { tail -20 "$WORK/results/ansible-check.log" >&2; die "ansible switch failed"; }
    "$WORK/bin/check-switched" || die "ansible switch did not switch"
    measure ansible-default "$n" "$WORK/bin/unswitch" "$WORK/bin/ansible-default"
    measure ansible-pipelining "$n" "$WORK/bin/unswitch" "$WORK/bin/ansible-pipelining"
    measure ssh-parallel "$n" "$WORK/bin/unswitch" "$WORK/bin/ssh-switch"
    fi

    # a) shipdeck deploy v2 after v1, b) rollback (a fresh process: connect included)
    if [ $skip_shipdeck = 0 ]; then
        write_shipdeck_config "$n"
        [ -n "${built:-}" ] || { build_releases; built=1; }
        reset_hosts
        measure shipdeck-deploy "$n" "$WORK/bin/sd-prepare-deploy" "$WORK/bin/sd-deploy-v2"
        measure shipdeck-rollback "$n" "$WORK/bin/sd-prepare-rollback" "$WORK/bin/sd-rollback"
    fi
    stop_fleet
done

# --- report -------------------------------------------------------------------
label() {
    case $1 in
        shipdeck-deploy) echo "shipdeck deploy v2 (10 MiB artifact, after v1)" ;;
        shipdeck-rollback) echo "shipdeck rollback (fresh process)" ;;
        ansible-default) echo "ansible-core ad-hoc shell, defaults" ;;
        ansible-pipelining) echo "ansible-core ad-hoc shell, pipelining" ;;
        ssh-parallel) echo "plain ssh, N in parallel" ;;
    esac
}
{
    echo "# switch benchmark"
    echo
    echo "Median of $RUNS runs (1 warm-up) per cell, each run from the same state;"
    echo "$(nproc) cores, $(uname -r), load at start: $LOAD_BEFORE."
    echo "$ANSIBLE_VERSION; $(ssh -V 2>&1). Made by \`benches/switch.sh $ARGS\` on $(date -u +%F)."
    echo
    header="| tool |"
    rule="| --- |"
    for n in "${sizes[@]}"; do header+=" N=$n |"; rule+=" ---: |"; done
    echo "$header"
    echo "$rule"
    for key in shipdeck-deploy shipdeck-rollback ansible-default ansible-pipelining ssh-parallel; do
        row="| $(label $key) |"
        for n in "${sizes[@]}"; do row+=" ${RESULT[$key,$n]:-skipped} |"; done
        echo "$row"
    done
} >"$WORK/results/table.md"
cp "$WORK/results/table.md" "$ROOT/benches/results.md"
echo
cat "$WORK/results/table.md"
