#!/usr/bin/env bash
# Migration throughput (issue 12, item 7), in one run: a MESSAGES-message mailbox of SIZE-byte
# messages, seeded over LMTP, then
#   export   `ringmail export` of it to a Maildir, with the server running;
#   import   `ringmail import` of that Maildir into a second server's new account;
#   again    the same import run again (nothing new: the cost of checking);
#   doveadm  Debian's `doveadm backup` of the same Maildir to another Maildir: Dovecot's own
#            copy of a mailbox between two stores, the reference.
# Each is timed with messages/s and MiB/s of message bytes.
#
# Knobs (environment): MESSAGES (10000), SIZE (4096), IDLE_WAIT, BIN, CARGO_TARGET_DIR.
set -euo pipefail

NAME=migrate
MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-4096}
source "$(dirname "$0")/bench-lib.sh"

command -v doveadm >/dev/null || { echo "bench-migrate: doveadm is missing (apt-get install dovecot-core)" >&2; exit 1; }

# rate LABEL SECONDS: messages/s and MiB/s of the mailbox's bytes.
rate() {
    awk -v l="$1" -v s="$2" -v n="$MESSAGES" -v b="$BYTES" \
        'BEGIN { printf "%-8s %7.2f s  %8.0f messages/s  %7.1f MiB/s\n", l, s, n / s, b / s / 1048576 }'
}

# seconds COMMAND...: runs it, prints how long it took.
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}

describe_run
start_server source
add_users bulk 1
"$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users bulk%d --user-count 1 \
    --messages "$MESSAGES" --size "$SIZE" --clients 4 >/dev/null
SOURCE_CONFIG=$CONFIG
SOURCE_PID=$SERVER_PID
echo "== $MESSAGES messages of $SIZE bytes in bulk0's INBOX"

load
took=$(seconds "$BIN/ringmail" --config "$SOURCE_CONFIG" export bulk0 --to "maildir:$WORK/export")
BYTES=$(find "$WORK/export/cur" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
rate export "$took"

start_server target
add_users bulk 1
# An import runs on a stopped server.
stop_server
load
took=$(seconds "$BIN/ringmail" --config "$CONFIG" import bulk0 --from "maildir:$WORK/export")
rate import "$took"
took=$(seconds "$BIN/ringmail" --config "$CONFIG" import bulk0 --from "maildir:$WORK/export")
rate again "$took"
# What arrived, and a clean store: a rate of messages that did not arrive would be worthless.
"$BIN/ringmail" --config "$CONFIG" user show bulk0 | grep '^mailbox: INBOX'
"$BIN/ringmail" --config "$CONFIG" fsck | tail -n 1
stop_process "$SOURCE_PID"

doveadm_backup bulk0 "$WORK/export"
rate doveadm "$DOVEADM_SECONDS"
