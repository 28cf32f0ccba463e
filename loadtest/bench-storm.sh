#!/usr/bin/env bash
# A reconnect storm (issue 14, item 3): SESSIONS TLS sessions in IDLE over USERS users (10
# per user by default), every one dropped at the same moment and all reconnecting at once
# (`loadtest storm`). The figures: seconds until the last session is back in IDLE, login
# latency during the storm, sessions that did not come back. With CACHE_TTL=0 the server
# verifies every login with argon2 (the verified-credential cache off).
#
# Run it with BIN=<dir with prebuilt ringmail and loadtest> to measure another build; without
# BIN it builds this tree (bench-lib.sh).
#
# Knobs (environment): SESSIONS (15000), USERS (SESSIONS / 10), MESSAGES per user (20),
# CACHE_TTL (server default), STORM_CONCURRENCY (per worker process, 1000), SILENT (1: the drop
# sends nothing, so the server still holds every old session when its replacement logs in, as
# after a real network blip; each user may then hold only its own number of sessions, so every
# new login takes an old one's place: at the default of 16 the server would hold 24,000 sessions
# for a moment, more than one process may open here), RESUME (1: each session resumes its own
# TLS session when it comes back, as phones do; otherwise each reconnect is a full handshake),
# LABEL, IDLE_WAIT, BIN, CARGO_TARGET_DIR.
set -euo pipefail

NAME=storm
SESSIONS=${SESSIONS:-15000}
USERS=${USERS:-$((SESSIONS / 10))}
MESSAGES=${MESSAGES:-20}
STORM_CONCURRENCY=${STORM_CONCURRENCY:-1000}
LABEL=${LABEL:-server}
PER_USER=$(((SESSIONS + USERS - 1) / USERS))
SILENT=${SILENT:-0}
RESUME=${RESUME:-0}
# Room for each user's sessions twice over: the server may still be closing the dropped ones
# when their replacements log in. Dropped silently, they are not closing at all: each user's
# own number, so the replacements must take their places.
PER_USER_LIMIT=$((PER_USER * 2 + 5))
STORM_FLAGS=()
if [ "$SILENT" = 1 ]; then
    PER_USER_LIMIT=$PER_USER
    # The old sessions' sockets keep their ports of 127.0.0.1's ephemeral range (about 28,000
    # here, fewer than old and new together): the reconnects come from another address, as
    # phones often do after a blip.
    STORM_FLAGS=(--silent-drop --reconnect-from 127.0.0.2)
fi
if [ "$RESUME" = 1 ]; then
    STORM_FLAGS+=(--resume-tls)
fi
IMAP_EXTRA="max_connections = $((SESSIONS * 2 + 100))
max_connections_per_user = $PER_USER_LIMIT
max_connections_per_ip = $((SESSIONS * 2 + 100))"
SUBMISSION_EXTRA="
[limits]
login_failure_delay = 0
${CACHE_TTL:+credential_cache_ttl = $CACHE_TTL}"
ulimit -n "$(ulimit -Hn)"
source "$(dirname "$0")/bench-lib.sh"

start_server storm
add_users user "$USERS"
echo "== seed: $MESSAGES messages into each of $USERS INBOXes"
"$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users user%d --user-count "$USERS" \
    --messages "$((USERS * MESSAGES))" --size 2048 --clients 4 >/dev/null
load
echo "== storm: $SESSIONS TLS sessions ($PER_USER per user) in IDLE, dropped$([ "$SILENT" = 1 ] && echo " silently") and back at once"
"$BIN/loadtest" storm --host 127.0.0.1 --imaps-port "$IMAPS_PORT" --tls --cafile "$CERT" \
    --users user%d --user-count "$USERS" --password "$PASSWORD" --sessions "$SESSIONS" \
    --storm-concurrency "$STORM_CONCURRENCY" "${STORM_FLAGS[@]}" --server-pid "$SERVER_PID" --label "$LABEL" \
    --json "$RESULTS/storm-$LABEL.json" || FAILED=1
describe_run
exit "$FAILED"
