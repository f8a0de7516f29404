#!/usr/bin/env bash
# The compose stack under podman (deploy/compose.yaml), on 127.0.0.1:
#   stack.sh up      start it (project `livedata`, port LIVEDATA_STACK_PORT or 8080), leave it up
#   stack.sh down    stop it and remove its containers, volumes and network
#   stack.sh test    start a throw-away copy on a free port, smoke-test it through nginx, tear
#                    it down whatever happened (make stack-test)
#
# podman 4.3 (Debian 12) neither runs healthchecks by itself (it needs systemd's timers) nor
# lets podman-compose wait on `condition: service_healthy`. So `up` starts the services in the
# compose file's dependency order, phase by phase, and runs each container's own healthcheck
# (`podman healthcheck run`) until it passes before the next phase: the order and the checks a
# Docker engine applies to the same file.
set -euo pipefail
deploy=$(cd "$(dirname "$0")" && pwd)
cd "$deploy"
# shellcheck source=local-images/podman-env.sh
source local-images/podman-env.sh
action=${1:?usage: stack.sh up|down|test}
if [[ $action == test ]]; then
    project=${LIVEDATA_STACK_PROJECT:-livedata-stack-test}
    port=${LIVEDATA_STACK_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
else
    project=${LIVEDATA_STACK_PROJECT:-livedata}
    port=${LIVEDATA_STACK_PORT:-8080}
fi
export LIVEDATA_STACK_PORT=$port
compose=("$deploy/.tools/bin/podman-compose" -f compose.yaml -p "$project")
base=http://127.0.0.1:$port
started=$SECONDS
log=$(mktemp "$LIVEDATA_PODMAN_DIR/tmp/stack.XXXXXX.log")

say() { printf '[stack %3ds] %s\n' $((SECONDS - started)) "$*"; }
fail() { say "FAILED: $*"; exit 1; }
container() {  # container SERVICE: the container podman-compose made for it
    podman ps -a --format '{{.Names}}' --filter "label=com.docker.compose.project=$project" \
        --filter "label=com.docker.compose.service=$1"
}
start() { "${compose[@]}" up -d --no-deps "$@" >>"$log" 2>&1 || { tail -20 "$log"; fail "up $*"; }; }
healthy() {  # healthy SECONDS SERVICE...: each service's own healthcheck passes
    local deadline=$((SECONDS + $1)) service; shift
    for service in "$@"; do
        until podman healthcheck run "$(container "$service")" >/dev/null 2>&1; do
            ((SECONDS < deadline)) || { podman logs --tail 20 "$(container "$service")"; fail "$service not healthy"; }
            sleep 1
        done
    done
    say "healthy: $*"
}
completed() {  # completed SERVICE...: each one-shot service exited 0
    local service code
    for service in "$@"; do
        code=$(podman wait "$(container "$service")")
        [[ $code == 0 ]] || { podman logs "$(container "$service")"; fail "$service exited $code"; }
    done
    say "completed: $*"
}

up() {
    say "project $project on $base"
    start postgres redis seaweedfs
    healthy 90 postgres redis seaweedfs
    start sample-load s3-bucket
    completed sample-load s3-bucket
    start livedata-1 livedata-2 livedata-3
    healthy 90 livedata-1 livedata-2 livedata-3
    start nginx
    healthy 30 nginx
    say "up: $base (API key: the last line of deploy/secrets/demo.key)"
}

down() {
    "${compose[@]}" down -v >>"$log" 2>&1 || true
    # podman-compose leaves its (empty) pod, and the images' anonymous volumes, behind.
    podman pod rm -f "pod_$project" >/dev/null 2>&1 || true
    podman volume prune -f >/dev/null
    left=$(podman ps -a -q --filter "label=com.docker.compose.project=$project" | wc -l)
    volumes=$(podman volume ls -q --filter "label=com.docker.compose.project=$project" | wc -l)
    say "down: $left container(s), $volumes volume(s) left"
    ((left + volumes == 0))
}

post() {  # post BODY [CURL ARGS...]: POST /query through nginx; headers in $headers, body in $body
    local data=$1; shift
    headers=$(mktemp) body=$(mktemp)
    status=$(curl -sS -o "$body" -D "$headers" -w '%{http_code}' -X POST "$base/query" \
        -H "Content-Type: application/json" -H "Authorization: Bearer $key" "$@" -d "$data")
}
rows() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["meta"]["rows"])' "$body"; }

smoke() {
    key=$(tail -1 secrets/demo.key)
    # 1. The README curl: the whole sample table, with the stack's API key; without it, 401.
    post '{"table": "world_country_list"}'
    [[ $status == 200 && $(rows) == 249 ]] || fail "README curl: $status, $(head -c 300 "$body")"
    say "README curl: 200, 249 rows"
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/query" \
        -H "Content-Type: application/json" -d '{"table": "world_country_list"}')
    [[ $code == 401 ]] || fail "without a key: $code, expected 401"
    say "without a key: 401"

    # 2. A named query, from PostgreSQL.
    query='{"query": "countries_by_region", "params": {"region": "Europe", "min_population": 60000000}}'
    post "$query"
    [[ $status == 200 && $(rows) == 5 ]] || fail "named query: $status, $(head -c 300 "$body")"
    grep -q '"RUS","Russian Federation"' "$body" || fail "named query: $(head -c 300 "$body")"
    say "named query: 200, 5 rows, Russia first"

    # 3. A cached hit. The first request's replica uploads its entry to the shared tier after
    #    answering, so another replica may still miss once before the object is there.
    local hit='' attempt cache_status=''
    for attempt in 1 2 3 4 5 6; do
        post "$query"
        cache_status=$(grep -i '^cache-status:' "$headers" | tr -d '\r')
        if [[ $cache_status == *'; hit'* ]]; then hit=$attempt; break; fi
    done
    [[ -n $hit ]] || fail "no cache hit in 6 requests (last: $cache_status)"
    say "cached hit on request $hit: $cache_status"

    # The shared parts at work: counts and the shared tier's pointers in Redis, objects in the
    # bucket.
    keys=$(podman exec "$(container redis)" redis-cli --scan | wc -l)
    ((keys > 0)) || fail "no key in Redis: LIVEDATA_REDIS_URL unused?"
    pointers=$(podman exec "$(container redis)" redis-cli --scan --pattern 'livedata:latest:*' | wc -l)
    ((pointers > 0)) || fail "no shared-tier pointer in Redis: LIVEDATA_CACHE_SHARED_URL unused?"
    say "Redis holds $keys key(s), $pointers of them naming entries in the shared tier"

    # 4. Stop a replica while it is answering: it drains (the request in flight gets its 200),
    #    and the stack goes on serving from the other two. The prober shares the replica's
    #    network namespace (it talks to 127.0.0.1 in there); podman allows that only inside the
    #    replica's pod, which podman-compose makes per project.
    local victim probe prober
    victim=$(container livedata-2)
    probe=$(mktemp)
    podman run --rm --pod "$(podman container inspect --format '{{.Pod}}' "$victim")" \
        --network "container:$victim" --no-healthcheck -v "$deploy/slow_request.py:/slow_request.py:ro" \
        --entrypoint python "${LIVEDATA_IMAGE:-localhost/livedata:latest}" /slow_request.py \
        127.0.0.1 5000 3 "Bearer $key" >"$probe" 2>&1 &
    prober=$!
    until grep -q 'sent half' "$probe"; do
        kill -0 "$prober" 2>/dev/null || fail "prober: $(cat "$probe")"
        sleep 0.1
    done
    podman stop -t 30 "$victim" >/dev/null
    wait "$prober" || true
    grep -q 'status 200 rows 29' "$probe" || fail "in-flight request during stop: $(cat "$probe")"
    say "livedata-2 stopped (SIGTERM) mid-request: that request still answered 200"
    for attempt in 1 2 3 4 5 6; do
        post "$query"
        [[ $status == 200 ]] || fail "with livedata-2 stopped, request $attempt: $status"
    done
    say "with livedata-2 stopped: 6 of 6 requests answered 200"
}

case $action in
    up) up ;;
    down) down ;;
    test)
        trap 'code=$?; down || code=1; if ((code == 0)); then say "passed in $((SECONDS - started)) s"; else say "FAILED; log: $log"; fi; exit $code' EXIT
        up
        smoke
        ;;
    *) fail "usage: stack.sh up|down|test" ;;
esac
