#!/usr/bin/env bash
# The package as published: build the wheel, install it WITHOUT extras in a fresh venv, and
# run what a new user runs first (issue 11): `livedata --help`, `livedata catalog check`,
# `livedata serve` answering the README's curl, and a command that needs an extra saying which
# (exit 2). Run from anywhere; CI runs it after `make test`. Needs python3 and curl.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
server=""
cleanup() {
    if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "check_published: $*" >&2; exit 1; }

python3 -m venv "$scratch/build"
"$scratch/build/bin/pip" wheel -q --disable-pip-version-check --no-deps --wheel-dir "$scratch/dist" "$repo"
python3 -m venv "$scratch/venv"
"$scratch/venv/bin/pip" install -q --no-compile -c "$repo/constraints.txt" "$scratch"/dist/livedata-*.whl
bin=$scratch/venv/bin
cd "$scratch"  # nothing of the source tree on the path
export LIVEDATA_CACHE_DIR=$scratch/cache
unset LIVEDATA_TEST_DATABASE  # the test suite's variable; a user has none

"$bin/livedata" --help >/dev/null || fail "livedata --help failed"
"$bin/livedata" catalog check | grep -q "catalog ok" || fail "livedata catalog check failed"

set +e
"$bin/livedata" bench formats --quick >/dev/null 2>"$scratch/bench.err"
code=$?
set -e
[[ $code == 2 ]] || fail "livedata bench formats without its extra: exit $code, not 2"
grep -q "pip install 'livedata\[bench\]'" "$scratch/bench.err" \
    || fail "livedata bench formats does not name its extra: $(cat "$scratch/bench.err")"

port=$("$bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
mkfifo "$scratch/log"
"$bin/livedata" serve --port "$port" 2>"$scratch/log" &
server=$!
# Readiness: uvicorn's own line, read as it is written (at most 60 s).
timeout 60 grep -q -m1 "Uvicorn running on" <"$scratch/log" || fail "livedata serve did not start"
cat "$scratch/log" >/dev/null &  # keep draining the server's log
answer=$(curl -sf -X POST -H "Content-Type: application/json" -d '{"table": "world_country_list"}' "localhost:$port/query") \
    || fail "the README curl got no answer"
rows=$(printf '%s' "$answer" | "$bin/python" -c "import json, sys; print(len(json.load(sys.stdin)['rows']))")
[[ $rows == 249 ]] || fail "the README curl answered $rows rows, not 249"
# The pages and every asset they name come from the wheel's package data (issue 14).
for page in / /docs; do
    html=$(curl -sf "localhost:$port$page") || fail "$page did not answer"
    assets=$(printf '%s' "$html" | grep -o '/static/[A-Za-z0-9._-]*' | sort -u)
    [[ -n $assets ]] || fail "$page names no asset of its own"
    for asset in $assets; do
        curl -sf -o /dev/null "localhost:$port$asset" || fail "$asset (named by $page) did not answer"
    done
done
echo "check_published: the wheel without extras: --help, catalog check, bench's extra named, serve + curl (249 rows), pages and their assets: ok"
