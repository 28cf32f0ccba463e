#!/usr/bin/env bash
# Memory per selected idle session (issue 13, item 8): USERS users, each INBOX seeded with
# MESSAGES messages, and SESSIONS_PER_USER plaintext sessions of each selected on it and in
# IDLE (loadtest `idle`); the figure is the growth of the server's RSS and anonymous memory
# per session, over the whole run and over its second half, after a warm-up of logins and of
# sessions like the measured ones.
#
# Run it with BIN=<dir with prebuilt ringmail and loadtest> to measure another build in the
# same way; without BIN it builds this tree (bench-lib.sh).
#
# Knobs (environment): USERS (200), MESSAGES (1000), SIZE (2048), SESSIONS_PER_USER (10),
# TLS (1: the sessions over implicit TLS), NO_IDLE (1: the sessions wait between commands
# after SELECT instead of in IDLE, as clients that poll do), WARM_USERS (8: the users whose
# sessions warm up before the figures), LABEL (server), IDLE_WAIT, BIN, CARGO_TARGET_DIR,
# SEED_CACHE (a directory: the seeded store is kept there, one per USERS/MESSAGES/SIZE, and a
# later run with the same sizes starts from a copy of it instead of seeding again, which at
# issue 14's size takes most of the run; the server is restarted on the seeded store either way,
# so runs with and without a kept store measure the same thing).
#
# The server reads its store through a shared map: the pages of it that the sessions' SELECTs
# touch first count in its RSS (file-backed, the page cache's), not in its anonymous memory,
# which is what the sessions themselves hold.
set -euo pipefail

NAME=selected-memory
USERS=${USERS:-200}
MESSAGES=${MESSAGES:-1000}
SIZE=${SIZE:-2048}
SESSIONS_PER_USER=${SESSIONS_PER_USER:-10}
LABEL=${LABEL:-server}
TLS=${TLS:-0}
NO_IDLE=${NO_IDLE:-0}
WARM_USERS=${WARM_USERS:-8}
IMAP_EXTRA="login_type = \"plain-text-login\"
max_connections_per_user = $((SESSIONS_PER_USER + 5))
max_connections_per_ip = $((USERS * SESSIONS_PER_USER + 100))"
source "$(dirname "$0")/bench-lib.sh"

SEED_CACHE=${SEED_CACHE:-}
kept=
if [ -n "$SEED_CACHE" ]; then
    kept=$SEED_CACHE/store-$USERS-$MESSAGES-$SIZE
fi
if [ -n "$kept" ] && [ -d "$kept/data" ]; then
    echo "== seed: a copy of the store kept in $kept"
    mkdir -p "$WORK/selected-memory"
    cp -a "$kept/data" "$WORK/selected-memory/data"
else
    start_server selected-memory
    add_users user "$USERS"
    echo "== seed: $MESSAGES x $SIZE bytes into each of $USERS INBOXes"
    "$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users user%d --user-count "$USERS" \
        --messages "$((USERS * MESSAGES))" --size "$SIZE" --clients 4 --timeout 3600 >/dev/null
    stop_server
    if [ -n "$kept" ]; then
        echo "== seed: keeping the store in $kept"
        rm -rf "$kept.partial"
        mkdir -p "$kept.partial"
        cp -a "$WORK/selected-memory/data" "$kept.partial/data"
        # The store and the certificate; not the stopped server's sockets, lock or reader table.
        rm -f "$kept.partial/data"/*.sock "$kept.partial/data/serve.lock" "$kept.partial/data/lock.mdb"
        mv "$kept.partial" "$kept"
    fi
fi
# The figures are of a server started on the seeded store, not of the one that took the seed.
start_server selected-memory
load
# A few seconds of logins first, so one-time costs (the login threads' argon2 work areas,
# 19 MiB each) are paid before the figures start, not spread over the sessions.
echo "== warm-up: 3 s of logins"
"$BIN/loadtest" login --host 127.0.0.1 --imap-port "$IMAP_PORT" --users user%d --user-count 8 \
    --password "$PASSWORD" --clients 4 --duration 3 >"$RESULTS/selected-memory-warm-up.log" 2>&1 || {
    echo "warm-up logins failed: see $RESULTS/selected-memory-warm-up.log" >&2
    exit 1
}
sessions=$((USERS * SESSIONS_PER_USER))
over=(--imap-port "$IMAP_PORT")
how=plaintext
if [ "$TLS" = 1 ]; then
    over=(--tls --imaps-port "$IMAPS_PORT" --cafile "$CERT")
    how=TLS
fi
waits="in IDLE"
if [ "$NO_IDLE" = 1 ]; then
    over+=(--no-idle)
    waits="between commands"
fi
# Then sessions like the measured ones, opened and closed again, so what the first sessions
# cost once (the event loops' allocator pages for each size, their tables' first room) is paid
# before the figures start too; their WARM_USERS users' mailboxes stay known to the server.
WARM_SESSIONS=$((WARM_USERS * SESSIONS_PER_USER))
echo "== warm-up: $WARM_SESSIONS sessions ($how) opened, $waits, closed"
"$BIN/loadtest" idle --host 127.0.0.1 "${over[@]}" --users user%d --user-count "$WARM_USERS" \
    --password "$PASSWORD" --sessions "$WARM_SESSIONS" --settle 1 --server-pid "$SERVER_PID" \
    >"$RESULTS/selected-memory-warm-up-sessions.log" 2>&1 || {
    echo "warm-up sessions failed: see $RESULTS/selected-memory-warm-up-sessions.log" >&2
    exit 1
}
# Long enough for the event loops to hand what the warm-up freed back (every 5 s), so the
# figures start from what the server holds, not from the warm-up's leftovers.
sleep 6
echo "== idle: $sessions sessions ($SESSIONS_PER_USER per user, $how), INBOX selected, $waits"
"$BIN/loadtest" idle --host 127.0.0.1 "${over[@]}" --users user%d --user-count "$USERS" \
    --password "$PASSWORD" --sessions "$sessions" --server-pid "$SERVER_PID" --label "$LABEL" \
    --json "$RESULTS/selected-memory.json" || FAILED=1
describe_run
exit "$FAILED"
