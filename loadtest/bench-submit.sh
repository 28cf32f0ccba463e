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

MESSAGES=${MESSAGES:-20000}
SIZE=${SIZE:-4096}
CLIENTS=${CLIENTS:-16}
USERS=${USERS:-16}
ROUNDS=${ROUNDS:-1}
LMTP=${LMTP:-1}

NAME=bench-submit
SERVER_EXTRA='domains = ["example.org"]'
# max_connections_per_user (default 16) raised so that CLIENTS may exceed 16 * USERS.
SUBMISSION_EXTRA='max_connections_per_user = 64'
# shellcheck source=loadtest/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

describe_run

for ((round = 1; round <= ROUNDS; round++)); do
    echo "== round $round/$ROUNDS: SMTP submission over implicit TLS: $CLIENTS clients, $MESSAGES x $SIZE bytes among $USERS users, fresh server"
    start_server "submit-$round"
    add_users user "$USERS"
    load
    "$BIN/loadtest" submit --host 127.0.0.1 --submissions-port "$SUBMISSIONS_PORT" --cafile "$CERT" \
        --users user%d --user-count "$USERS" --password "$PASSWORD" --clients "$CLIENTS" \
        --messages "$MESSAGES" --size "$SIZE" --server-pid "$SERVER_PID" \
        --json "$RESULTS/submit-$round.json" || FAILED=1
    stop_server

    if [ "$LMTP" = 1 ]; then
        echo "== round $round/$ROUNDS: LMTP delivery for comparison: $CLIENTS clients, $MESSAGES x $SIZE bytes to $USERS users, fresh server"
        start_server "deliver-$round"
        add_users user "$USERS"
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
