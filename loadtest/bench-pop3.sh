#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md, unattended: builds ringmail and the harness in
# release mode, runs a server in a temporary directory, seeds one maildrop over LMTP,
# measures POP3 bulk download (plaintext and TLS) against raw loopback TCP, then measures
# LMTP delivery on a fresh server. Everything stays on 127.0.0.1; the temporary directory
# and the servers are removed at exit, whatever happens.
#
# Knobs (environment): MESSAGES, SIZE (seed), SMALL_MESSAGES, SMALL_SIZE (a second maildrop
# of messages under 64 KiB, a second size; 0 skips it), RAW_BYTES, DELIVER_MESSAGES,
# DELIVER_CLIENTS, DELIVER_SIZE, DELIVER_USERS, IDLE_WAIT (see `load`), RESULTS (where the
# JSON results go), CARGO_TARGET_DIR.
#
# The machine has few cores: anything else running (a build) shows in the figures, so each
# measurement first waits for the machine to be idle.
set -euo pipefail

MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-102400}
SMALL_MESSAGES=${SMALL_MESSAGES:-20000}
SMALL_SIZE=${SMALL_SIZE:-49152}
RAW_BYTES=${RAW_BYTES:-1073741824}
DELIVER_MESSAGES=${DELIVER_MESSAGES:-20000}
DELIVER_CLIENTS=${DELIVER_CLIENTS:-16}
DELIVER_SIZE=${DELIVER_SIZE:-4096}
DELIVER_USERS=${DELIVER_USERS:-16}

NAME=bench-pop3
POP3_EXTRA='login_type = "plain-text-login"'
LMTP_EXTRA='max_message_size = 52428800'
# shellcheck source=loadtest/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

describe_run

echo "== POP3 bulk download: seed $MESSAGES x $SIZE bytes, then download"
start_server bulk
add_users user 1
"$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users user%d --user-count 1 \
    --messages "$MESSAGES" --size "$SIZE" --clients 4 --server-pid "$SERVER_PID" --json "$RESULTS/seed.json"
load
"$BIN/loadtest" bulk --host 127.0.0.1 --pop3-port "$POP3_PORT" --pop3s-port "$POP3S_PORT" \
    --cafile "$CERT" --user user0 --password "$PASSWORD" \
    --raw-bytes "$RAW_BYTES" --server-pid "$SERVER_PID" --json "$RESULTS/bulk.json" || FAILED=1

if [ "$SMALL_MESSAGES" -gt 0 ]; then
    # A second message size. It was added when TLS failed on responses over 64 KiB (fixed
    # since, see BENCHMARKS.md); smaller messages also cost more per byte.
    echo "== POP3 bulk download, messages under 64 KiB: seed $SMALL_MESSAGES x $SMALL_SIZE bytes"
    add_users small 1
    "$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users small%d --user-count 1 \
        --messages "$SMALL_MESSAGES" --size "$SMALL_SIZE" --clients 4 --json "$RESULTS/seed-small.json"
    load
    "$BIN/loadtest" bulk --host 127.0.0.1 --pop3-port "$POP3_PORT" --pop3s-port "$POP3S_PORT" \
        --cafile "$CERT" --user small0 --password "$PASSWORD" \
        --raw-bytes "$RAW_BYTES" --server-pid "$SERVER_PID" --json "$RESULTS/bulk-small.json" || FAILED=1
fi
stop_server

echo "== LMTP delivery: $DELIVER_CLIENTS clients, $DELIVER_MESSAGES x $DELIVER_SIZE bytes to $DELIVER_USERS users, fresh server"
start_server deliver
add_users user "$DELIVER_USERS"
load
"$BIN/loadtest" deliver --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --clients "$DELIVER_CLIENTS" \
    --messages "$DELIVER_MESSAGES" --size "$DELIVER_SIZE" --users user%d --user-count "$DELIVER_USERS" \
    --server-pid "$SERVER_PID" --json "$RESULTS/deliver.json" || FAILED=1
stop_server

echo "== JSON results in $RESULTS"
if [ "$FAILED" = 1 ]; then
    echo "some measurements failed (see above)" >&2
    exit 1
fi
