# Shared by the bench-*.sh scripts (sourced, not run): the release build and what it was built
# from, a server in a temporary directory with every listener on a free loopback port, waiting
# for a quiet machine before each measurement, and accounts.
#
# The sourcing script sets before sourcing: NAME (temporary directory prefix), and may set
# SERVER_EXTRA, IMAP_EXTRA, POP3_EXTRA, LMTP_EXTRA, SUBMISSION_EXTRA (lines added to those
# config sections), and BIN (a directory with prebuilt `ringmail` and `loadtest` binaries, used
# instead of a release build). Afterwards it has: ROOT, BIN, RESULTS, WORK, PASSWORD, FAILED,
# and after `start_server NAME`: CONFIG, CERT, SERVER_PID and the *_PORT variables.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A target dir of its own, so release builds never wait on (or evict) the debug one.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-release}
IDLE_WAIT=${IDLE_WAIT:-600}
RESULTS=${RESULTS:-$CARGO_TARGET_DIR/bench}
PASSWORD=bench-password-1
# A failed measurement is reported and the run goes on to the next one.
FAILED=0

# The build is of the working tree: what differed from the commit, before and after it (other
# work in the same tree could change it meanwhile).
dirty() {
    git -C "$ROOT" diff --name-only HEAD -- src Cargo.toml Cargo.lock | tr '\n' ' '
}
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
DIRTY_BEFORE=$(dirty)
PREBUILT=0
if [ -n "${BIN:-}" ]; then
    PREBUILT=1
    echo "using the prebuilt binaries in $BIN, not a build of this tree"
else
    cargo build --release --manifest-path "$ROOT/Cargo.toml" -p ringmail -p loadtest
    BIN=$CARGO_TARGET_DIR/release
fi
DIRTY_AFTER=$(dirty)
mkdir -p "$RESULTS"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ringmail-$NAME.XXXXXX")
SERVER_PID=
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

# A port nobody listens on, from the kernel: ringmail refuses a port someone listens on, so a
# fixed or default port could clash with another server. The kernel may hand the same free
# port out twice; none is handed out twice in one run ($WORK/ports lists them), since two
# listeners on one port are refused.
free_port() {
    python3 - "$WORK/ports" <<'PY'
import socket, sys
try:
    used = set(open(sys.argv[1]).read().split())
except FileNotFoundError:
    used = set()
while True:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = str(s.getsockname()[1])
    if port not in used:
        break
open(sys.argv[1], "a").write(port + "\n")
print(port)
PY
}

# Writes the config for a server in $WORK/$1 and starts it; waits (bounded) for "ready".
start_server() {
    local dir=$WORK/$1
    mkdir -p "$dir"
    IMAP_PORT=$(free_port)
    IMAPS_PORT=$(free_port)
    POP3_PORT=$(free_port)
    POP3S_PORT=$(free_port)
    LMTP_PORT=$(free_port)
    SUBMISSION_PORT=$(free_port)
    SUBMISSIONS_PORT=$(free_port)
    CONFIG=$dir/ringmail.toml
    CERT=$dir/data/cert.pem
    cat >"$CONFIG" <<CONF
[server]
data_dir = "$dir/data"
workers = 2
demo_user = false
${SERVER_EXTRA:-}

[imap]
listen = ["127.0.0.1:$IMAP_PORT"]
listen_tls = ["127.0.0.1:$IMAPS_PORT"]
${IMAP_EXTRA:-}

[pop3]
listen = ["127.0.0.1:$POP3_PORT"]
listen_tls = ["127.0.0.1:$POP3S_PORT"]
${POP3_EXTRA:-}

[lmtp]
listen = ["127.0.0.1:$LMTP_PORT"]
${LMTP_EXTRA:-}

[submission]
listen = ["127.0.0.1:$SUBMISSION_PORT"]
listen_tls = ["127.0.0.1:$SUBMISSIONS_PORT"]
${SUBMISSION_EXTRA:-}
CONF
    "$BIN/ringmail" serve --config "$CONFIG" >"$dir/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 300); do
        if grep -q "ringmail ready" "$dir/server.log"; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "server did not start:" >&2
    cat "$dir/server.log" >&2
    exit 1
}

# stop_process PID: SIGTERM, then a bounded wait, then SIGKILL (a server's master stops its
# children on SIGTERM).
stop_process() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_server() {
    stop_process "$SERVER_PID"
    SERVER_PID=
}

# Percent of CPU time idle over one second, from /proc/stat.
idle_percent() {
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8, $5}' /proc/stat)
    echo "$a $b" | awk '{t = $3 - $1; print (t > 0) ? int(100 * ($4 - $2) / t) : 0}'
}

# 100 writes of 4 KiB to a file in the work directory, each followed by fsync: every durable
# write waits for one, so other work on the disk shows here first.
fsync_probe() {
    python3 - "$WORK/fsync-probe" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
times = []
for _ in range(100):
    t = time.perf_counter()
    os.write(fd, b"x" * 4096)
    os.fsync(fd)
    times.append(time.perf_counter() - t)
os.close(fd)
os.unlink(sys.argv[1])
times.sort()
print(f"4 KiB write+fsync: mean {1e3 * sum(times) / len(times):.2f} ms, p90 {1e3 * times[89]:.2f} ms, max {1e3 * times[-1]:.2f} ms")
PY
}

# Before a measurement: wait (at most IDLE_WAIT seconds) for the machine to be at least 90 %
# idle for 3 seconds in a row, so a build running beside the benchmark does not end up in its
# figures; then say how idle it was and how fast fsync is now.
load() {
    local idle quiet=0 waited=0
    while [ "$quiet" -lt 3 ] && [ "$waited" -lt "$IDLE_WAIT" ]; do
        idle=$(idle_percent)
        waited=$((waited + 1))
        if [ "$idle" -ge 90 ]; then
            quiet=$((quiet + 1))
        else
            quiet=0
            sleep 2
            waited=$((waited + 2))
        fi
    done
    echo "machine ${idle} % idle before this measurement (waited ${waited} s); load average $(cut -d' ' -f1-3 /proc/loadavg); $(fsync_probe)"
}

# run_scenario BASE SCENARIO ARGS...: `loadtest SCENARIO --host 127.0.0.1 ARGS...` with the
# JSON in BASE.json and the output in BASE.log (and on the terminal); the script's TIMEOUT is
# the harness's --timeout. A run that fails leaves why in BASE.failed and returns non-zero.
run_scenario() {
    local base=$1 scenario=$2
    shift 2
    # The harness stops each phase of a scenario (setting its sessions up, then what is
    # measured) at --timeout by itself; the guard only catches a harness that does not.
    local guard=$((2 * TIMEOUT + 60)) status=0
    timeout --kill-after=10 "$guard" "$BIN/loadtest" "$scenario" --host 127.0.0.1 \
        --json "$base.json" --timeout "$TIMEOUT" "$@" 2>&1 | tee "$base.log" || status=${PIPESTATUS[0]}
    [ "$status" = 0 ] && return 0
    if [ "$status" = 124 ] || [ "$status" = 137 ]; then
        echo "stopped by the script after $guard s (TIMEOUT=$TIMEOUT for each phase): the harness did not stop itself" >"$base.failed"
    else
        { grep '^loadtest:' "$base.log" | tail -n 1 || tail -n 3 "$base.log"; } >"$base.failed"
        [ -s "$base.failed" ] || echo "exit status $status, no message" >"$base.failed"
    fi
    return 1
}

# Users NAME0..NAME(N-1) with $PASSWORD: add_users NAME N. Four at a time: each is one
# `ringmail user add`, and an argon2 hash costs tens of milliseconds.
add_users() {
    seq 0 $(($2 - 1)) | BIN=$BIN CONFIG=$CONFIG PASSWORD=$PASSWORD xargs -P 4 -I{} sh -c \
        'printf "%s\n" "$PASSWORD" | "$BIN/ringmail" --config "$CONFIG" user add "$0{}" --password-stdin >/dev/null' "$1"
}

# What ran where, for the record.
describe_run() {
    echo "== machine"
    echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -sr)"
    echo "ringmail at commit $COMMIT (HEAD when the build started; now $(git -C "$ROOT" rev-parse --short HEAD))"
    if [ "$PREBUILT" = 1 ]; then
        echo "binaries prebuilt in $BIN (BIN was set): not necessarily built from that commit"
    elif [ -n "$DIRTY_BEFORE$DIRTY_AFTER" ]; then
        echo "built from a working tree with uncommitted changes: before the build: ${DIRTY_BEFORE:-none}; after: ${DIRTY_AFTER:-none}"
    else
        echo "working tree clean before and after the build"
    fi
}

# doveadm_backup USER MAILDIR: Debian's Dovecot copies USER's Maildir MAILDIR to a new Maildir
# with `doveadm backup` (Dovecot's own copy of a mailbox between two stores: the reference for
# migrations and moves), as root through Debian's `mail` user (uid 8; Dovecot never touches
# mail as root), else as this user. Sets DOVEADM_SECONDS; prints how many messages it copied.
doveadm_backup() {
    local user=$1 maildir=$2 dv=$WORK/dovecot uid gid internal start end
    command -v doveadm >/dev/null || { echo "doveadm is missing (apt-get install dovecot-core)" >&2; exit 1; }
    mkdir -p "$dv"
    # Dovecot's unprivileged processes read its files: the run's directory must be open to them.
    chmod 755 "$WORK" "$dv"
    if [ "$(id -u)" -eq 0 ]; then
        uid=8 gid=8 internal=dovecot
        chown -R 8:8 "$maildir"
        install -d -o 8 -g 8 "$dv/copy"
    else
        uid=$(id -u) gid=$(id -g) internal=$(id -un)
        mkdir -p "$dv/copy"
    fi
    echo "$user:{PLAIN}$PASSWORD:$uid:$gid::$dv::userdb_mail=maildir:$maildir" >"$dv/users"
    cat >"$dv/dovecot.conf" <<CONF
instance_name = ringmail-bench-$NAME
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
# No listeners: doveadm only needs the auth service for its user lookup.
protocols =
default_internal_user = $internal
first_valid_uid = $uid
last_valid_uid = $uid
passdb {
  driver = passwd-file
  args = $dv/users
}
userdb {
  driver = passwd-file
  args = $dv/users
}
CONF
    "$(command -v dovecot || echo /usr/sbin/dovecot)" -c "$dv/dovecot.conf"
    DOVECOT_CONF=$dv/dovecot.conf
    trap 'doveadm -c "$DOVECOT_CONF" stop 2>/dev/null || true; cleanup' EXIT
    load
    start=$(date +%s.%N)
    doveadm -c "$dv/dovecot.conf" backup -u "$user" "maildir:$dv/copy/Maildir" ||
        { tail -n 5 "$dv/dovecot.log" >&2; exit 1; }
    end=$(date +%s.%N)
    DOVEADM_SECONDS=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    echo "doveadm copied $(find "$dv/copy/Maildir/cur" -type f | wc -l) messages"
}
