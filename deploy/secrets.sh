#!/usr/bin/env bash
# Make the stack's secrets in deploy/secrets (once; delete the folder to make new ones):
#   postgres_password, postgres_reader_password   random, for the owner and the reader account
#   s3_identities.json, s3_credentials            one random S3 key pair: SeaweedFS's identities
#                                                 file, and the same pair as an AWS credentials file
#   access.toml, demo.key                         an API key for every query and table, made with
#                                                 the image's own `livedata keys new`
# The folder is 0700; the files 0644, since each container reads its secrets as its own user.
# Usage: secrets.sh ENGINE IMAGE   (ENGINE: podman or docker)
set -euo pipefail
engine=${1:?engine}; image=${2:?image}
dir=$(cd "$(dirname "$0")" && pwd)/secrets
# shellcheck source=local-images/podman-env.sh
if [[ $engine == podman ]]; then source "$(dirname "$0")/local-images/podman-env.sh"; fi
if [[ -s $dir/access.toml ]]; then echo "secrets: $dir exists"; exit 0; fi
mkdir -p "$dir" && chmod 0700 "$dir"
random() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }
random 24 > "$dir/postgres_password"
random 24 > "$dir/postgres_reader_password"
access_key=$(python3 -c "import secrets; print('LD' + secrets.token_hex(9).upper())")
secret_key=$(random 30)
printf '{"identities": [{"name": "livedata", "credentials": [{"accessKey": "%s", "secretKey": "%s"}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}\n' \
    "$access_key" "$secret_key" > "$dir/s3_identities.json"
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$access_key" "$secret_key" \
    > "$dir/s3_credentials"
"$engine" run --rm --network none --no-healthcheck "$image" keys new demo -q '*' -t '*' \
    > "$dir/access.toml" 2> "$dir/demo.key"
chmod 0644 "$dir"/*
echo "secrets: made in $dir (API key: the last line of demo.key)"
