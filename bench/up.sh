#!/usr/bin/env bash
# `up` with nothing changed (issue 4): no build, no load, no write, against
# `kubectl apply --server-side -f` of the same rendered manifests on the same
# scripted emulator (kubectl's discovery cache warm). Goal: ratio <= 1.0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
if [ ! -x "$BIN/kubectl-todo" ] || [ ! -x "$BIN/kube-emulator" ]; then
    (cd "$ROOT" && cargo build --release -q -p kubectl-todo -p kube-emulator) >&2
fi
source "$ROOT/bench/hash-common.bash"
WORK=$(mktemp -d)
EMULATOR=""
BASE=kubectl-todo-bench/busybox:up
cleanup() {
    docker images -q --filter 'reference=benchup-*' | xargs -r docker rmi -f >/dev/null 2>&1 || true
    docker rmi "$BASE" >/dev/null 2>&1 || true
    if [ -n "$EMULATOR" ]; then
        kill "$EMULATOR" 2>/dev/null || true
        wait "$EMULATOR" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A base image from Debian's busybox-static (nothing can be pulled here).
mkdir -p "$WORK/rootfs/bin"
cp /bin/busybox "$WORK/rootfs/bin/busybox"
tar -C "$WORK/rootfs" -c . | docker import - "$BASE" >/dev/null

"$BIN/kube-emulator" --kubeconfig "$WORK/kubeconfig" --runtime scripted \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMULATOR=$!
for _ in $(seq 100); do
    grep -q '^ready ' "$WORK/emulator.out" && break
    sleep 0.1
done
grep -q '^ready ' "$WORK/emulator.out" || { cat "$WORK/emulator.err" >&2; exit 1; }
k() { kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kube-cache" "$@"; }
k config rename-context emulator minikube >/dev/null

# A stand-in `minikube image load` that puts images on the emulator's node.
mkdir -p "$WORK/bin"
cat >"$WORK/bin/minikube" <<SH
#!/usr/bin/env bash
[ "\$1 \$2" = "image load" ] && exec "$BIN/kube-emulator" load --kubeconfig "$WORK/kubeconfig" "\$3"
exit 0
SH
chmod +x "$WORK/bin/minikube"
export PATH="$WORK/bin:$PATH"

mkdir -p "$WORK/app"
cat >"$WORK/app/todo.yaml" <<'YAML'
name: benchup
namespace: todo
secret:
  keys:
    - name: API_KEY
components:
  - {name: frontend, port: 3000, healthPath: /, readyPath: /, service: {type: NodePort, nodePort: 30000}}
  - {name: backend, port: 8000, healthPath: /health, readyPath: /health, secretKeys: [API_KEY]}
YAML
for c in frontend backend; do
    mkdir -p "$WORK/app/$c/www"
    echo "$c" >"$WORK/app/$c/www/index.html"
    printf 'FROM %s\nCOPY www /www\nUSER 1001:1001\nCMD ["busybox", "httpd", "-f", "-h", "/www"]\n' "$BASE" >"$WORK/app/$c/Dockerfile"
done
export IMAGE_BUILDER_CACHE_DIR="$WORK/hash-cache"
todo() { "$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/app" "$@"; }

k create namespace todo >/dev/null
k -n todo create secret generic benchup-secrets --from-literal=API_KEY=bench-key >/dev/null
todo up --timeout 2m >/dev/null 2>"$WORK/up.err" || { cat "$WORK/up.err" >&2; exit 1; }
todo render >"$WORK/manifests.yaml"

ours() { todo up >/dev/null 2>&1; }
peer() { k apply --server-side -f "$WORK/manifests.yaml" >/dev/null; }
peer
todo up 2>"$WORK/noop.err" >/dev/null
grep -q 'nothing changed' "$WORK/noop.err" || { echo "# up did work on an unchanged app:" >&2; cat "$WORK/noop.err" >&2; exit 1; }
PEER=$(time_median 9 peer)
OURS=$(time_median 9 ours)
printf 'RESULT up-unchanged ours=%s peer=%s ratio=%s\n' "$OURS" "$PEER" "$(awk -v o="$OURS" -v p="$PEER" 'BEGIN {printf "%.4f", o / p}')"
