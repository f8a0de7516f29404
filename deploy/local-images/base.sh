#!/usr/bin/env bash
# Build the local stand-in for docker.io/library/debian:bookworm-slim: debootstrap (minbase) from
# Debian's own mirror, trimmed as the official slim image is, then `podman import`. Every other
# local image (the Python base and the services' stand-ins) starts FROM this one.
# Usage: base.sh  (skips the work when the tag already exists)
set -euo pipefail
# shellcheck source=podman-env.sh
source "$(dirname "$0")/podman-env.sh"
tag=docker.io/library/debian:bookworm-slim
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if podman image exists "$tag"; then echo "base: $tag exists"; exit 0; fi
command -v debootstrap >/dev/null || { echo "base: needs debootstrap (apt-get install -y debootstrap)" >&2; exit 1; }

root=$(mktemp -d "$LIVEDATA_PODMAN_DIR/tmp/rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
# The official slim image leaves out documentation and translations; so does this one.
mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
cat > "$root/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
cat > "$root/etc/apt/sources.list" <<LIST
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
# apt in a container: no recommends, no caches kept (as the official image configures it).
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$root/etc/apt/apt.conf.d/docker-no-recommends"
# debootstrap unpacks its first packages before dpkg reads the excludes: trim what they left.
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
rm -rf "$root"/usr/share/{man,info,lintian}/* "$root"/usr/share/locale/*/ \
       "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/log/*.log "$root"/tmp/*
tar -C "$root" --numeric-owner -c . | podman import --quiet --change 'CMD ["bash"]' - "$tag" >/dev/null
echo "base: $tag built ($(podman image inspect --format '{{.Size}}' "$tag") bytes)"
