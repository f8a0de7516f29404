#!/bin/sh
# The official image's defaults for the commands compose uses: `server` keeps its data in
# /data and makes volumes on demand; anything else goes to weed as given.
set -eu
case "${1:-}" in
    server) shift; exec /usr/bin/weed server -dir=/data -volume.max=0 "$@" ;;
    *) exec /usr/bin/weed "$@" ;;
esac
