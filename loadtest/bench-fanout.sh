#!/usr/bin/env bash
# Fan-out (issue 14, item 2): SESSIONS plaintext sessions in IDLE over USERS users, then
# DELIVERIES messages over LMTP at RATE per second, each to a random user with sessions
# (`loadtest fanout`). Three latencies per message say where the time goes: from the
# delivery's scheduled start to the EXISTS (the target's figure), from the LMTP reply to the
# EXISTS (what the server adds once the message is durable), and the LMTP transaction itself.
#
# Run it with BIN=<dir with prebuilt ringmail and loadtest> to measure another build; without
# BIN it builds this tree (bench-lib.sh).
#
# Knobs (environment): SESSIONS (2000), USERS (SESSIONS / 10), DELIVERIES (5000), RATE (1000),
# LMTP_CLIENTS (8), SLOW_MS (print each delivery acknowledged more than this many ms after
# its scheduled start, with its sender's lateness and its transaction; 0, the default: none),
# TMPDIR (where the store is made), LABEL, IDLE_WAIT, BIN, CARGO_TARGET_DIR.
set -euo pipefail

NAME=fanout
SESSIONS=${SESSIONS:-2000}
USERS=${USERS:-$((SESSIONS / 10))}
DELIVERIES=${DELIVERIES:-5000}
RATE=${RATE:-1000}
LMTP_CLIENTS=${LMTP_CLIENTS:-8}
SLOW_MS=${SLOW_MS:-0}
LABEL=${LABEL:-server}
PER_USER=$(((SESSIONS + USERS - 1) / USERS))
IMAP_EXTRA="login_type = \"plain-text-login\"
max_connections_per_user = $((PER_USER + 5))
max_connections_per_ip = $((SESSIONS + 100))"
ulimit -n "$(ulimit -Hn)"
source "$(dirname "$0")/bench-lib.sh"

start_server fanout
add_users user "$USERS"
load
echo "== fanout: $SESSIONS sessions ($PER_USER per user) in IDLE, $DELIVERIES deliveries at $RATE/s"
"$BIN/loadtest" fanout --host 127.0.0.1 --imap-port "$IMAP_PORT" --lmtp-port "$LMTP_PORT" \
    --users user%d --user-count "$USERS" --password "$PASSWORD" --sessions "$SESSIONS" \
    --deliveries "$DELIVERIES" --rate "$RATE" --lmtp-clients "$LMTP_CLIENTS" --slow-ms "$SLOW_MS" \
    --server-pid "$SERVER_PID" --label "$LABEL" --json "$RESULTS/fanout-$LABEL.json" || FAILED=1
describe_run
exit "$FAILED"
