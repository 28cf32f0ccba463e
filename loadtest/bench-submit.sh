#!/usr/bin/env bash
# Measures SMTP submission throughput (the "Submission" section of BENCHMARKS.md),
# unattended: builds ringmail and the harness in release mode, starts a fresh server in a
# temporary directory serving example.org with USERS users, and runs `loadtest submit`:
# CLIENTS connections over implicit TLS, each logged in (AUTH PLAIN) as its own user,
# submit MESSAGES messages of SIZE bytes to local recipients. For comparison it then
# measures LMTP delivery of the same messages to the same users on another fresh server
# (`loadtest deliver`), so both figures come from the same session. Everything stays on
# 127.0.0.1; the servers and the temporary directory are removed at exit, whatever happens.
#
# Knobs (environment): MESSAGES, SIZE, CLIENTS, USERS, ROUNDS (submit/deliver pairs, each on
# fresh servers), LMTP (1: also measure LMTP delivery; 0: submission only), IDLE_WAIT (see
# `load`), RESULTS (where the JSON results go), CARGO_TARGET_DIR.
#
# The machine has few cores: anything else running (a build) shows in the figures, so each
# measurement first waits for the machine to be idle. Exits non-zero if anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# A target dir of its own, so release builds never wait on (or evict) the debug one.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-release}
MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-4096}
CLIENTS=${CLIENTS:-16}
USERS=${USERS:-16}
ROUNDS=${ROUNDS:-1}
LMTP=${LMTP:-1}
IDLE_WAIT=${IDLE_WAIT:-600}
RESULTS=${RESULTS:-$CARGO_TARGET_DIR/bench}
PASSWORD=bench-password-1
FAILED=0

# The build is of the working tree: what differed from the commit, before and after it.
dirty() {
    git -C "$ROOT" diff --name-only HEAD -- src Cargo.toml Cargo.lock | tr '\n' ' '
}
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
DIRTY_BEFORE=$(dirty)
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p ringmail -p loadtest
DIRTY_AFTER=$(dirty)
BIN=$CARGO_TARGET_DIR/release
mkdir -p "$RESULTS"

WORK=$(mktemp -d /tmp/ringmail-bench-submit.XXXXXX)
SERVER_PID=
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

# A port nobody listens on. ringmail binds with SO_REUSEPORT, so a stale server on a fixed
# port would silently share it; ask the kernel instead.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Writes the config for a server in $WORK/$1 and starts it; waits (bounded) for "ready".
# Every listener gets a free port, so no default port is ever bound.
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
    # max_connections_per_user (default 16) raised so that CLIENTS may exceed 16 * USERS.
    cat >"$CONFIG" <<EOF
[server]
data_dir = "$dir/data"
workers = 2
demo_user = false
domains = ["example.org"]

[imap]
listen = ["127.0.0.1:$IMAP_PORT"]
listen_tls = ["127.0.0.1:$IMAPS_PORT"]

[pop3]
listen = ["127.0.0.1:$POP3_PORT"]
listen_tls = ["127.0.0.1:$POP3S_PORT"]

[lmtp]
listen = ["127.0.0.1:$LMTP_PORT"]

[submission]
listen = ["127.0.0.1:$SUBMISSION_PORT"]
listen_tls = ["127.0.0.1:$SUBMISSIONS_PORT"]
max_connections_per_user = 64
EOF
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

# SIGTERM, then a bounded wait, then SIGKILL.
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
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

# Before a measurement: wait (at most IDLE_WAIT seconds) for the machine to be at least 90 %
# idle for 3 seconds in a row, so a build running beside the benchmark does not end up in
# its figures; then say how idle it was, and how long a 4 KiB write and fsync takes right
# now (every submitted or delivered message waits for one, shared by a group commit).
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

# 100 writes of 4 KiB to a file in the work directory, each followed by fsync.
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

# USERS users user0.., all with $PASSWORD (addresses userN@example.org).
add_users() {
    for ((i = 0; i < USERS; i++)); do
        printf '%s\n' "$PASSWORD" | "$BIN/ringmail" --config "$CONFIG" user add "user$i" --password-stdin >/dev/null
    done
}

echo "== machine"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -sr)"
echo "ringmail at commit $COMMIT (HEAD when the build started; now $(git -C "$ROOT" rev-parse --short HEAD))"
if [ -n "$DIRTY_BEFORE$DIRTY_AFTER" ]; then
    echo "built from a working tree with uncommitted changes: before the build: ${DIRTY_BEFORE:-none}; after: ${DIRTY_AFTER:-none}"
else
    echo "working tree clean before and after the build"
fi

for ((round = 1; round <= ROUNDS; round++)); do
    echo "== round $round/$ROUNDS: SMTP submission over implicit TLS: $CLIENTS clients, $MESSAGES x $SIZE bytes among $USERS users, fresh server"
    start_server "submit-$round"
    add_users
    load
    "$BIN/loadtest" submit --host 127.0.0.1 --submissions-port "$SUBMISSIONS_PORT" --cafile "$CERT" \
        --users user%d --user-count "$USERS" --password "$PASSWORD" --clients "$CLIENTS" \
        --messages "$MESSAGES" --size "$SIZE" --server-pid "$SERVER_PID" \
        --json "$RESULTS/submit-$round.json" || FAILED=1
    stop_server

    if [ "$LMTP" = 1 ]; then
        echo "== round $round/$ROUNDS: LMTP delivery for comparison: $CLIENTS clients, $MESSAGES x $SIZE bytes to $USERS users, fresh server"
        start_server "deliver-$round"
        add_users
        load
        "$BIN/loadtest" deliver --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --clients "$CLIENTS" \
            --messages "$MESSAGES" --size "$SIZE" --users user%d --user-count "$USERS" \
            --server-pid "$SERVER_PID" --json "$RESULTS/deliver-submit-$round.json" || FAILED=1
        stop_server
    fi
done

echo "== JSON results in $RESULTS"
if [ "$FAILED" = 1 ]; then
    echo "some measurements failed (see above)" >&2
    exit 1
fi
