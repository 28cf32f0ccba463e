#!/usr/bin/env bash
# LMTP delivery alone on a fresh server: messages/s and the transaction's latency over
# DELIVER_CLIENTS connections, the store's write path end to end (group commit, fsync). The
# server's data directory is made under TMPDIR (default /tmp), so the store can be put on
# another file system (a journalled ext4, say) to see what its commits cost there.
#
# Run it with BIN=<dir with prebuilt ringmail and loadtest> to measure another build; without
# BIN it builds this tree (bench-lib.sh).
#
# Knobs (environment): DELIVER_MESSAGES (20000), DELIVER_CLIENTS (16), DELIVER_SIZE (4096),
# DELIVER_USERS (16), LABEL, IDLE_WAIT, BIN, TMPDIR, CARGO_TARGET_DIR.
set -euo pipefail

NAME=deliver
DELIVER_MESSAGES=${DELIVER_MESSAGES:-20000}
DELIVER_CLIENTS=${DELIVER_CLIENTS:-16}
DELIVER_SIZE=${DELIVER_SIZE:-4096}
DELIVER_USERS=${DELIVER_USERS:-16}
LABEL=${LABEL:-server}
# shellcheck source=loadtest/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

echo "== LMTP delivery: $DELIVER_CLIENTS clients, $DELIVER_MESSAGES x $DELIVER_SIZE bytes to $DELIVER_USERS users, store in $(df --output=target,fstype "$WORK" | tail -n 1)"
start_server deliver
add_users user "$DELIVER_USERS"
load
"$BIN/loadtest" deliver --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --clients "$DELIVER_CLIENTS" \
    --messages "$DELIVER_MESSAGES" --size "$DELIVER_SIZE" --users user%d --user-count "$DELIVER_USERS" \
    --server-pid "$SERVER_PID" --label "$LABEL" --json "$RESULTS/deliver-$LABEL.json" || FAILED=1
echo "store: data.mdb $(stat -c %s "$WORK/deliver/data/data.mdb") bytes"
stop_server
describe_run
exit "$FAILED"
