#!/bin/sh
# The man page documents every option the binary knows (pubsubgw --help lists them all).
# usage: manpage.sh PUBSUBGW_BINARY MANPAGE
bin=$1 page=$2
missing=0
n=0
for opt in $("$bin" --help | grep -o -- '^  --[a-z-]*' | tr -d ' '); do
    n=$((n + 1))
    esc=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
    if ! grep -q "^\.B $esc\( \|$\)" "$page"; then
        echo "not in $page: $opt (docs/gen-manpage.py BINARY regenerates the options)"
        missing=$((missing + 1))
    fi
done
echo "$n options, $missing missing from the man page"
[ "$n" -gt 40 ] && [ "$missing" -eq 0 ]
