#!/usr/bin/env bash
# A second build of an unchanged app through image-builder's BuildKit frontend
# (`image-builder build --via frontend --force`) vs a cached BuildKit build of the
# generated Dockerfile (`image-builder build --force`), both of the example Next.js
# app on busybox stand-in base images, both with every step in BuildKit's cache.
# Goal (issue 9): ratio <= 1.2. Needs the Docker Engine (BuildKit) and Debian's
# busybox-static.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/bench/hash-common.bash"
IB=$(ib_binary)
WORK=$(mktemp -d)
BASE=ib-bench/node-standin:1
cleanup() {
    docker images --filter "reference=ib-bench-fe*" -q | xargs -r docker rmi -f --no-prune >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    # busybox with stand-ins for npm and node: the build does the app's real steps
    # (install, build, copy the standalone output) with no network.
    mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/usr/local/bin" "$WORK/rootfs/tmp"
    cp /bin/busybox "$WORK/rootfs/bin/busybox"
    for a in sh mkdir cp echo rm cat ls; do ln -s busybox "$WORK/rootfs/bin/$a"; done
    cat >"$WORK/rootfs/usr/local/bin/npm" <<'SH'
#!/bin/sh
case "$1" in
  ci|install) mkdir -p node_modules && echo "$*" > node_modules/.installed ;;
  run) mkdir -p .next/standalone .next/static && echo 'server' > .next/standalone/server.js && echo chunk > .next/static/c.js ;;
esac
SH
    chmod 755 "$WORK/rootfs/usr/local/bin/npm"
    tar -C "$WORK/rootfs" -cf - . | docker import --change "ENV PATH=/usr/local/bin:/bin" - "$BASE" >/dev/null
fi
APP="$WORK/app"
mkdir -p "$APP"
cp -r "$ROOT/examples/todo-app/frontend/." "$APP/"
export IMAGE_BUILDER_CACHE_DIR="$WORK/cache"
ARGS=(--base-image "builder=$BASE" --base-image "runtime=$BASE" --force)
ours() { "$IB" build --via frontend --project ib-bench-fe "${ARGS[@]}" "$APP"; }
peer() { "$IB" build --project ib-bench-fe-df "${ARGS[@]}" "$APP"; }
# First builds fill BuildKit's cache (and make the frontend image).
ours >/dev/null 2>&1
peer >/dev/null 2>&1
ours >/dev/null 2>&1
OURS=$(time_median 7 ours)
PEER=$(time_median 7 peer)
result frontend-cached "$OURS" "$PEER"
