#!/usr/bin/env bash
# The IMAP figures in BENCHMARKS.md, unattended: builds ringmail and the harness in release
# mode, runs a server in a temporary directory, seeds one INBOX over LMTP, and measures IMAP
# bulk download (`FETCH 1:* BODY.PEEK[]`, plaintext and implicit TLS) against raw loopback TCP
# measured in the same run; then, for comparison, POP3 bulk download of the same mailbox
# (POP3's maildrop is the INBOX). Everything stays on 127.0.0.1; the temporary directory and
# the server are removed at exit, whatever happens. Exits non-zero if a measurement failed.
#
# Knobs (environment): MESSAGES, SIZE (seed), RAW_BYTES, PASSES, POP3 (1: also measure POP3
# on the same mailbox; 0: skip), IDLE_WAIT (see `load`), RESULTS (where the JSON results
# go), CARGO_TARGET_DIR.
#
# The machine has few cores: anything else running (a build) shows in the figures, so each
# measurement first waits for the machine to be idle.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# A target dir of its own, so release builds never wait on (or evict) the debug one.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-release}
MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-102400}
RAW_BYTES=${RAW_BYTES:-1073741824}
PASSES=${PASSES:-3}
POP3=${POP3:-1}
IDLE_WAIT=${IDLE_WAIT:-600}
RESULTS=${RESULTS:-$CARGO_TARGET_DIR/bench}
PASSWORD=bench-password-1
# A failed measurement is reported and the run goes on to the next one.
FAILED=0

# What is built: the commit, and any uncommitted changes under src/ before and after the build
# (other work in the same tree could change it meanwhile).
dirty_src() {
    git -C "$ROOT" diff --name-only HEAD -- src | tr '\n' ' '
}
BUILT_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
DIRTY_BEFORE=$(dirty_src)
cargo build --release --manifest-path "$ROOT/Cargo.toml" -p ringmail -p loadtest
DIRTY_AFTER=$(dirty_src)
BIN=$CARGO_TARGET_DIR/release
mkdir -p "$RESULTS"

WORK=$(mktemp -d /tmp/ringmail-bench-imap.XXXXXX)
SERVER_PID=
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

# A port nobody listens on, from the kernel (a fixed port could be taken; ringmail refuses
# to start on a port someone already listens on). Every listener gets one, defaults included.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
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
    cat >"$CONFIG" <<CONF
[server]
data_dir = "$dir/data"
workers = 2
demo_user = false

[imap]
listen = ["127.0.0.1:$IMAP_PORT"]
listen_tls = ["127.0.0.1:$IMAPS_PORT"]
login_type = "plain-text-login"

[pop3]
listen = ["127.0.0.1:$POP3_PORT"]
listen_tls = ["127.0.0.1:$POP3S_PORT"]
login_type = "plain-text-login"

[lmtp]
listen = ["127.0.0.1:$LMTP_PORT"]
max_message_size = 52428800

# Not measured here; on free ports so the defaults (10587, 10465) cannot clash.
[submission]
listen = ["127.0.0.1:$SUBMISSION_PORT"]
listen_tls = ["127.0.0.1:$SUBMISSIONS_PORT"]
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
# idle, so a build running beside the benchmark does not end up in its figures; then say
# how idle it was.
load() {
    local idle waited=0
    idle=$(idle_percent)
    while [ "$idle" -lt 90 ] && [ "$waited" -lt "$IDLE_WAIT" ]; do
        sleep 4
        waited=$((waited + 5))
        idle=$(idle_percent)
    done
    echo "machine ${idle} % idle before this measurement (waited ${waited} s); load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

add_user() {
    printf '%s\n' "$PASSWORD" | "$BIN/ringmail" --config "$CONFIG" user add "$1" --password-stdin >/dev/null
}

echo "== machine"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -sr)"
echo "ringmail built at commit $BUILT_COMMIT (HEAD after the build: $(git -C "$ROOT" rev-parse --short HEAD))"
if [ -n "$DIRTY_BEFORE$DIRTY_AFTER" ]; then
    echo "uncommitted changes under src/: before the build: ${DIRTY_BEFORE:-none}; after: ${DIRTY_AFTER:-none}"
fi

echo "== IMAP bulk download: seed $MESSAGES x $SIZE bytes into INBOX, then FETCH 1:* BODY.PEEK[]"
start_server imap
add_user user0
"$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users user%d --user-count 1 \
    --messages "$MESSAGES" --size "$SIZE" --clients 4 --server-pid "$SERVER_PID" --json "$RESULTS/imap-seed.json"
load
"$BIN/loadtest" imap-bulk --host 127.0.0.1 --imap-port "$IMAP_PORT" --imaps-port "$IMAPS_PORT" \
    --cafile "$WORK/imap/data/cert.pem" --user user0 --password "$PASSWORD" --passes "$PASSES" \
    --raw-bytes "$RAW_BYTES" --server-pid "$SERVER_PID" --json "$RESULTS/imap-bulk.json" || FAILED=1

if [ "$POP3" = 1 ]; then
    echo "== POP3 bulk download of the same mailbox, for comparison"
    load
    "$BIN/loadtest" bulk --host 127.0.0.1 --pop3-port "$POP3_PORT" --pop3s-port "$POP3S_PORT" \
        --cafile "$WORK/imap/data/cert.pem" --user user0 --password "$PASSWORD" --passes "$PASSES" \
        --raw-bytes "$RAW_BYTES" --server-pid "$SERVER_PID" --json "$RESULTS/imap-pop3-bulk.json" || FAILED=1
fi
stop_server

echo "== JSON results in $RESULTS"
if [ "$FAILED" = 1 ]; then
    echo "some measurements failed (see above)" >&2
    exit 1
fi
