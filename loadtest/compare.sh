#!/usr/bin/env bash
# ringmail beside Dovecot on this machine, unattended (DESIGN.md §8: figures are quoted as
# ratios against Dovecot measured in the same run). Builds ringmail and the harness in release
# mode (bench-lib.sh), installs Dovecot from Debian's packages if it is missing, and runs both
# servers on free loopback ports with the same users, password and mail. Every scenario runs
# against ringmail, then against Dovecot, then the IDLE scenarios against Dovecot again with
# imap-hibernate on ("dovecot-hibernate"). `loadtest report` then writes loadtest/REPORT.md and
# its charts (loadtest/report/SCENARIO.svg). A scenario that fails against one server is
# reported as failed and the run goes on; the exit status is non-zero if anything failed.
# Everything stays on 127.0.0.1; the servers and the temporary directory are removed at exit.
# Dovecot needs fs.inotify.max_user_instances raised for its IDLE sessions: the script raises
# it for the run and puts it back. Without hibernation each Dovecot IDLE session is a process
# of ~6 MiB; a SESSIONS that does not fit in memory is not run against plain Dovecot.
#
# Knobs (environment), with the defaults sized to finish in about 18 minutes on 2 cores:
#   SEED_MESSAGES, SEED_SIZE    the bulk mailbox (bulk0) both downloads read
#   RAW_BYTES, PASSES           bulk: raw loopback reference size, rounds
#   USERS (default SESSIONS), USER_MESSAGES, USER_SIZE   user0..user(N-1) and their mail
#   SEED_USERS_BY               lmtp (default): their mail is delivered to each server over
#                               LMTP (`loadtest seed`); maildir: written once into Maildirs
#                               (`loadtest maildir`), which Dovecot reads where they lie and
#                               `ringmail import` takes in, for issue 14's 1,000-message
#                               INBOXes (1.5 million messages), which LMTP takes an hour to seed;
#                               at that size about 12 GB of Maildirs and 14 GB of store
#   DELIVER_MESSAGES, DELIVER_CLIENTS, DELIVER_SIZE
#   SESSIONS, IDLE_TLS          idle/fanout: concurrent IDLE sessions, held in plaintext and
#                               then over TLS (IDLE_TLS=both, the default; the TLS runs are
#                               named idle-tls and fanout-tls), or only in plaintext (0) or only
#                               over TLS (1); storm: the same number, always over TLS
#   FANOUT_DELIVERIES, FANOUT_RATE
#   LOGIN_CLIENTS, LOGIN_DURATION, MIXED_CLIENTS, MIXED_DURATION
#   STRESS_CLIENTS, STRESS_DURATION   stress: clients sharing user0's and user1's mailboxes
#   SCENARIOS                   only these (space-separated), e.g. SCENARIOS=stress; default all
#   TIMEOUT                     per scenario, seconds
#   DOVECOT_PASS_SCHEME         ARGON2ID (default: ringmail's argon2id parameters, so a login
#                               costs both servers the same), PLAIN, or any doveadm pw scheme
#   HIBERNATE                   1 (default): also run idle/fanout against Dovecot with
#                               imap-hibernate; 0: skip
#   OUT, CHARTS                 the report and its charts' directory
#   BIN                         a directory with prebuilt `ringmail` and `loadtest` (no build)
#   IDLE_WAIT, RESULTS, CARGO_TARGET_DIR   see bench-lib.sh
# Bigger runs: e.g. SESSIONS=8000 SEED_MESSAGES=10000 RAW_BYTES=1073741824 loadtest/compare.sh
set -euo pipefail

STARTED=$(date +%s)
SEED_MESSAGES=${SEED_MESSAGES:-2000}
SEED_SIZE=${SEED_SIZE:-102400}
RAW_BYTES=${RAW_BYTES:-536870912}
PASSES=${PASSES:-3}
USER_MESSAGES=${USER_MESSAGES:-20}
USER_SIZE=${USER_SIZE:-8192}
SEED_USERS_BY=${SEED_USERS_BY:-lmtp}
case "$SEED_USERS_BY" in
lmtp) USERS_SEEDED="delivered to each server over LMTP" ;;
maildir) USERS_SEEDED="written once into Maildirs, which Dovecot reads and ringmail imports" ;;
*) echo "SEED_USERS_BY must be lmtp or maildir, not $SEED_USERS_BY" >&2 && exit 2 ;;
esac
DELIVER_MESSAGES=${DELIVER_MESSAGES:-5000}
DELIVER_CLIENTS=${DELIVER_CLIENTS:-16}
DELIVER_SIZE=${DELIVER_SIZE:-4096}
SESSIONS=${SESSIONS:-1000}
# One user (and INBOX) per IDLE session: sessions sharing a mailbox would share its state.
USERS=${USERS:-$SESSIONS}
IDLE_TLS=${IDLE_TLS:-both}
case "$IDLE_TLS" in
0) IDLE_VARIANTS=("") IDLE_KINDS="in plaintext" ;;
1) IDLE_VARIANTS=(-tls) IDLE_KINDS="over TLS" ;;
both) IDLE_VARIANTS=("" -tls) IDLE_KINDS="in plaintext, then over TLS" ;;
*) echo "IDLE_TLS must be 0, 1 or both, not $IDLE_TLS" >&2 && exit 2 ;;
esac
FANOUT_DELIVERIES=${FANOUT_DELIVERIES:-1000}
FANOUT_RATE=${FANOUT_RATE:-100}
LOGIN_CLIENTS=${LOGIN_CLIENTS:-16}
LOGIN_DURATION=${LOGIN_DURATION:-15}
MIXED_CLIENTS=${MIXED_CLIENTS:-32}
MIXED_DURATION=${MIXED_DURATION:-30}
STRESS_CLIENTS=${STRESS_CLIENTS:-24}
STRESS_DURATION=${STRESS_DURATION:-60}
TIMEOUT=${TIMEOUT:-600}
DOVECOT_PASS_SCHEME=${DOVECOT_PASS_SCHEME:-ARGON2ID}
HIBERNATE=${HIBERNATE:-1}
# Shorter than bench-lib.sh's default: a dozen measurements a server share the 18 minutes.
IDLE_WAIT=${IDLE_WAIT:-60}

# Connections either server must accept at once, all from 127.0.0.1 and a few users: the IDLE
# sessions and anything still closing from the scenario before.
LIMIT=$((2 * SESSIONS + 200))
NAME=compare
IMAP_EXTRA="login_type = \"plain-text-login\"
max_connections = $LIMIT
max_connections_per_user = $LIMIT
max_connections_per_ip = $LIMIT"
POP3_EXTRA='login_type = "plain-text-login"'
LMTP_EXTRA='max_message_size = 52428800'
# Every connection is a descriptor, in ringmail, in Dovecot's processes and in the harness.
ulimit -n "$(ulimit -Hn)"
# shellcheck source=loadtest/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

OUT=${OUT:-$ROOT/loadtest/REPORT.md}
CHARTS=${CHARTS:-$ROOT/loadtest/report}
JSON_DIR=$RESULTS/compare
rm -rf "$JSON_DIR"
mkdir -p "$JSON_DIR"
# Maildirs under $WORK belong to the `mail` user, which must be able to reach them.
chmod 711 "$WORK"
DOVE=$WORK/dovecot
DOVECOT_PID=
SKIPPED=
FAILURES=

cleanup_compare() {
    stop_dovecot
    restore_inotify
    cleanup
}
trap cleanup_compare EXIT

install_dovecot() {
    if [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] && [ -x /usr/lib/dovecot/pop3 ] &&
        [ -x /usr/lib/dovecot/lmtp ] && command -v openssl >/dev/null; then
        return 0
    fi
    echo "== installing Dovecot from Debian's packages"
    local packages=(dovecot-imapd dovecot-pop3d dovecot-lmtpd openssl)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" ||
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"; }
    # The package's own instance, if the install started one, is not the one measured: it
    # would hold 110/143/993/995 and take CPU. Ours has its own base_dir and ports anyway.
    if dovecot -c /etc/dovecot/dovecot.conf stop 2>/dev/null; then
        echo "stopped the Dovecot service the package started"
    fi
}

# Each Dovecot imap process in IDLE watches its mailbox with an inotify instance, and all of
# them run as the `mail` user: past the per-user limit (128 by default) Dovecot falls back to
# checking every 30 s, which would make IDLE notifications late by that much. The limit is
# raised for the run and put back at exit.
INOTIFY=/proc/sys/fs/inotify/max_user_instances
INOTIFY_BEFORE=
INOTIFY_NOTE=
raise_inotify() {
    local before wanted=$((LIMIT + 128))
    before=$(cat "$INOTIFY" 2>/dev/null) || return 0
    [ "$before" -lt "$wanted" ] || return 0
    if (echo "$wanted" >"$INOTIFY") 2>/dev/null; then
        INOTIFY_BEFORE=$before
        echo "raised fs.inotify.max_user_instances from $before to $wanted for Dovecot's IDLE sessions"
    else
        INOTIFY_NOTE="fs.inotify.max_user_instances is $before and could not be raised: Dovecot IDLE sessions past that many check for new mail every 30 s instead of being told."
        echo "$INOTIFY_NOTE" >&2
    fi
}
restore_inotify() {
    [ -n "$INOTIFY_BEFORE" ] || return 0
    echo "$INOTIFY_BEFORE" >"$INOTIFY" 2>/dev/null || true
    INOTIFY_BEFORE=
}

# Whether SESSIONS imap processes (about 6 MiB each, measured here with Dovecot 2.3.19) fit in
# 80 % of the memory available now; sets DOVECOT_NEEDS_MIB.
dovecot_sessions_fit() {
    local available_kib
    available_kib=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
    DOVECOT_NEEDS_MIB=$((SESSIONS * 6))
    [ "$DOVECOT_NEEDS_MIB" -le "$((available_kib * 8 / 10 / 1024))" ]
}

# A TCP port on 127.0.0.1 that accepts connections.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# An argon2id hash of $PASSWORD with ringmail's parameters (the argon2 crate's defaults:
# m=19456 KiB, t=2, p=1), for Dovecot, which verifies it with libsodium: both servers then
# pay the same for a login. doveadm's own ARGON2ID would use libsodium's heavier defaults.
argon2id_like_ringmail() {
    python3 -c 'import argon2' 2>/dev/null || python3 -m pip install -q argon2-cffi >&2
    python3 -c 'import sys, argon2
print(argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1).hash(sys.argv[1]))' "$PASSWORD"
}

# Dovecot's directory: certificate, users, ports, config (loadtest/dovecot/dovecot.conf.in).
setup_dovecot() {
    mkdir -p "$DOVE/home"
    chown mail:mail "$DOVE/home"
    # Self-signed, and not a CA: rustls takes it as its own trust anchor (--cafile).
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
        -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
        -keyout "$DOVE/key.pem" -out "$DOVE/cert.pem" 2>/dev/null
    local hash i
    case "$DOVECOT_PASS_SCHEME" in
    PLAIN) hash="{PLAIN}$PASSWORD" ;;
    ARGON2ID) hash="{ARGON2ID}$(argon2id_like_ringmail)" ;;
    *) hash=$(doveadm pw -s "$DOVECOT_PASS_SCHEME" -p "$PASSWORD") ;;
    esac
    {
        for ((i = 0; i < USERS; i++)); do
            echo "user$i:$hash:8:8::$DOVE/home/user$i::"
        done
        echo "bulk0:$hash:8:8::$DOVE/home/bulk0::"
    } >"$DOVE/users"
    D_IMAP_PORT=$(free_port)
    D_IMAPS_PORT=$(free_port)
    D_POP3_PORT=$(free_port)
    D_POP3S_PORT=$(free_port)
    D_LMTP_PORT=$(free_port)
    sed -e "s|@DIR@|$DOVE|g" -e "s|@SESSIONS@|$LIMIT|g" -e "s|@CORES@|$(nproc)|g" \
        -e "s|@IMAP_PORT@|$D_IMAP_PORT|g" -e "s|@IMAPS_PORT@|$D_IMAPS_PORT|g" \
        -e "s|@POP3_PORT@|$D_POP3_PORT|g" -e "s|@POP3S_PORT@|$D_POP3S_PORT|g" \
        -e "s|@LMTP_PORT@|$D_LMTP_PORT|g" "$ROOT/loadtest/dovecot/dovecot.conf.in" >"$DOVE/dovecot.conf"
    : >"$DOVE/hibernate.conf"
    # Fails (and so ends the run) on a setting this Dovecot does not know.
    doveconf -c "$DOVE/dovecot.conf" -n >/dev/null
}

# start_dovecot plain|hibernate: the same mail, with or without imap-hibernate.
start_dovecot() {
    if [ "$1" = hibernate ]; then
        # An IMAP session in IDLE moves to an imap-hibernate process after 1 s (0 would turn
        # hibernation off) and its imap process exits. imap-hibernate runs as the internal
        # user and hands sessions back through imap-master, which must let it in. A
        # hibernated session holds two descriptors there (its client's and its mail
        # notification's) and more while one moves, so one process reaches the open-file
        # limit (ulimit -Hn: 20,000 here) near 10,000 sessions: they are spread over enough
        # processes, each kept to a third of the limit.
        local files per_process
        files=$(ulimit -Hn)
        [ "$files" = unlimited ] && files=1048576
        per_process=$(( (files - 100) / 3 ))
        cat >"$DOVE/hibernate.conf" <<CONF
imap_hibernate_timeout = 1s
service imap {
  unix_listener imap-master {
    user = \$default_internal_user
  }
}
service imap-hibernate {
  client_limit = $(( per_process < LIMIT ? per_process : LIMIT ))
  process_limit = $(( LIMIT / per_process + 1 ))
  unix_listener imap-hibernate {
    mode = 0660
    group = \$default_internal_group
  }
}
CONF
    else
        : >"$DOVE/hibernate.conf"
    fi
    dovecot -F -c "$DOVE/dovecot.conf" >>"$DOVE/master.log" 2>&1 &
    DOVECOT_PID=$!
    for _ in $(seq 100); do
        if port_open "$D_IMAP_PORT" && port_open "$D_POP3_PORT" && port_open "$D_LMTP_PORT"; then
            return 0
        fi
        if ! kill -0 "$DOVECOT_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "Dovecot did not start:" >&2
    cat "$DOVE/master.log" >&2
    tail -n 20 "$DOVE/dovecot.log" >&2 || true
    exit 1
}

# SIGTERM to the master (it stops its children), a bounded wait, then SIGKILL. Its children
# may outlive it for a while (imap-hibernate processes letting thousands of sessions go), and
# a new master cannot start while they hold the instance's sockets: they get the same.
stop_dovecot() {
    stop_process "$DOVECOT_PID"
    DOVECOT_PID=
    local children="^dovecot-loadtest-compare/" # instance_name in dovecot.conf.in
    for _ in $(seq 300); do
        pgrep -f "$children" >/dev/null || return 0
        sleep 0.1
    done
    pkill -KILL -f "$children" || true
    sleep 0.5
}

has_scenario() {
    "$BIN/loadtest" help "$1" >/dev/null 2>&1
}

# Whether SCENARIOS asks for this run: the scenario (every variant of it) or the variant
# itself (SCENARIO-tls), or SCENARIOS is unset.
wanted() {
    [ -z "${SCENARIOS:-}" ] || [[ " $SCENARIOS " == *" $1 "* ]] || [[ " $SCENARIOS " == *" $1$VARIANT "* ]]
}

# The variant of the IDLE scenarios being run: "" (plaintext) or -tls.
VARIANT=

# measure LABEL SCENARIO ARGS...: one run, its JSON in $JSON_DIR/LABEL-SCENARIO$VARIANT.json.
# A run that fails leaves LABEL-SCENARIO$VARIANT.failed (its error) for the report, and the
# script goes on.
measure() {
    local label=$1 scenario=$2
    shift 2
    local name=$scenario$VARIANT
    local base=$JSON_DIR/$label-$name
    if ! wanted "$scenario"; then
        return 0
    fi
    if ! has_scenario "$scenario"; then
        echo "== $label: $scenario skipped: this loadtest has no such scenario"
        case " $SKIPPED " in *" $scenario "*) ;; *) SKIPPED="$SKIPPED $scenario" ;; esac
        return 0
    fi
    echo "== $label: $name"
    load
    if run_scenario "$base" "$scenario" --label "$label" "$@"; then
        return 0
    fi
    FAILED=1
    FAILURES="$FAILURES $label/$name"
}

# Every scenario against one server: run_all LABEL, with P_* naming its ports, CA file and
# process, and PID_ARGS the --server-pid (CPU figures) for the scenarios that take it.
run_all() {
    local label=$1
    local users=(--users user%d --user-count "$USERS" --password "$PASSWORD")
    measure "$label" seed --lmtp-port "$P_LMTP" --users bulk%d --user-count 1 \
        --messages "$SEED_MESSAGES" --size "$SEED_SIZE" --clients 4 "${PID_ARGS[@]}"
    if [ "$SEED_USERS_BY" = lmtp ]; then
        echo "== $label: seeding $USERS users with $USER_MESSAGES messages of $USER_SIZE bytes each"
        "$BIN/loadtest" seed --host 127.0.0.1 --timeout "$TIMEOUT" --lmtp-port "$P_LMTP" --users user%d \
            --user-count "$USERS" --messages "$((USERS * USER_MESSAGES))" --size "$USER_SIZE" --clients 4 >/dev/null ||
            { FAILED=1 && FAILURES="$FAILURES $label/seed-users"; }
    fi
    measure "$label" bulk --pop3-port "$P_POP3" --pop3s-port "$P_POP3S" --cafile "$P_CA" \
        --user bulk0 --password "$PASSWORD" --passes "$PASSES" --raw-bytes "$RAW_BYTES" "${PID_ARGS[@]}"
    measure "$label" imap-bulk --imap-port "$P_IMAP" --imaps-port "$P_IMAPS" --cafile "$P_CA" \
        --user bulk0 --password "$PASSWORD" --passes "$PASSES" --raw-bytes "$RAW_BYTES" "${PID_ARGS[@]}"
    measure "$label" login --imap-port "$P_IMAP" --imaps-port "$P_IMAPS" --cafile "$P_CA" --tls \
        "${users[@]}" --clients "$LOGIN_CLIENTS" --duration "$LOGIN_DURATION"
    run_idle "$label"
    measure "$label" mixed --imap-port "$P_IMAP" "${users[@]}" \
        --clients "$MIXED_CLIENTS" --duration "$MIXED_DURATION"
    measure "$label" stress --imap-port "$P_IMAP" --users user%d --password "$PASSWORD" --shared 2 \
        --clients "$STRESS_CLIENTS" --duration "$STRESS_DURATION" "${PID_ARGS[@]}"
    measure "$label" deliver --lmtp-port "$P_LMTP" --clients "$DELIVER_CLIENTS" \
        --messages "$DELIVER_MESSAGES" --size "$DELIVER_SIZE" --users user%d --user-count "$USERS" "${PID_ARGS[@]}"
}

# The IDLE scenarios, which the hibernate variant runs too: idle and fanout once per variant
# (IDLE_TLS), each pair on a server restarted for it, so that what one variant's sessions
# left in the server's allocator is not taken for the next one's; then the storm.
run_idle() {
    local label=$1 scenario
    if [ "$label" = dovecot ] && ! dovecot_sessions_fit; then
        # Not a failure of the server: this machine cannot hold that many imap processes.
        # The storm's note is named as its summary names it: its sessions are always over TLS.
        local why="$SESSIONS imap processes would need ~$DOVECOT_NEEDS_MIB MiB of memory (see dovecot-hibernate)"
        for scenario in idle fanout; do
            for VARIANT in "${IDLE_VARIANTS[@]}"; do
                echo "== $label: $scenario$VARIANT not run: $why"
                echo "not run: $why" >"$JSON_DIR/$label-$scenario$VARIANT.failed"
            done
        done
        VARIANT=
        echo "not run: $why" >"$JSON_DIR/$label-storm-tls.failed"
        return 0
    fi
    for VARIANT in "${IDLE_VARIANTS[@]}"; do
        wanted idle || wanted fanout || continue
        restart "$label"
        local session_args=(--imap-port "$P_IMAP" --users user%d --user-count "$USERS" --password "$PASSWORD"
            --server-pid "$P_PID")
        if [ "$VARIANT" = -tls ]; then
            session_args+=(--tls --imaps-port "$P_IMAPS" --cafile "$P_CA")
        fi
        # The idle target is the growth after warm-up (issue 14). Before the figures, one
        # session like the measured ones per user logs in, selects its INBOX and leaves:
        # what a server pays once and not per session is paid then, on every server alike
        # (the first logins' work areas, ringmail's argon2 and Dovecot's login and auth
        # processes; the pages of the store or index each INBOX's SELECT reads, which would
        # otherwise count in the RSS of the first session of each user). The measured
        # sessions may reuse what these freed: at most one in ten of them at the issue's size.
        "$BIN/loadtest" idle --host 127.0.0.1 --timeout "$TIMEOUT" "${session_args[@]}" --sessions "$USERS" \
            --settle 1 >"$JSON_DIR/$label-warm-up$VARIANT.log" 2>&1 ||
            echo "== $label: the warm-up sessions failed (see $JSON_DIR/$label-warm-up$VARIANT.log)"
        measure "$label" idle "${session_args[@]}" --sessions "$SESSIONS"
        measure "$label" fanout "${session_args[@]}" --sessions "$SESSIONS" --lmtp-port "$P_LMTP" \
            --deliveries "$FANOUT_DELIVERIES" --rate "$FANOUT_RATE"
    done
    VARIANT=
    # A reconnect storm, over TLS as phones connect: every session dropped and back at once.
    measure "$label" storm --imap-port "$P_IMAP" --users user%d --user-count "$USERS" --password "$PASSWORD" \
        --sessions "$SESSIONS" --server-pid "$P_PID" --tls --imaps-port "$P_IMAPS" --cafile "$P_CA"
}

# Stops the server LABEL names and starts it again on the same data, setting P_* to its new
# ports and process.
restart() {
    case "$1" in
    ringmail)
        stop_server
        start_server ringmail
        P_IMAP=$IMAP_PORT P_IMAPS=$IMAPS_PORT P_POP3=$POP3_PORT P_POP3S=$POP3S_PORT P_LMTP=$LMTP_PORT
        P_CA=$CERT P_PID=$SERVER_PID
        PID_ARGS=(--server-pid "$SERVER_PID")
        ;;
    dovecot | dovecot-hibernate)
        stop_dovecot
        start_dovecot "$([ "$1" = dovecot ] && echo plain || echo hibernate)"
        P_PID=$DOVECOT_PID
        ;;
    esac
}

# Target (from BENCHMARKS.md) | scenario | headline | comparison | threshold [| the run's
# scenario as its summary names it, where the target is for one variant: idle over TLS is
# "idle-tls"]. ringmail's own figures, checked in the notes; a scenario with targets of its
# own adds a line here.
TARGETS="POP3 plaintext ≥ 90 % of the fastest raw loopback (sendfile or write)|bulk|POP3 plaintext / raw|ge|90
POP3 over TLS ≥ 70 % of it|bulk|POP3 TLS (pop3s) / raw|ge|70
POP3 over TLS ≥ 1 GiB/s|bulk|POP3 TLS (pop3s)|ge|1024
IMAP plaintext ≥ 90 % of the fastest raw loopback|imap-bulk|IMAP plaintext / raw|ge|90
IMAP over TLS ≥ 70 % of it|imap-bulk|IMAP TLS (imaps) / raw|ge|70
IMAP over TLS ≥ 1 GiB/s|imap-bulk|IMAP TLS (imaps)|ge|1024
LMTP delivery ≥ 2,000 messages/s|deliver|delivery rate|ge|2000
Memory per idle IMAP session in plaintext ≤ 1 KiB (whole-server RSS growth / sessions)|idle|RSS per idle session|le|1|idle
Memory per idle IMAP session over TLS ≤ 4 KiB (the same)|idle|RSS per idle session|le|4|idle-tls
Fan-out p99 delivery→EXISTS ≤ 5 ms, sessions in plaintext|fanout|delivery→EXISTS p99|le|5|fanout
Fan-out p99 delivery→EXISTS ≤ 5 ms, sessions over TLS|fanout|delivery→EXISTS p99|le|5|fanout-tls
Storm: every TLS session back in IDLE within 30 s|storm|all back in IDLE after|le|30
Storm: p99 login ≤ 2 s during it|storm|storm login p99|le|2000
Storm: no session left out|storm|sessions not back|le|0
Mixed: zero consistency errors|mixed|consistency errors|le|0
Stress (shared mailboxes): zero violations|stress|consistency errors|le|0"

# The targets as a Markdown table, from ringmail's JSON summaries.
targets_table() {
    TARGETS="$TARGETS" python3 - "$JSON_DIR" <<'PY'
import json, os, sys
print("| target | measured | met? |")
print("| --- | ---: | --- |")
for line in os.environ["TARGETS"].splitlines():
    target, scenario, name, op, threshold, *variant = line.split("|")
    try:
        # Each variant's run has a file of its own, named as its summary names it.
        run = variant[0] if variant else scenario
        with open(os.path.join(sys.argv[1], f"ringmail-{run}.json")) as f:
            summary = json.load(f)["summary"]
        if variant and summary["scenario"] != variant[0]:
            raise KeyError(variant[0])
        h = next(h for h in summary["headlines"] if h["name"] == name)
    except (OSError, ValueError, KeyError, StopIteration):
        print(f"| {target} | not measured | — |")
        continue
    met = h["value"] >= float(threshold) if op == "ge" else h["value"] <= float(threshold)
    print(f"| {target} | {h['value']:.1f} {h['unit']} | {'yes' if met else '**no**'} |")
PY
}

# SEED_USERS_BY=maildir: the users' mail, once, as Maildirs both servers take in.
MAILDIRS=$WORK/maildirs
write_maildirs() {
    echo "== writing $USER_MESSAGES messages of $USER_SIZE bytes for each of $USERS users into Maildirs"
    "$BIN/loadtest" maildir --dir "$MAILDIRS/user%d/Maildir" --user-count "$USERS" \
        --messages "$((USERS * USER_MESSAGES))" --size "$USER_SIZE"
}

# ringmail's users and their mail from the Maildirs, each with an argon2id hash of the run's
# password as `ringmail user add` makes one (`ringmail import` runs with the server stopped;
# it is started again after).
import_maildirs() {
    local hash i
    hash=$(argon2id_like_ringmail)
    for ((i = 0; i < USERS; i++)); do
        echo "user$i:{ARGON2ID}$hash"
    done >"$WORK/accounts"
    stop_server
    echo "== ringmail: importing the Maildirs"
    local started=$SECONDS
    "$BIN/ringmail" --config "$CONFIG" import --accounts "$WORK/accounts" --from "maildir:$MAILDIRS/%u/Maildir" \
        >"$WORK/import.log" 2>&1 || { tail -n 5 "$WORK/import.log" >&2 && exit 1; }
    tail -n 1 "$WORK/import.log"
    echo "== ringmail: imported in $((SECONDS - started)) s"
    start_server ringmail
}

RUN_DESCRIPTION=$(describe_run)
echo "$RUN_DESCRIPTION"
install_dovecot
DOVECOT_VERSION=$(dovecot --version)
echo "Dovecot $DOVECOT_VERSION"

echo "== ringmail"
if [ "$SEED_USERS_BY" = maildir ]; then
    write_maildirs
fi
start_server ringmail
add_users bulk 1
if [ "$SEED_USERS_BY" = maildir ]; then
    import_maildirs
else
    add_users user "$USERS"
fi
P_IMAP=$IMAP_PORT P_IMAPS=$IMAPS_PORT P_POP3=$POP3_PORT P_POP3S=$POP3S_PORT P_LMTP=$LMTP_PORT
P_CA=$CERT P_PID=$SERVER_PID
PID_ARGS=(--server-pid "$SERVER_PID")
run_all ringmail
stop_server

echo "== Dovecot"
raise_inotify
setup_dovecot
if [ "$SEED_USERS_BY" = maildir ]; then
    # The same files, linked: a Maildir's messages are never written again, only renamed.
    cp -al "$MAILDIRS/." "$DOVE/home/"
    chown -R mail:mail "$DOVE/home"
fi
start_dovecot plain
P_IMAP=$D_IMAP_PORT P_IMAPS=$D_IMAPS_PORT P_POP3=$D_POP3_PORT P_POP3S=$D_POP3S_PORT P_LMTP=$D_LMTP_PORT
P_CA=$DOVE/cert.pem P_PID=$DOVECOT_PID
# The master's CPU time is not Dovecot's (each session is a process): no CPU figures.
PID_ARGS=()
run_all dovecot
stop_dovecot

if [ "$HIBERNATE" = 1 ]; then
    echo "== Dovecot with imap-hibernate, the same mail"
    start_dovecot hibernate
    P_PID=$DOVECOT_PID
    run_idle dovecot-hibernate
    stop_dovecot
fi
restore_inotify

ELAPSED=$(($(date +%s) - STARTED))
NOTES=$JSON_DIR/notes.md
{
    echo "Written by \`loadtest/compare.sh\` in $((ELAPSED / 60)) min $((ELAPSED % 60)) s."
    echo
    # describe_run's lines after "== machine" (which the report has already): the build.
    echo "- $(echo "$RUN_DESCRIPTION" | sed -n '3,$p' | awk 'NR > 1 { printf " — " } { printf "%s", $0 }')."
    echo "- Dovecot $DOVECOT_VERSION from Debian's packages, configured by"
    echo "  \`loadtest/dovecot/dovecot.conf.in\`: Maildir, login processes in high-performance mode"
    echo "  (one per core), limits raised to $LIMIT sessions (and fs.inotify.max_user_instances"
    echo "  with them, so each IDLE session is told of new mail). \`dovecot-hibernate\` is the same"
    echo "  server with \`imap_hibernate_timeout = 1s\`: a session in IDLE moves to an"
    echo "  imap-hibernate process (as many as keep each within the open-file limit) and its"
    echo "  imap process exits."
    if [ "$DOVECOT_PASS_SCHEME" = ARGON2ID ]; then
        echo "- Passwords: both servers check argon2id hashes with the same parameters (m=19456 KiB,"
        echo "  t=2, p=1): ringmail's own, Dovecot's \`{ARGON2ID}\` through libsodium."
    else
        echo "- Passwords: ringmail checks argon2id hashes; Dovecot checks \`{$DOVECOT_PASS_SCHEME}\`"
        echo "  (\`DOVECOT_PASS_SCHEME\`), which matters for logins per second."
    fi
    echo "- Sizes: bulk mailbox $SEED_MESSAGES × $SEED_SIZE bytes, $PASSES passes, raw reference"
    echo "  $RAW_BYTES bytes; $USERS users with $USER_MESSAGES × $USER_SIZE bytes each ($USERS_SEEDED); deliver"
    echo "  $DELIVER_MESSAGES × $DELIVER_SIZE bytes over $DELIVER_CLIENTS connections; $SESSIONS IDLE"
    echo "  sessions ($IDLE_KINDS, each kind on a restarted server); fanout $FANOUT_DELIVERIES deliveries at $FANOUT_RATE/s; login $LOGIN_CLIENTS"
    echo "  clients for $LOGIN_DURATION s; mixed $MIXED_CLIENTS clients for $MIXED_DURATION s."
    if [ -n "$INOTIFY_NOTE" ]; then
        echo "- $INOTIFY_NOTE"
    fi
    if [ -n "$SKIPPED" ]; then
        echo "- Not run (no such scenario in this loadtest):$SKIPPED."
    fi
    if [ -n "$FAILURES" ]; then
        echo "- Failed:$FAILURES (see each scenario below)."
    fi
    echo
    echo "ringmail's targets:"
    echo
    targets_table
    echo
    echo "Where a target is missed, BENCHMARKS.md shows where the time or memory goes: perf"
    echo "profiles of POP3 and IMAP bulk downloads (\"Where the time goes\", \"IMAP\" (c)), of"
    echo "\`mixed\` (\"Where the time goes in \`mixed\`\"), what an idle session holds, and"
    echo "15,000-session idle and fan-out runs of ringmail alone."
} >"$NOTES"

rm -f "$CHARTS"/*.svg
"$BIN/loadtest" report "$JSON_DIR" --ours ringmail --theirs dovecot --theirs dovecot-hibernate \
    --out "$OUT" --charts "$CHARTS" --notes "$NOTES" || FAILED=1

echo "== $OUT"
cat "$OUT"
echo "== JSON results and logs in $JSON_DIR; the run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
if [ "$FAILED" = 1 ]; then
    echo "some measurements failed (see above)" >&2
    exit 1
fi
