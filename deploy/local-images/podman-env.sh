# shellcheck shell=bash
# Source me: podman and buildah keep everything (images, containers, volumes, networks, state)
# under one scratch folder, never in the system store, and use the runtime settings that work
# on our machines (runc, cgroupfs, lowered ulimits: crun fails on these cgroups).
# LIVEDATA_PODMAN_DIR picks the folder (default: deploy/.podman in this checkout);
# `make podman-clean` removes it.
_deploy_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export LIVEDATA_PODMAN_DIR=${LIVEDATA_PODMAN_DIR:-$_deploy_dir/.podman}
mkdir -p "$LIVEDATA_PODMAN_DIR"/{storage,run,networks,tmp}
cat > "$LIVEDATA_PODMAN_DIR/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$LIVEDATA_PODMAN_DIR/storage"
runroot = "$LIVEDATA_PODMAN_DIR/run/storage"
CONF
cat > "$LIVEDATA_PODMAN_DIR/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=20000:20000"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$LIVEDATA_PODMAN_DIR/run/events.log"
tmp_dir = "$LIVEDATA_PODMAN_DIR/run/libpod"
volume_path = "$LIVEDATA_PODMAN_DIR/storage/volumes"

[network]
network_backend = "netavark"
network_config_dir = "$LIVEDATA_PODMAN_DIR/networks"
CONF
# Images are named in full (docker.io/library/...); nothing is ever searched for or pulled.
cat > "$LIVEDATA_PODMAN_DIR/registries.conf" <<CONF
unqualified-search-registries = []
short-name-mode = "enforcing"
CONF
export CONTAINERS_STORAGE_CONF=$LIVEDATA_PODMAN_DIR/storage.conf
export CONTAINERS_CONF=$LIVEDATA_PODMAN_DIR/containers.conf
export CONTAINERS_REGISTRIES_CONF=$LIVEDATA_PODMAN_DIR/registries.conf
export TMPDIR=$LIVEDATA_PODMAN_DIR/tmp
unset _deploy_dir
