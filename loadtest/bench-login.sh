#!/usr/bin/env bash
# Logins per second with the verified-credential cache on (the default) and off
# (`[limits] credential_cache_ttl = 0`), in the same run: `loadtest login` over implicit TLS,
# CLIENTS clients each logging in and out over and over for DURATION seconds as USERS users.
# With the cache, every login after a user's first costs an HMAC instead of argon2 (issue 14,
# reconnect storms).
#
# Run it with BIN=<dir with prebuilt ringmail and loadtest> to measure another build; without
# BIN it builds this tree (bench-lib.sh).
#
# Knobs (environment): USERS (64), CLIENTS (16), DURATION (10), IDLE_WAIT, BIN, CARGO_TARGET_DIR.
set -euo pipefail

NAME=login
USERS=${USERS:-64}
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-10}
LIMITS="max_connections_per_user = 1000
max_connections_per_ip = 100000"
IMAP_EXTRA=$LIMITS
source "$(dirname "$0")/bench-lib.sh"

for ttl in 3600 0; do
    label=cache-ttl-$ttl
    SUBMISSION_EXTRA="
[limits]
login_failure_delay = 0
credential_cache_ttl = $ttl"
    start_server "$label"
    add_users user "$USERS"
    load
    echo "== $label: $CLIENTS clients, $USERS users, $DURATION s"
    "$BIN/loadtest" login --host 127.0.0.1 --imaps-port "$IMAPS_PORT" --cafile "$CERT" --tls \
        --users user%d --user-count "$USERS" --password "$PASSWORD" --clients "$CLIENTS" \
        --duration "$DURATION" --label "$label" --json "$RESULTS/login-$label.json" || FAILED=1
    stop_server
done
describe_run
exit "$FAILED"
