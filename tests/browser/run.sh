#!/usr/bin/env bash
# Runs the console's browser test (console.test.mjs) with Debian's Chromium. puppeteer-core,
# pinned in package-lock.json, is installed from npm into TOOLS once; it downloads no browser.
#   run.sh TOOLS ARTIFACTS     (PUBSUBGW_BIN and PUBSUBGW_TEST_XMPP as for the integration tests)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=$1
artifacts=$2
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "Chromium is needed: apt-get install chromium (or set CHROMIUM)" >&2; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "Node.js and npm are needed: apt-get install nodejs npm" >&2; exit 1; }
if [ ! -f "$tools/node_modules/puppeteer-core/package.json" ] ||
    ! cmp -s "$here/package-lock.json" "$tools/package-lock.json"; then
    mkdir -p "$tools"
    cp "$here/package.json" "$here/package-lock.json" "$tools/"
    (cd "$tools" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
fi
rm -rf "$artifacts"
export BROWSER_TOOLS=$tools ARTIFACTS=$artifacts CHROMIUM=$chromium
exec node "$here/console.test.mjs"
