#!/usr/bin/env bash
# make image: build the livedata image from ./Containerfile, tagged localhost/livedata:VERSION and
# :latest, and print its size.
#   ENGINE=podman (default): podman's store in the scratch folder (local-images/podman-env.sh);
#     with LOCAL_BASE=1 (default) the Python base is the local stand-in, built first when missing,
#     since no image can be pulled here.
#   ENGINE=docker, or LOCAL_BASE=0: the real base image, pulled as usual; same Containerfile.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
engine=${ENGINE:-podman}
image=${IMAGE:-localhost/livedata}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml")
started=$SECONDS
args=()
if [[ $engine == podman ]]; then
    # shellcheck source=local-images/podman-env.sh
    source "$root/deploy/local-images/podman-env.sh"
    args+=(--format docker)  # keeps HEALTHCHECK, which the OCI format has no field for
    if [[ ${LOCAL_BASE:-1} == 1 ]]; then
        "$root/deploy/local-images/build.sh" python
        args+=(--pull=never)
    fi
fi
"$engine" build "${args[@]}" -t "$image:$version" -t "$image:latest" -f "$root/Containerfile" "$root"
size=$("$engine" image inspect --format '{{.Size}}' "$image:latest")
echo "image: $image:$version, $((size / 1000000)) MB, built in $((SECONDS - started)) s"
