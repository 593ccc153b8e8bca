#!/usr/bin/env bash
# `image-builder build` with unchanged inputs vs `docker build` of the same
# Dockerfile with a fully warm layer cache, on the 20,000-file, 500 MB context.
# Smaller: BENCH_FILES=2000 BENCH_MB=50 bench/build.sh
# Goal (issue 3): >= 50x faster (ratio <= 0.02). Needs the Docker Engine and
# Debian's busybox-static (the base image is made locally with `docker import`).
set -euo pipefail
source "$(dirname "$0")/hash-common.bash"
IB=$(ib_binary)
WORK=$(mktemp -d)
TAG="ib-bench/ctx-$$"
cleanup() {
    docker rmi -f "$TAG" >/dev/null 2>&1 || true
    docker images --filter "reference=ib-bench-ctx*" -q | xargs -r docker rmi -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
if ! docker image inspect ib-bench/busybox:1 >/dev/null 2>&1; then
    mkdir -p "$WORK/rootfs/bin"
    cp /bin/busybox "$WORK/rootfs/bin/busybox"
    ln -s busybox "$WORK/rootfs/bin/sh"
    tar -C "$WORK/rootfs" -cf - . | docker import - ib-bench/busybox:1 >/dev/null
fi
CTX="$WORK/ctx"
make_context "$CTX"
export IMAGE_BUILDER_CACHE_DIR="$WORK/cache"
ours() { "$IB" build --builder classic --project ib-bench "$CTX" -o json; }
peer() { DOCKER_BUILDKIT=0 docker build -q -t "$TAG" "$CTX"; }
ours >/dev/null 2>&1          # first build
peer >/dev/null 2>&1          # warm docker's layer cache
sleep 0.3; ours >/dev/null 2>&1
OURS=$(time_median 5 ours)
PEER=$(time_median 3 peer)
result build-unchanged "$OURS" "$PEER"
