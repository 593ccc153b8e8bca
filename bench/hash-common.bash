# Shared by bench/hash.sh and bench/build.sh (sourced; not a benchmark itself).
# Makes a build context of $BENCH_FILES files totalling about $BENCH_MB megabytes.

BENCH_FILES=${BENCH_FILES:-20000}
BENCH_MB=${BENCH_MB:-500}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

ib_binary() {
    if [ -z "${IMAGE_BUILDER:-}" ]; then
        (cd "$ROOT" && cargo build --release -q -p image-builder) >&2
        IMAGE_BUILDER="$CARGO_TARGET_DIR/release/image-builder"
    fi
    echo "$IMAGE_BUILDER"
}

make_context() { # DIR
    python3 - "$1" "$BENCH_FILES" "$BENCH_MB" <<'PY'
import os, random, sys
root, n, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
random.seed(42)
avg = mb * 1_000_000 // max(n, 1)
os.makedirs(root, exist_ok=True)
block = os.urandom(4 << 20)
for i in range(n):
    d = os.path.join(root, f"d{i // 100:03d}")
    os.makedirs(d, exist_ok=True)
    size = random.randint(avg // 2, avg * 3 // 2)
    off = random.randint(0, len(block) - size - 1) if size < len(block) else 0
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(i.to_bytes(8, "little") + block[off:off + size])
with open(os.path.join(root, "Dockerfile"), "w") as f:
    f.write("FROM ib-bench/busybox:1\nCOPY . /ctx\nUSER 1001:1001\n")
PY
}

now() { date +%s.%N; }

# median wall time in seconds of running "$@" N times
time_median() { # N cmd...
    local n=$1; shift
    local ts=()
    for _ in $(seq "$n"); do
        local a b
        a=$(now); "$@" >/dev/null 2>&1; b=$(now)
        ts+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f", b - a}')")
    done
    printf '%s\n' "${ts[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.4f\n", a[int((NR+1)/2)]}'
}

result() { # name ours peer
    local ratio speedup
    ratio=$(awk -v o="$2" -v p="$3" 'BEGIN {printf "%.4f", o / p}')
    speedup=$(awk -v o="$2" -v p="$3" 'BEGIN {printf "%.1f", p / o}')
    printf 'RESULT %s ours=%s peer=%s ratio=%s\n' "$1" "$2" "$3" "$ratio"
    printf '  (%s: image-builder is %sx faster)\n' "$1" "$speedup" >&2
}
