# Shared by bench/up.sh, bench/up-many.sh and bench/dev.sh (sourced; not a
# benchmark itself). Set BENCH_PROJECT (the app's name: its images are
# BENCH_PROJECT-*) first, and BENCH_RUNTIME (default scripted) for the
# emulator's runtime. Processes the script starts and adds to PIDS are
# stopped on exit.
# Leaves: BIN (the binaries: BENCH_BIN, else release ones, built if missing),
# WORK (removed on exit), BASE (a busybox image), an emulator
# answering at $WORK/kubeconfig as context `minikube`, `k` (its kubectl), and
# a stand-in `minikube image load` on PATH that puts images on its node.

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BENCH_BIN:-$CARGO_TARGET_DIR/release}
if [ ! -x "$BIN/kubectl-todo" ] || [ ! -x "$BIN/kube-emulator" ] || [ ! -x "$BIN/image-builder" ]; then
    echo "# building release binaries (minutes on a first run)" >&2
    (cd "$ROOT" && cargo build --release -q -p kubectl-todo -p kube-emulator -p image-builder) >&2
fi
WORK=$(mktemp -d)
PIDS=""
BASE=kubectl-todo-bench/busybox:$BENCH_PROJECT
cleanup() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    docker images -q --filter "reference=$BENCH_PROJECT-*" | xargs -r docker rmi -f >/dev/null 2>&1 || true
    docker rmi "$BASE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# A base image from Debian's busybox-static (nothing can be pulled here).
mkdir -p "$WORK/rootfs/bin"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
tar -C "$WORK/rootfs" -c . | docker import - "$BASE" >/dev/null

"$BIN/kube-emulator" --kubeconfig "$WORK/kubeconfig" --runtime "${BENCH_RUNTIME:-scripted}" \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
PIDS="$!"
for _ in $(seq 100); do
    grep -q '^ready ' "$WORK/emulator.out" && break
    sleep 0.1
done
grep -q '^ready ' "$WORK/emulator.out" || { cat "$WORK/emulator.err" >&2; exit 1; }
k() { kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kube-cache" "$@"; }
k config rename-context emulator minikube >/dev/null

mkdir -p "$WORK/bin"
cat >"$WORK/bin/minikube" <<SH
#!/usr/bin/env bash
[ "\$1 \$2" = "image load" ] && exec "$BIN/kube-emulator" load --kubeconfig "$WORK/kubeconfig" "\$3"
exit 0
SH
chmod +x "$WORK/bin/minikube"
export PATH="$WORK/bin:$PATH"
export IMAGE_BUILDER_CACHE_DIR="$WORK/hash-cache"
