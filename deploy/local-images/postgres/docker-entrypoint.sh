#!/bin/bash
# First start: initdb, the password and database from the environment, then the init scripts,
# on a server reachable only through its socket; every start: postgres on all addresses of the
# container. Runs as root only to hand PGDATA to postgres, then drops to it.
set -euo pipefail
if [[ ${1:-} != postgres ]]; then exec "$@"; fi
if [[ $(id -u) == 0 ]]; then
    mkdir -p "$PGDATA" && chown -R postgres:postgres "$PGDATA" && chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [[ -n ${POSTGRES_PASSWORD_FILE:-} ]]; then POSTGRES_PASSWORD=$(< "$POSTGRES_PASSWORD_FILE"); fi
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
if [[ ! -s $PGDATA/PG_VERSION ]]; then
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
    printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    psql=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname postgres)
    if [[ $POSTGRES_DB != postgres ]]; then "${psql[@]}" -qc "CREATE DATABASE \"$POSTGRES_DB\""; fi
    export POSTGRES_USER POSTGRES_DB
    for f in /docker-entrypoint-initdb.d/*; do
        case $f in
            *.sh) if [[ -x $f ]]; then "$f"; else . "$f"; fi ;;
            *.sql) "${psql[@]}" --dbname "$POSTGRES_DB" -f "$f" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres: database $POSTGRES_DB initialised"
fi
exec postgres -c listen_addresses='*' "${@:2}"
