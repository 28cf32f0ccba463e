#!/usr/bin/env bash
# Mailbox move figures (issue 12, item 7), in one run: a slapd directory (Debian's, on a
# loopback port), two back ends b1 and b2 that take moves, and a MESSAGES-message mailbox of
# SIZE-byte messages on b1, seeded over LMTP; then
#   move     `ringmail move bulk0 --to b2`: its first copy pass carries the whole mailbox
#            (messages/s and MiB/s), and the whole move is timed;
#   pause    the move back to b1, with CHANGES flag changes made after its copy passes and
#            before its lock, so its final pass carries them: how long the mailbox was locked
#            (what a client sees), target ≤ 2 s;
#   doveadm  Debian's `doveadm backup` of the same mailbox (exported to a Maildir) to another
#            Maildir: Dovecot's own copy between two stores, the reference.
#
# Knobs (environment): MESSAGES (10000), SIZE (4096), CHANGES (100), IDLE_WAIT, BIN,
# CARGO_TARGET_DIR.
set -euo pipefail

NAME=move
MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-4096}
CHANGES=${CHANGES:-100}
SECRET=bench-move-secret
source "$(dirname "$0")/bench-lib.sh"

for tool in slapd slapadd slappasswd; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
        { echo "bench-move: $tool is missing (apt-get install slapd)" >&2; exit 1; }
done
export PATH=$PATH:/usr/sbin

# The directory: the schemas slapd ships, ringmail's, one service account and bulk0 on b1.
ldap=$WORK/ldap
mkdir -p "$ldap/db"
LDAP_PORT=$(free_port)
cat >"$ldap/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/misc.schema
include $ROOT/docs/ldap/ringmail.schema
pidfile $ldap/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
database mdb
maxsize 67108864
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw "root pw"
directory $ldap/db
index objectClass,uid,entryCSN,entryUUID eq
overlay syncprov
access to attrs=userPassword,ringmailScramSHA256 by dn.exact="cn=ringmail,dc=example,dc=org" write by self write by anonymous auth by * none
access to * by dn.exact="cn=ringmail,dc=example,dc=org" write by users read by anonymous auth
CONF
cat >"$ldap/init.ldif" <<LDIF
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: cn=ringmail,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: ringmail
userPassword: $(slappasswd -s service-pw)

dn: uid=bulk0,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
objectClass: ringmailAccount
uid: bulk0
cn: bulk0
sn: bulk0
mail: bulk0@example.org
mailHost: b1
userPassword: $(slappasswd -s "$PASSWORD")
LDIF
slapadd -f "$ldap/slapd.conf" -l "$ldap/init.ldif" 2>/dev/null
slapd -f "$ldap/slapd.conf" -h "ldap://127.0.0.1:$LDAP_PORT/" -d 0 >/dev/null 2>&1 &
SLAPD_PID=$!
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $LDAP_PORT), 1)" 2>/dev/null && break
    sleep 0.1
done
trap 'stop_process "$SLAPD_PID"; stop_process "${B1_PID:-}"; cleanup' EXIT

MOVE_B1=$(free_port)
MOVE_B2=$(free_port)
# [cluster] and [directory] after the last section start_server writes.
cluster() {
    cat <<CONF

[cluster]
name = "$1"
site = "$2"
proxy_secret = "$SECRET"
listen_move = ["127.0.0.1:$3"]
backends = [{ name = "b1", site = "east", move = "127.0.0.1:$MOVE_B1" }, { name = "b2", site = "west", move = "127.0.0.1:$MOVE_B2" }]

[directory]
ldap_url = "ldap://127.0.0.1:$LDAP_PORT"
ldap_base = "ou=people,dc=example,dc=org"
ldap_bind_dn = "cn=ringmail,dc=example,dc=org"
ldap_bind_password = "service-pw"
CONF
}

describe_run
SUBMISSION_EXTRA=$(cluster b1 east "$MOVE_B1") start_server b1
B1_CONFIG=$CONFIG B1_PID=$SERVER_PID B1_IMAP=$IMAP_PORT
"$BIN/loadtest" seed --host 127.0.0.1 --lmtp-port "$LMTP_PORT" --users bulk%d --user-count 1 \
    --messages "$MESSAGES" --size "$SIZE" --clients 4 >/dev/null
SERVER_PID=
SUBMISSION_EXTRA=$(cluster b2 west "$MOVE_B2") start_server b2
B2_CONFIG=$CONFIG B2_IMAPS=$IMAPS_PORT
echo "== $MESSAGES messages of $SIZE bytes in bulk0's INBOX on b1"

load
start=$(date +%s.%N)
"$BIN/ringmail" --config "$B1_CONFIG" move bulk0 --to b2 | tee "$WORK/move1.log"
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" 'BEGIN { printf "move b1 -> b2, whole: %.2f s\n", b - a }'
# "copy pass 1: N messages (B bytes) and C changes in T s"
grep 'copy pass 1:' "$WORK/move1.log" | sed 's/[(),]//g' | awk '{
    for (i = 1; i <= NF; i++) { if ($i == "messages") n = $(i-1); if ($i == "bytes") b = $(i-1); if ($i == "s") t = $(i-1) }
    printf "move     %7.2f s  %8.0f messages/s  %7.1f MiB/s  (first copy pass)\n", t, n / t, b / t / 1048576 }'

# The move back, with CHANGES flag changes (one STORE each, on b2 where the mailbox lives)
# made after the copy passes, before the lock.
signal=$WORK/changes-made
load
RINGMAIL_MOVE_WAIT_BEFORE_LOCK=$signal "$BIN/ringmail" --config "$B2_CONFIG" move bulk0 --to b1 >"$WORK/move2.log" &
MOVE_PID=$!
for _ in $(seq 6000); do
    grep -q '^waiting for' "$WORK/move2.log" && break
    sleep 0.1
done
python3 - "$B2_IMAPS" "$PASSWORD" "$CHANGES" <<'PY'
import imaplib, ssl, sys
port, password, changes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl._create_unverified_context())
m.login("bulk0", password)
m.select("INBOX")
for i in range(1, changes + 1):
    typ, _ = m.store(str(i), "+FLAGS", "\\Flagged")
    assert typ == "OK"
m.logout()
PY
touch "$signal"
wait "$MOVE_PID"
cat "$WORK/move2.log"
grep -q 'final pass: 0 messages (0 bytes) and '"$CHANGES"' changes' "$WORK/move2.log" ||
    echo "note: the final pass did not carry exactly $CHANGES changes (see above)"

# The reference: the same mailbox, exported to a Maildir, copied by doveadm backup.
"$BIN/ringmail" --config "$B1_CONFIG" export bulk0 --to "maildir:$WORK/export" >/dev/null
BYTES=$(find "$WORK/export/cur" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
stop_process "$B1_PID"
B1_PID=
"$BIN/ringmail" --config "$B1_CONFIG" fsck | tail -n 1
stop_process "$SLAPD_PID"
doveadm_backup bulk0 "$WORK/export"
awk -v s="$DOVEADM_SECONDS" -v n="$MESSAGES" -v b="$BYTES" \
    'BEGIN { printf "doveadm  %7.2f s  %8.0f messages/s  %7.1f MiB/s\n", s, n / s, b / s / 1048576 }'
