#!/usr/bin/env bash
# What one change costs the sessions that have a mailbox selected, as the mailbox grows, and
# what a returning client pays to catch up (issue 13, item 8): three users whose INBOX holds
# SIZES messages each (1,000, 10,000 and 100,000), and for each, loadtest `changes`: WATCHERS
# sessions in IDLE told of CHANGES flag changes at RATE per second (change→FETCH latency and
# the server's memory per watcher), then ROUNDS rounds of 10 changes, each followed by a timed
# `UID FETCH 1:* (FLAGS) (CHANGEDSINCE m)` and `SELECT INBOX (QRESYNC (v m))`.
#
# Run it with BIN=<dir with prebuilt ringmail and loadtest> to measure another build (a
# `ringmail` from before a change beside this tree's `loadtest`) in the same way; without BIN
# it builds this tree (bench-lib.sh). Prints each run's summary and writes its JSON to $RESULTS.
#
# Knobs (environment): SIZES ("1000 10000 100000"), MESSAGE_SIZE (2048), WATCHERS (50),
# CHANGES (200), RATE (20), ROUNDS (50), LABEL (server), IDLE_WAIT, BIN, CARGO_TARGET_DIR.
set -euo pipefail

NAME=changes
SIZES=${SIZES:-1000 10000 100000}
MESSAGE_SIZE=${MESSAGE_SIZE:-2048}
WATCHERS=${WATCHERS:-50}
CHANGES=${CHANGES:-200}
RATE=${RATE:-20}
ROUNDS=${ROUNDS:-50}
LABEL=${LABEL:-server}
# Every session of a run is one user's, from one address.
IMAP_EXTRA="login_type = \"plain-text-login\"
max_connections_per_user = $((WATCHERS + 10))
max_connections_per_ip = $((WATCHERS + 10))"
source "$(dirname "$0")/bench-lib.sh"

start_server changes
n=0
for size in $SIZES; do
    add_users "mbox$n-" 1
    echo "== seed: $size x $MESSAGE_SIZE bytes into mbox$n-0's INBOX"
    "$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users "mbox$n-0" --user-count 1 \
        --messages "$size" --size "$MESSAGE_SIZE" --clients 4 >/dev/null
    n=$((n + 1))
done
n=0
for size in $SIZES; do
    load
    echo "== changes: $size messages, $WATCHERS watchers, $CHANGES changes at $RATE/s, $ROUNDS catch-up rounds"
    "$BIN/loadtest" changes --host 127.0.0.1 --imap-port "$IMAP_PORT" --users "mbox$n-%d" --user 0 \
        --password "$PASSWORD" --watchers "$WATCHERS" --changes "$CHANGES" --rate "$RATE" \
        --rounds "$ROUNDS" --server-pid "$SERVER_PID" --label "$LABEL" \
        --json "$RESULTS/changes-$size.json" || FAILED=1
    n=$((n + 1))
done
describe_run
exit "$FAILED"
