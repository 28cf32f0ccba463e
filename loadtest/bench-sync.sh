#!/usr/bin/env bash
# What a change to one large mailbox costs when many sessions have it selected (issue 13,
# item 1): one user with MESSAGES messages in INBOX, SESSIONS sessions of that user in IDLE
# on it, and DELIVERIES new messages delivered over LMTP at RATE per second; the figure is
# each message's time from its scheduled delivery to the EXISTS that announces it, in every
# session (loadtest `fanout`). Every delivery is one change that every session must hear of:
# a server whose work per change grows with the mailbox shows it here.
#
# Run it with BIN=<dir with prebuilt ringmail and loadtest> to measure another build (say,
# one from before a change, built in a worktree) in the same way; without BIN it builds this
# tree (bench-lib.sh). Prints the fanout summary and writes its JSON to $RESULTS.
#
# Knobs (environment): MESSAGES (100000), SIZE (2048), SESSIONS (50), DELIVERIES (300),
# RATE (50), IDLE_WAIT, BIN, CARGO_TARGET_DIR.
set -euo pipefail

NAME=sync
MESSAGES=${MESSAGES:-100000}
SIZE=${SIZE:-2048}
SESSIONS=${SESSIONS:-50}
DELIVERIES=${DELIVERIES:-300}
RATE=${RATE:-50}
# All sessions are one user's, from one address.
IMAP_EXTRA="login_type = \"plain-text-login\"
max_connections_per_user = $((SESSIONS + 10))
max_connections_per_ip = $((SESSIONS + 10))"
source "$(dirname "$0")/bench-lib.sh"

start_server sync
add_users user 1
echo "== seed: $MESSAGES x $SIZE bytes into user0's INBOX"
"$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users user%d --user-count 1 \
    --messages "$MESSAGES" --size "$SIZE" --clients 4 >/dev/null
load
echo "== fanout: $SESSIONS sessions of user0 in IDLE on INBOX, $DELIVERIES deliveries at $RATE/s"
"$BIN/loadtest" fanout --host 127.0.0.1 --imap-port "$IMAP_PORT" --users user%d --user-count 1 \
    --password "$PASSWORD" --sessions "$SESSIONS" --server-pid "$SERVER_PID" \
    --lmtp-port "$LMTP_PORT" --deliveries "$DELIVERIES" --rate "$RATE" \
    --json "$RESULTS/sync-fanout.json"
describe_run
