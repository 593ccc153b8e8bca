#!/usr/bin/env bash
# Hash speed: `image-builder hash` of a 20,000-file, 500 MB context, warm (hash cache
# filled) and cold (no cache), against `tar -cf - DIR | sha256sum` in the same run.
# Smaller: BENCH_FILES=2000 BENCH_MB=50 bench/hash.sh
# Goals (issue 3): warm >= 25x faster, cold >= 4x faster (ratio <= 0.04 / 0.25).
set -euo pipefail
source "$(dirname "$0")/hash-common.bash"
IB=$(ib_binary)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CTX="$WORK/ctx"
make_context "$CTX"
export IMAGE_BUILDER_CACHE_DIR="$WORK/cache"
# make sure file data is in the page cache for both sides
tar -cf - -C "$WORK" ctx | sha256sum >/dev/null

peer() { tar -cf - -C "$WORK" ctx | sha256sum; }
cold() { "$IB" hash --builder classic --no-cache "$CTX"; }
warm() { "$IB" hash --builder classic "$CTX"; }

PEER=$(time_median 3 peer)
COLD=$(time_median 3 cold)
warm >/dev/null; sleep 0.3; warm >/dev/null   # fill the cache, then let racy entries settle
WARM=$(time_median 5 warm)
result hash-cold "$COLD" "$PEER"
result hash-warm "$WARM" "$PEER"
