#!/usr/bin/env bash
# Lints openapi/openapi.json with two tools we did not write: Redocly CLI (its recommended
# rules) and Spectral (spectral:oas). Both must report no error. The tools come from npm, pinned,
# into build/oas-tools (installed once).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null || { echo "npm is needed (apt-get install npm)" >&2; exit 1; }
tools=build/oas-tools
if [ ! -x "$tools/node_modules/.bin/spectral" ] || [ ! -x "$tools/node_modules/.bin/redocly" ]; then
    mkdir -p "$tools"
    (cd "$tools" && npm install --no-audit --no-fund --silent \
        @redocly/cli@2.77.0 @stoplight/spectral-cli@6.16.3 >/dev/null)
fi
printf 'extends: ["spectral:oas"]\n' >"$tools/.spectral.yaml"
echo "== redocly lint"
"$tools/node_modules/.bin/redocly" lint openapi/openapi.json --format stylish 2>&1 |
    grep -v -e '^ *║' -e '^ *╔' -e '^ *╚' -e '^$' || true
"$tools/node_modules/.bin/redocly" lint openapi/openapi.json >/dev/null 2>&1
echo "== spectral lint (spectral:oas)"
"$tools/node_modules/.bin/spectral" lint --ruleset "$tools/.spectral.yaml" --fail-severity error \
    openapi/openapi.json
