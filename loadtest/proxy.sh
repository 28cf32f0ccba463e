#!/usr/bin/env bash
# The front end (`ringmail proxy`) against direct access to its back end, in the same run
# (issue 10, item 7). Builds ringmail and the harness in release mode (bench-lib.sh), starts
# one back end (`ringmail serve`, proxy-facing IMAP and POP3 listeners) and one front end
# (`ringmail proxy`, a static directory routing every user to that back end), both with
# `workers = 2` on free loopback ports, and runs each scenario against the back end's own
# listeners ("direct") and then through the front end ("proxy"), with the same sizes:
#   mixed       IMAP ops/s and latency: ops/s ratio, added p99 (overall and per command);
#               the standard mix with MIXED_CLIENTS, 2 % of whose operations are
#               reconnects (a login each: the verified-credential cache spares argon2 after a
#               user's first), then MIXED_STEADY_CLIENTS without reconnects
#               (`--no-reconnect`), where only what the relay adds per command is measured,
#               and both mixes direct through the harness's relay threads (`--via-relay`):
#               the least any relay adds on this machine, the front end's reference
#   idle        N sessions in IDLE: memory per session of the back end (both runs) and of
#               the front end (proxied run, with how many relays rest at the end), kernel
#               TCP sockets per session; the back end and the front end are restarted
#               before each idle run, so each starts fresh, and warmed up with a few
#               seconds of logins along the path measured
#   imap-bulk   IMAP FETCH 1:* MiB/s, plaintext and TLS: proxied as a share of direct
#   bulk        POP3 RETR MiB/s, the same; both with each process's CPU per GiB
#   login       plaintext logins/s by LOGIN_CLIENTS clients, each connecting, logging in
#               and out over and over for LOGIN_DURATION seconds (`loadtest login`) as 8
#               users the servers' credential caches know from a warm-up, and the back
#               end's and the front end's CPU per login
#   storm       (not in the default set) SESSIONS TLS sessions in IDLE dropped at once and
#               all reconnecting at once (`loadtest storm`): seconds until all are back,
#               login latency meanwhile, sessions not back; through the front end each
#               reconnect is its TLS handshake and login there, the back end's login for it,
#               and its session passed on (PASS_TLS)
# Users (user0..user(USERS-1), bulk0) are in the back end's store (`ringmail user add`) and
# in the front end's `[directory] users` with the same password; mail is seeded over the back
# end's LMTP. It prints a Markdown table (direct, through the front end, ratio or difference,
# the issue's target, met?) and writes it to loadtest/PROXY.md and, with the JSON and log of
# every run, to target-release/bench/proxy/. A scenario that fails is reported and the run
# goes on; the exit status is non-zero if anything failed. Everything stays on 127.0.0.1; the
# servers and their data are removed at exit.
#
# Knobs (environment); with the defaults a run takes about 5 minutes on 2 cores, plus the build:
#   SEED_MESSAGES, SEED_SIZE    the bulk mailbox (bulk0) both downloads read
#   RAW_BYTES, PASSES           bulk: raw loopback reference size, rounds
#   POP3_PIPELINE               bulk: RETRs the client keeps in flight (8)
#   SESSIONS                    idle: concurrent IDLE sessions (2000)
#   IDLE_TLS                    idle: 1 to hold them over implicit TLS
#   PASS_TLS                    0: the front end keeps its TLS clients' sessions and relays
#                               the bytes inside them ([cluster] pass_tls = false); default
#                               1, each session passes to the back end after login
#   USERS (default SESSIONS), USER_MESSAGES, USER_SIZE   user0..user(N-1) and their mail
#   MIXED_CLIENTS, MIXED_STEADY_CLIENTS (0: no run without reconnects), MIXED_DURATION
#   LOGIN_CLIENTS, LOGIN_DURATION   login: clients (8), seconds (10)
#   SCENARIOS                   only these (space-separated), default "mixed idle imap-bulk bulk login"
#   TIMEOUT                     per scenario, seconds
#   OUT                         the Markdown table (default loadtest/PROXY.md)
#   BIN                         a directory with prebuilt `ringmail` and `loadtest` (no build)
#   IDLE_WAIT, RESULTS, CARGO_TARGET_DIR   see bench-lib.sh
set -euo pipefail

STARTED=$(date +%s)
SEED_MESSAGES=${SEED_MESSAGES:-2000}
SEED_SIZE=${SEED_SIZE:-102400}
RAW_BYTES=${RAW_BYTES:-536870912}
PASSES=${PASSES:-3}
POP3_PIPELINE=${POP3_PIPELINE:-8}
SESSIONS=${SESSIONS:-2000}
# One user (and INBOX) per IDLE session, as compare.sh has them.
USERS=${USERS:-$SESSIONS}
USER_MESSAGES=${USER_MESSAGES:-20}
USER_SIZE=${USER_SIZE:-8192}
MIXED_CLIENTS=${MIXED_CLIENTS:-32}
MIXED_STEADY_CLIENTS=${MIXED_STEADY_CLIENTS:-4}
MIXED_DURATION=${MIXED_DURATION:-30}
LOGIN_CLIENTS=${LOGIN_CLIENTS:-8}
LOGIN_DURATION=${LOGIN_DURATION:-10}
SCENARIOS=${SCENARIOS:-mixed idle imap-bulk bulk login}
TIMEOUT=${TIMEOUT:-600}
IDLE_WAIT=${IDLE_WAIT:-60}
IDLE_TLS=${IDLE_TLS:-0}
PASS_TLS=${PASS_TLS:-1}

if [ "$USERS" -lt "$MIXED_CLIENTS" ]; then
    echo "USERS ($USERS) must be at least MIXED_CLIENTS ($MIXED_CLIENTS): mixed gives each client a mailbox" >&2
    exit 2
fi

# Connections the back end and the front end must accept at once, all from 127.0.0.1 and
# a few users: the IDLE sessions and anything still closing from the scenario before.
LIMIT=$((2 * SESSIONS + 200))
NAME=proxy
SECRET=bench-proxy-secret-$RANDOM$RANDOM
LIMITS="login_type = \"plain-text-login\"
max_connections = $LIMIT
max_connections_per_user = $LIMIT
max_connections_per_ip = $LIMIT"
ulimit -n "$(ulimit -Hn)"
# shellcheck source=loadtest/bench-lib.sh
source "$(dirname "$0")/bench-lib.sh"

OUT=${OUT:-$ROOT/loadtest/PROXY.md}
JSON_DIR=$RESULTS/proxy
rm -rf "$JSON_DIR"
mkdir -p "$JSON_DIR"
# The servers' data under the target directory, not /tmp (bench-lib.sh made WORK there).
rmdir "$WORK"
WORK=$JSON_DIR/work
mkdir -p "$WORK"
FRONT_PID=
FAILURES=

cleanup_proxy() {
    stop_front
    cleanup
}
trap cleanup_proxy EXIT

# The back end's proxy-facing ports, and what bench-lib.sh's start_server adds to its config:
# the sections after [submission] ride on SUBMISSION_EXTRA, the last section it writes.
B_IMAP_PROXY=$(free_port)
B_POP3_PROXY=$(free_port)
IMAP_EXTRA="$LIMITS
listen_proxy = [\"127.0.0.1:$B_IMAP_PROXY\"]"
POP3_EXTRA="$LIMITS
listen_proxy = [\"127.0.0.1:$B_POP3_PROXY\"]"
LMTP_EXTRA='max_message_size = 52428800'
SUBMISSION_EXTRA="
[limits]
login_failure_delay = 0

[cluster]
name = \"b1\"
site = \"s\"
proxy_secret = \"$SECRET\""

# The front end's config: client-facing IMAP and POP3 (plaintext and implicit TLS), no
# submission or LMTP listeners, every user routed to b1 with one argon2 hash of $PASSWORD.
write_front_config() {
    local dir=$WORK/front hash i
    mkdir -p "$dir"
    F_IMAP=$(free_port)
    F_IMAPS=$(free_port)
    F_POP3=$(free_port)
    F_POP3S=$(free_port)
    F_METRICS=$(free_port)
    F_CONFIG=$dir/proxy.toml
    F_CERT=$dir/data/cert.pem
    hash=$(printf '%s\n' "$PASSWORD" | "$BIN/ringmail" user hash --password-stdin)
    {
        cat <<CONF
[server]
data_dir = "$dir/data"
workers = 2

[imap]
listen = ["127.0.0.1:$F_IMAP"]
listen_tls = ["127.0.0.1:$F_IMAPS"]
$LIMITS

[pop3]
listen = ["127.0.0.1:$F_POP3"]
listen_tls = ["127.0.0.1:$F_POP3S"]
$LIMITS

[submission]
listen = []
listen_tls = []

[lmtp]
listen = []

[limits]
login_failure_delay = 0

[metrics]
listen = ["127.0.0.1:$F_METRICS"]

[cluster]
site = "s"
proxy_secret = "$SECRET"
pass_tls = $([ "$PASS_TLS" = 1 ] && echo true || echo false)
backends = [{ name = "b1", site = "s", imap = "127.0.0.1:$B_IMAP_PROXY", pop3 = "127.0.0.1:$B_POP3_PROXY" }]

[directory]
users = [
CONF
        for ((i = 0; i < USERS; i++)); do
            echo "  { name = \"user$i\", password_hash = \"$hash\", mail_host = \"b1\" },"
        done
        echo "  { name = \"bulk0\", password_hash = \"$hash\", mail_host = \"b1\" },"
        echo "]"
    } >"$F_CONFIG"
}

# Starts the front end on $F_CONFIG; waits (bounded) for "ringmail proxy ready".
start_front() {
    local log=$WORK/front/proxy.log
    "$BIN/ringmail" proxy --config "$F_CONFIG" >"$log" 2>&1 &
    FRONT_PID=$!
    for _ in $(seq 300); do
        if grep -q "ringmail proxy ready" "$log"; then
            return 0
        fi
        if ! kill -0 "$FRONT_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "the front end did not start:" >&2
    cat "$log" >&2
    exit 1
}

stop_front() {
    stop_process "$FRONT_PID"
    FRONT_PID=
}

# Both servers stopped and started again on the same ports and data: fresh processes for a
# memory measurement.
restart_both() {
    stop_front
    stop_process "$SERVER_PID"
    # start_server picks new ports for the back end's own listeners; the proxy-facing ones
    # are fixed in its config, so the front end's config still holds.
    start_server backend
    start_front
}

# measure LABEL SCENARIO ARGS...: one run, its JSON in $JSON_DIR/LABEL-SCENARIO.json. A run
# that fails leaves LABEL-SCENARIO.failed (its error) for the table, and the script goes on.
measure() {
    local label=$1 scenario=$2
    shift 2
    local base=$JSON_DIR/$label-$scenario
    echo "== $label: $scenario"
    load
    if run_scenario "$base" "$scenario" --label "$label" "$@"; then
        return 0
    fi
    FAILED=1
    FAILURES="$FAILURES $label/$scenario"
}

# Before a memory measurement on fresh processes: a few seconds of logins along the path
# measured, so one-time costs (the login threads' argon2 work areas, 19 MiB each) are paid
# before the figures start, not spread over the sessions.
WARM_USERS=8
warm_up() {
    "$BIN/loadtest" login --host 127.0.0.1 --timeout "$TIMEOUT" --imap-port "$P_IMAP" --users user%d \
        --user-count "$WARM_USERS" --password "$PASSWORD" --clients 4 --duration 3 >"$JSON_DIR/$1-warm-up.log" 2>&1 ||
        echo "warm-up logins for $1 failed: see $JSON_DIR/$1-warm-up.log" >&2
}

has() {
    [[ " $SCENARIOS " == *" $1 "* ]]
}

# The ports of the back end's own listeners (direct) or of the front end's (proxy). Every
# scenario measures the back end's CPU or memory (--server-pid); idle through the front end
# also measures the front end's memory, apart (--front-pid).
ports_of() {
    PID_ARGS=(--server-pid "$SERVER_PID")
    if [ "$1" = direct ]; then
        P_IMAP=$IMAP_PORT P_IMAPS=$IMAPS_PORT P_POP3=$POP3_PORT P_POP3S=$POP3S_PORT P_CA=$CERT
        FRONT_ARGS=()
        CPU_ARGS=()
    else
        P_IMAP=$F_IMAP P_IMAPS=$F_IMAPS P_POP3=$F_POP3 P_POP3S=$F_POP3S P_CA=$F_CERT
        FRONT_ARGS=(--front-pid "$FRONT_PID" --front-metrics "$F_METRICS")
        CPU_ARGS=(--front-pid "$FRONT_PID")
    fi
}

RUN_DESCRIPTION=$(describe_run)
echo "$RUN_DESCRIPTION"

echo "== back end"
start_server backend
add_users user "$USERS"
add_users bulk 1
write_front_config
start_front
echo "== seeding bulk0 with $SEED_MESSAGES messages of $SEED_SIZE bytes, $USERS users with $USER_MESSAGES of $USER_SIZE"
"$BIN/loadtest" seed --host 127.0.0.1 --timeout "$TIMEOUT" --lmtp-port "$LMTP_PORT" --users bulk%d \
    --user-count 1 --messages "$SEED_MESSAGES" --size "$SEED_SIZE" --clients 4 | tee "$JSON_DIR/seed.log"
"$BIN/loadtest" seed --host 127.0.0.1 --timeout "$TIMEOUT" --lmtp-port "$LMTP_PORT" --users user%d \
    --user-count "$USERS" --messages "$((USERS * USER_MESSAGES))" --size "$USER_SIZE" --clients 4 \
    >>"$JSON_DIR/seed.log"

users=(--users user%d --password "$PASSWORD")
if has mixed; then
    for label in direct proxy; do
        ports_of "$label"
        measure "$label" mixed --imap-port "$P_IMAP" "${users[@]}" --user-count "$MIXED_CLIENTS" \
            --clients "$MIXED_CLIENTS" --duration "$MIXED_DURATION" "${PID_ARGS[@]}"
    done
    # The reference for the mix with reconnects: direct, through the harness's own relay
    # threads (two per connection, made at each connect), labelled relayed.
    ports_of direct
    measure relayed mixed --imap-port "$P_IMAP" "${users[@]}" --via-relay --user-count "$MIXED_CLIENTS" \
        --clients "$MIXED_CLIENTS" --duration "$MIXED_DURATION" "${PID_ARGS[@]}"
    # Without reconnects: labelled direct-steady and proxy-steady.
    if [ "$MIXED_STEADY_CLIENTS" -gt 0 ]; then
        for label in direct proxy; do
            ports_of "$label"
            measure "$label-steady" mixed --imap-port "$P_IMAP" "${users[@]}" --no-reconnect \
                --user-count "$MIXED_STEADY_CLIENTS" --clients "$MIXED_STEADY_CLIENTS" \
                --duration "$MIXED_DURATION" "${PID_ARGS[@]}"
        done
        # The reference: direct, through the harness's own relay threads (what any relay
        # adds on this machine), labelled relayed-steady.
        ports_of direct
        measure relayed-steady mixed --imap-port "$P_IMAP" "${users[@]}" --no-reconnect --via-relay \
            --user-count "$MIXED_STEADY_CLIENTS" --clients "$MIXED_STEADY_CLIENTS" \
            --duration "$MIXED_DURATION" "${PID_ARGS[@]}"
    fi
fi
if has idle; then
    for label in direct proxy; do
        restart_both
        ports_of "$label"
        warm_up "$label"
        idle_args=(--imap-port "$P_IMAP")
        if [ "$IDLE_TLS" = 1 ]; then
            idle_args+=(--tls --imaps-port "$P_IMAPS" --cafile "$P_CA")
        fi
        measure "$label" idle "${idle_args[@]}" "${users[@]}" --user-count "$USERS" \
            --sessions "$SESSIONS" "${PID_ARGS[@]}" "${FRONT_ARGS[@]}"
    done
fi
if has imap-bulk; then
    for label in direct proxy; do
        ports_of "$label"
        measure "$label" imap-bulk --imap-port "$P_IMAP" --imaps-port "$P_IMAPS" --cafile "$P_CA" \
            --user bulk0 --password "$PASSWORD" --passes "$PASSES" --raw-bytes "$RAW_BYTES" "${PID_ARGS[@]}" \
            "${CPU_ARGS[@]}"
    done
fi
if has bulk; then
    for label in direct proxy; do
        ports_of "$label"
        measure "$label" bulk --pop3-port "$P_POP3" --pop3s-port "$P_POP3S" --pipeline "$POP3_PIPELINE" --cafile "$P_CA" \
            --user bulk0 --password "$PASSWORD" --passes "$PASSES" --raw-bytes "$RAW_BYTES" "${PID_ARGS[@]}" \
            "${CPU_ARGS[@]}"
    done
fi
if has login; then
    for label in direct proxy; do
        ports_of "$label"
        # The warm-up's users, so the verified-credential caches already know their
        # passwords: what is measured is a login, not a server's first argon2 of a user.
        warm_up "$label"
        measure "$label" login --imap-port "$P_IMAP" --users user%d --user-count "$WARM_USERS" \
            --password "$PASSWORD" --clients "$LOGIN_CLIENTS" --duration "$LOGIN_DURATION" \
            "${PID_ARGS[@]}" "${CPU_ARGS[@]}"
    done
fi
if has storm; then
    for label in direct proxy; do
        restart_both
        ports_of "$label"
        measure "$label" storm --imap-port "$P_IMAP" --tls --imaps-port "$P_IMAPS" --cafile "$P_CA" \
            "${users[@]}" --user-count "$USERS" --sessions "$SESSIONS" "${PID_ARGS[@]}"
    done
fi
stop_front
stop_server

# The table: one row per figure, direct beside proxied, with the issue's targets.
table() {
    MIXED_CLIENTS=$MIXED_CLIENTS MIXED_STEADY_CLIENTS=$MIXED_STEADY_CLIENTS python3 - "$JSON_DIR" <<'PY'
import json, os, sys

dir = sys.argv[1]

def load(label, scenario):
    try:
        with open(os.path.join(dir, f"{label}-{scenario}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def failed(label, scenario):
    try:
        with open(os.path.join(dir, f"{label}-{scenario}.failed")) as f:
            return f.read().strip()
    except OSError:
        return None

def headline(run, name):
    if run is None:
        return None
    return next((h["value"] for h in run["summary"]["headlines"] if h["name"] == name), None)

def fmt(v, unit):
    if v is None:
        return "—"
    if unit in ("MiB/s", "ops/s", "logins/s", "µs"):
        return f"{v:,.0f} {unit}"
    if unit == "" and float(v).is_integer():
        return f"{int(v):,}"
    if unit == "ms":
        return f"{v:,.2f} ms" if v < 100 else f"{v:,.1f} ms"
    return f"{v:,.2f} {unit}".rstrip()

rows = []
notes = []

def row(scenario, figure, d, p, unit, compare=None, target="", met=None):
    rows.append((scenario, figure, fmt(d, unit), fmt(p, unit), compare or "", target,
                 "" if met is None else ("yes" if met else "**no**")))

def ratio(d, p):
    return None if d in (None, 0) or p is None else 100.0 * p / d

for scenario in ("mixed", "idle", "imap-bulk", "bulk", "login", "storm"):
    for label in ("direct", "proxy", "direct-steady", "proxy-steady", "relayed-steady"):
        why = failed(label, scenario)
        if why:
            notes.append(f"- {scenario} {label}: **failed**: {why}")

def by_command(run):
    return {} if run is None else {c["command"]: c["latency"] for c in run["details"]["latency"]}

def within_1ms(diff):
    return None if diff is None else diff <= 1.0

runs = (("", f"mixed ({os.environ['MIXED_CLIENTS']} clients)"),
        ("-steady", f"mixed, no reconnects ({os.environ['MIXED_STEADY_CLIENTS']} clients)"))
for suffix, scenario in runs:
    d, p = load("direct" + suffix, "mixed"), load("proxy" + suffix, "mixed")
    if not (d or p):
        continue
    do, po = headline(d, "ops/s"), headline(p, "ops/s")
    r = ratio(do, po)
    row(scenario, "ops/s", do, po, "ops/s", r is not None and f"{r:.1f} %", "≥ 90 %",
        None if r is None else r >= 90)
    dp, pp = headline(d, "p99 (all commands)"), headline(p, "p99 (all commands)")
    diff = None if dp is None or pp is None else pp - dp
    row(scenario, "p99, all commands", dp, pp, "ms", diff is not None and f"{diff:+.2f} ms",
        "≤ +1 ms", within_1ms(diff))
    # Per command: what the relay adds to each, beside the login the front end does itself.
    dc, pc = by_command(d), by_command(p)
    for command in dc:
        if command == "all" or command not in pc:
            continue
        dv, pv = dc[command]["p99_us"] / 1e3, pc[command]["p99_us"] / 1e3
        relayed = command != "connect + LOGIN"
        row(scenario, f"p99 {command}", dv, pv, "ms", f"{pv - dv:+.2f} ms",
            "≤ +1 ms" if relayed else "", within_1ms(pv - dv) if relayed else None)
    row(scenario, "consistency errors", headline(d, "consistency errors"),
        headline(p, "consistency errors"), "")
    cpu = lambda run: run and run["details"].get("server_cpu_percent")
    row(scenario, "back end CPU, % of one core", cpu(d), cpu(p), "%")
    # What any relay adds on this machine: direct through the harness's relay threads.
    ref = load("relayed" + suffix, "mixed")
    if ref:
        ro = headline(ref, "ops/s")
        rr = ratio(do, ro)
        row(scenario, "ops/s through the harness's relay (reference)", do, ro, "ops/s",
            rr is not None and f"{rr:.1f} %")
        pr = ratio(ro, po)
        row(scenario, "ops/s, front end against the reference relay", ro, po, "ops/s",
            pr is not None and f"{pr:.1f} %")
        rp = headline(ref, "p99 (all commands)")
        diff = None if dp is None or rp is None else rp - dp
        row(scenario, "p99 through the harness's relay (reference)", dp, rp, "ms",
            diff is not None and f"{diff:+.2f} ms")

d, p = load("direct", "idle"), load("proxy", "idle")
if d or p:
    row("idle", "sessions held", headline(d, "sessions held"), headline(p, "sessions held"), "")
    row("idle", "session setup rate", headline(d, "session setup rate"),
        headline(p, "session setup rate"), "sessions/s")
    for what in ("RSS", "anonymous memory"):
        for marginal in ("", " (marginal)"):
            name = f"{what} per idle session{marginal}"
            dv, pv = headline(d, name), headline(p, name)
            when = "second half" if marginal else "whole run"
            row("idle", f"back end: {what} per session, {when}", dv, pv, "KiB",
                dv is not None and pv is not None and f"{pv - dv:+.2f} KiB")
    for what in ("RSS", "anonymous memory"):
        for marginal in ("", " (marginal)"):
            pv = headline(p, f"front end: {what} per idle session{marginal}")
            when = "second half" if marginal else "whole run"
            target = "≤ 4 KiB" if what == "RSS" and not marginal else ""
            met = None if pv is None or not target else pv <= 4.0
            row("idle", f"front end: {what} per session, {when}", None, pv, "KiB", "", target, met)
    resting = p and (p["details"].get("front_resting") or [None] * 3)[2]
    row("idle", "front end: relayed sessions resting at the last reading", None, resting, "")
    def tcp(run):
        t = run and run["details"].get("tcp_per_session")
        return (None, None) if not t else (t["sockets"], t["buffer_kib"])
    (ds, db), (ps, pb) = tcp(d), tcp(p)
    row("idle", "kernel: TCP sockets per session", ds, ps, "")
    row("idle", "kernel: TCP socket buffers per session", db, pb, "KiB")

for scenario, protocol in (("imap-bulk", "IMAP"), ("bulk", "POP3")):
    d, p = load("direct", scenario), load("proxy", scenario)
    if not (d or p):
        continue
    tls = "IMAP TLS (imaps)" if protocol == "IMAP" else "POP3 TLS (pop3s)"
    for name, figure in ((f"{protocol} plaintext", "plaintext"), (tls, "TLS")):
        dv, pv = headline(d, name), headline(p, name)
        r = ratio(dv, pv)
        row(scenario, f"{protocol} {figure}", dv, pv, "MiB/s", r is not None and f"{r:.1f} %",
            "≥ 80 %", None if r is None else r >= 80)
    # What a GiB costs each process (seconds of one core, all passes): through the front end
    # the back end's and the front end's together, beside the back end's alone direct.
    name = f"{protocol} plaintext"
    for who, label in (("server", "back end"), ("front end", "front end"), ("harness", "client (harness)")):
        dv, pv = headline(d, f"{name}: {who} CPU per GiB"), headline(p, f"{name}: {who} CPU per GiB")
        if dv is not None or pv is not None:
            row(scenario, f"{protocol} plaintext: {label} CPU per GiB", dv, pv, "s")
    name = "raw loopback TCP (reference)"
    dv, pv = headline(d, name), headline(p, name)
    r = ratio(dv, pv)
    row(scenario, "raw loopback TCP (reference)", dv, pv, "MiB/s", r is not None and f"{r:.1f} %")
    # Two hops through a relay thread of the harness: the least any front end adds. The
    # plaintext download through the front end as a share of it, measured in the same run.
    name = "raw loopback TCP, relayed (reference)"
    rv = headline(p, name)
    through = headline(p, f"{protocol} plaintext")
    r = ratio(rv, through)
    row(scenario, "raw loopback TCP through a relay thread (reference)", headline(d, name), rv, "MiB/s",
        r is not None and f"plaintext through the front end: {r:.1f} % of it")

d, p = load("direct", "login"), load("proxy", "login")
if d or p:
    # A login through the front end is two connections and two logins: what each side
    # spends on one, beside the back end's alone direct.
    dv, pv = headline(d, "logins/s"), headline(p, "logins/s")
    r = ratio(dv, pv)
    row("login", "logins/s (plaintext)", dv, pv, "logins/s", r is not None and f"{r:.1f} %")
    dv, pv = headline(d, "login p99"), headline(p, "login p99")
    row("login", "connect to LOGIN OK p99", dv, pv, "ms", dv is not None and pv is not None and f"{pv - dv:+.2f} ms")
    for who, label in (("server", "back end"), ("front end", "front end")):
        dv, pv = headline(d, f"{who} CPU per login"), headline(p, f"{who} CPU per login")
        if dv is not None or pv is not None:
            row("login", f"{label} CPU per login", dv, pv, "µs")

d, p = load("direct", "storm"), load("proxy", "storm")
if d or p:
    # Issue 14's storm targets, for one server; through the front end the same clients.
    back_d, back_p = headline(d, "all back in IDLE after"), headline(p, "all back in IDLE after")
    row("storm", "all back in IDLE after", back_d, back_p, "s", "", "≤ 30 s",
        None if back_p is None else back_p <= 30)
    for q in ("p50", "p99"):
        dv, pv = headline(d, f"storm login {q}"), headline(p, f"storm login {q}")
        target = "≤ 2 s" if q == "p99" else ""
        row("storm", f"login {q} during the storm", dv, pv, "ms",
            dv is not None and pv is not None and f"{pv - dv:+,.0f} ms", target,
            None if q != "p99" or pv is None else pv <= 2000)
    row("storm", "sessions not back", headline(d, "sessions not back"), headline(p, "sessions not back"),
        "", "", "0", None if p is None else headline(p, "sessions not back") == 0)

print("| scenario | figure | direct | through the front end | ratio / difference | target | met? |")
print("| --- | --- | ---: | ---: | ---: | --- | --- |")
for r in rows:
    print("| " + " | ".join(r) + " |")
if notes:
    print()
    print("\n".join(notes))
PY
}

ELAPSED=$(($(date +%s) - STARTED))
TABLE=$JSON_DIR/table.md
{
    echo "# The front end (\`ringmail proxy\`) against direct access"
    echo
    echo "Written by \`loadtest/proxy.sh\` in $((ELAPSED / 60)) min $((ELAPSED % 60)) s."
    echo
    echo "- $(echo "$RUN_DESCRIPTION" | sed -n '2,$p' | awk 'NR > 1 { printf " — " } { printf "%s", $0 }')."
    echo "- One back end (\`ringmail serve\`) and one front end (\`ringmail proxy\`), \`workers = 2\`"
    echo "  each, on the same 127.0.0.1; \"direct\" is the back end's own listeners, \"through the"
    echo "  front end\" the front end's, which relays to the back end's \`listen_proxy\`. Each"
    echo "  scenario ran direct, then through the front end; both servers were restarted before"
    echo "  each \`idle\` run and warmed up with 3 s of logins along the path measured (so the"
    echo "  login threads' argon2 work areas are not counted as sessions' memory)."
    echo "- Scenarios: $SCENARIOS."
    echo "- Sizes: bulk mailbox $SEED_MESSAGES × $SEED_SIZE bytes, $PASSES passes, POP3 RETRs $POP3_PIPELINE in flight, raw reference"
    echo "  $RAW_BYTES bytes; $USERS users with $USER_MESSAGES × $USER_SIZE bytes each; $SESSIONS"
    echo "  IDLE sessions ($([ "$IDLE_TLS" = 1 ] && echo "implicit TLS" || echo plaintext)); mixed $MIXED_CLIENTS clients and, without reconnects,"
    echo "  $MIXED_STEADY_CLIENTS clients, $MIXED_DURATION s each (plaintext LOGIN: argon2id for a user's first"
    echo "  login, at the front end when proxied, an HMAC from the credential cache after it);"
    echo "  logins $LOGIN_CLIENTS clients for $LOGIN_DURATION s as $WARM_USERS users."
    echo "- Targets (issue 10): ops/s ≥ 90 % of direct, ≤ 1 ms added p99; ≤ 4 KiB per idle"
    echo "  session at the front end beyond the back end's own; bulk ≥ 80 % of direct."
    if [ -n "$FAILURES" ]; then
        echo "- Failed:$FAILURES."
    fi
    echo
    table
} >"$TABLE"
cp "$TABLE" "$OUT"

echo "== $OUT"
cat "$OUT"
echo "== JSON results and logs in $JSON_DIR; the run took $((ELAPSED / 60)) min $((ELAPSED % 60)) s"
if [ "$FAILED" = 1 ]; then
    echo "some measurements failed (see above)" >&2
    exit 1
fi
