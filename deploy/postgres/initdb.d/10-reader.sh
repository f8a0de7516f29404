#!/bin/bash
# First start of the database only: the account livedata serves with. It may connect and SELECT
# every table the owner (POSTGRES_USER, which `livedata sample load` uses) creates in public,
# including tables re-created by a later load, and nothing else.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v reader_password="$(< /run/secrets/postgres_reader_password)" <<'SQL'
CREATE ROLE livedata_reader LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE livedata TO livedata_reader;
GRANT USAGE ON SCHEMA public TO livedata_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO livedata_reader;
SQL
