#!/usr/bin/env bash
# Builds the Debian package, installs it on this machine (as root) with apt-get, and checks it:
# files in place, the system user, the conffile, the unit verified and sandboxed
# (systemd-analyze), --version, and the installed binary serving against a private Prosody with
# the packaged example configuration (account and server filled in). Purges it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: it installs the package" >&2; exit 1; }
fail() { echo "package test FAILED: $*" >&2; exit 1; }
deb=$(scripts/package.sh | tail -n 1)
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q "./$deb" >/dev/null
for f in /usr/bin/pubsubgw /usr/share/man/man8/pubsubgw.8 /etc/pubsubgw/pubsubgw.conf \
    /usr/lib/systemd/system/pubsubgw.service /usr/share/doc/pubsubgw/LICENSE; do
    [ -e "$f" ] || fail "$f is missing"
done
getent passwd pubsubgw >/dev/null || fail "no pubsubgw user"
[ "$(stat -c %U:%a /var/lib/pubsubgw)" = pubsubgw:700 ] || fail "state directory"
[ "$(stat -c %G:%a /etc/pubsubgw/pubsubgw.conf)" = pubsubgw:640 ] || fail "conffile mode"
dpkg-query --control-show pubsubgw conffiles | grep -q /etc/pubsubgw/pubsubgw.conf ||
    fail "pubsubgw.conf is not a conffile"
/usr/bin/pubsubgw --version | grep -q '^pubsubgw ' || fail "--version"
man -w pubsubgw >/dev/null 2>&1 || [ -f /usr/share/man/man8/pubsubgw.8 ] || fail "man page"
systemd-analyze verify /usr/lib/systemd/system/pubsubgw.service || fail "systemd-analyze verify"
score=$(systemd-analyze security --offline=true /usr/lib/systemd/system/pubsubgw.service 2>&1 |
    sed -n 's/.*Overall exposure level for pubsubgw.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security: exposure $score"
awk -v s="$score" 'BEGIN { exit !(s != "" && s <= 2.0) }' || fail "exposure $score > 2.0"

# The installed binary, the packaged configuration with a real account, as the service user.
work=$(mktemp -d)
chmod 755 "$work"
port=$(scripts/prosody.sh start "$work/prosody")
sed -e 's/^jid = .*/jid = gw@localhost/' -e "s/^# xmpp-server = .*/xmpp-server = 127.0.0.1:$port/" \
    -e 's/^tls = required/tls = off/' -e 's/^listen = .*/listen = 127.0.0.1:18097/' \
    -e "s|^password-file = .*|password-file = $work/password|" -e "s|^data-dir = .*|data-dir = $work/data|" \
    /etc/pubsubgw/pubsubgw.conf >"$work/pubsubgw.conf"
echo gw >"$work/password"
mkdir -p "$work/data"
chown -R pubsubgw: "$work/data" "$work/password" "$work/pubsubgw.conf"
runuser -u pubsubgw -- /usr/bin/pubsubgw --config "$work/pubsubgw.conf" --check-config
runuser -u pubsubgw -- /usr/bin/pubsubgw --config "$work/pubsubgw.conf" >"$work/gw.log" 2>&1 &
gw=$!
ok=0
for _ in $(seq 1 100); do
    if curl -sf http://127.0.0.1:18097/v1/health | grep -q '"connected"'; then ok=1; break; fi
    sleep 0.1
done
kill -TERM "$gw" 2>/dev/null || true
wait "$gw" || true
scripts/prosody.sh stop "$work/prosody"
[ "$ok" = 1 ] || { cat "$work/gw.log" >&2; fail "the installed gateway did not connect"; }
rm -rf "$work"
apt-get purge -y -q pubsubgw >/dev/null
echo "package test passed: $deb"
