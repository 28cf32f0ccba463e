#!/usr/bin/env bash
# The IMAP figures in BENCHMARKS.md, unattended: builds ringmail and the harness in release
# mode, runs a server in a temporary directory, seeds one INBOX over LMTP, and measures IMAP
# bulk download (`FETCH 1:* BODY.PEEK[]`, plaintext and implicit TLS) against raw loopback TCP
# measured in the same run; then, for comparison, POP3 bulk download of the same mailbox
# (POP3's maildrop is the INBOX). Everything stays on 127.0.0.1; the temporary directory and
# the server are removed at exit, whatever happens. Exits non-zero if a measurement failed.
#
# Knobs (environment): MESSAGES, SIZE (seed), RAW_BYTES, PASSES, POP3 (1: also measure POP3
# on the same mailbox; 0: skip), FLAGS_SYNC (1: also time a client catching up on the
# mailbox's flags, `UID FETCH 1:* (UID FLAGS)` and two richer forms, with CPython's imaplib;
# 0: skip), IDLE_WAIT (see `load`), RESULTS (where the JSON results
# go), CARGO_TARGET_DIR.
#
# The machine has few cores: anything else running (a build) shows in the figures, so each
# measurement first waits for the machine to be idle.
set -euo pipefail

MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-102400}
RAW_BYTES=${RAW_BYTES:-1073741824}
PASSES=${PASSES:-3}
POP3=${POP3:-1}
FLAGS_SYNC=${FLAGS_SYNC:-1}

NAME=bench-imap
IMAP_EXTRA='login_type = "plain-text-login"'
POP3_EXTRA='login_type = "plain-text-login"'
LMTP_EXTRA='max_message_size = 52428800'
# shellcheck source=loadtest/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

describe_run

echo "== IMAP bulk download: seed $MESSAGES x $SIZE bytes into INBOX, then FETCH 1:* BODY.PEEK[]"
start_server imap
add_users user 1
"$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users user%d --user-count 1 \
    --messages "$MESSAGES" --size "$SIZE" --clients 4 --server-pid "$SERVER_PID" --json "$RESULTS/imap-seed.json"
load
"$BIN/loadtest" imap-bulk --host 127.0.0.1 --imap-port "$IMAP_PORT" --imaps-port "$IMAPS_PORT" \
    --cafile "$CERT" --user user0 --password "$PASSWORD" --passes "$PASSES" \
    --raw-bytes "$RAW_BYTES" --server-pid "$SERVER_PID" --json "$RESULTS/imap-bulk.json" || FAILED=1

if [ "$FLAGS_SYNC" = 1 ]; then
    echo "== A client catching up on the flags of the same mailbox (CPython's imaplib, best of $PASSES)"
    load
    python3 - "$IMAP_PORT" "$PASSWORD" "$PASSES" "$SERVER_PID" <<'PY' || FAILED=1
import imaplib, os, sys, time
port, password, passes, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
def server_cpu():
    # utime + stime of the whole server process, in seconds.
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
m = imaplib.IMAP4("127.0.0.1", port)
m.login("user0", password)
typ, data = m.select("INBOX", readonly=True)
count = int(data[0])
for items in ["(UID FLAGS)", "(UID FLAGS RFC822.SIZE INTERNALDATE)", "(UID ENVELOPE)"]:
    best, cpu = None, 0.0
    for _ in range(passes):
        before, start = server_cpu(), time.perf_counter()
        typ, data = m.uid("FETCH", "1:*", items)
        took = time.perf_counter() - start
        cpu += server_cpu() - before
        assert typ == "OK" and len([d for d in data if d]) >= count, (typ, len(data))
        best = took if best is None else min(best, took)
    print(f"UID FETCH 1:* {items}: {count} messages in {1e3 * best:.1f} ms (best; the client parses too), "
          f"server CPU {1e6 * cpu / passes / count:.2f} µs a message (mean)")
m.logout()
PY
fi

if [ "$POP3" = 1 ]; then
    echo "== POP3 bulk download of the same mailbox, for comparison"
    load
    "$BIN/loadtest" bulk --host 127.0.0.1 --pop3-port "$POP3_PORT" --pop3s-port "$POP3S_PORT" \
        --cafile "$CERT" --user user0 --password "$PASSWORD" --passes "$PASSES" \
        --raw-bytes "$RAW_BYTES" --server-pid "$SERVER_PID" --json "$RESULTS/imap-pop3-bulk.json" || FAILED=1
fi
stop_server

echo "== JSON results in $RESULTS"
if [ "$FAILED" = 1 ]; then
    echo "some measurements failed (see above)" >&2
    exit 1
fi
