#!/usr/bin/env bash
# Doctor speed (issue 7): a full `kubectl todo doctor` (environment, cluster,
# app: tools, Docker Engine, content-hash plans, RBAC reviews, every list)
# on a healthy scripted emulator, against
# `kubectl get pods,deployments,services,events -n todo` on the same API.
# Goal: ratio <= 1.5.
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
TAGGED=""
cleanup() {
    for image in $TAGGED; do
        docker rmi "$image" >/dev/null 2>&1 || true
    done
    if [ -n "$EMULATOR" ]; then
        kill "$EMULATOR" 2>/dev/null || true
        wait "$EMULATOR" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/kube-emulator" --kubeconfig "$WORK/kubeconfig" --runtime scripted \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMULATOR=$!
for _ in $(seq 100); do
    grep -q '^ready ' "$WORK/emulator.out" && break
    sleep 0.1
done
grep -q '^ready ' "$WORK/emulator.out" || { cat "$WORK/emulator.err" >&2; exit 1; }

cp -r "$ROOT/examples/todo-app" "$WORK/app"
export IMAGE_BUILDER_CACHE_DIR="$WORK/hash-cache"
k() { kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kube-cache" "$@"; }
doctor() { "$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/app" doctor "$@"; }

# The images doctor expects (the content-hash tags of the sources), on the node.
# (doctor fails here: nothing is deployed yet)
IMAGES=$({ doctor --only app -o json || true; } | python3 -c '
import json, re, sys
for c in json.load(sys.stdin)["checks"]:
    if c["id"] == "app.image-node":
        print(re.search(r"todo-\w+:[0-9a-f]{16}", c["message"]).group(0))')
FRONTEND=$(echo "$IMAGES" | grep '^todo-frontend:')
BACKEND=$(echo "$IMAGES" | grep '^todo-backend:')
# Any local image stands in for the built ones, so the app is healthy end to end.
BASE=$(docker images -q 2>/dev/null | head -1 || true)
if [ -n "$BASE" ]; then
    docker tag "$BASE" "$FRONTEND" && docker tag "$BASE" "$BACKEND" && TAGGED="$FRONTEND $BACKEND"
fi
"$BIN/kube-emulator" load --kubeconfig "$WORK/kubeconfig" "$FRONTEND" "$BACKEND" >/dev/null

labels() { # component
    printf '{"app.kubernetes.io/name":"%s","app.kubernetes.io/instance":"todo","app.kubernetes.io/component":"%s","app.kubernetes.io/part-of":"todo","app.kubernetes.io/managed-by":"kubectl-todo"}' "$1" "$1"
}
app() { # component image port service-type
    cat <<EOF
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"todo-$1","namespace":"todo","labels":$(labels "$1")},
 "spec":{"replicas":1,"selector":{"matchLabels":{"app.kubernetes.io/instance":"todo","app.kubernetes.io/component":"$1"}},
  "template":{"metadata":{"labels":$(labels "$1")},"spec":{"containers":[{"name":"$1","image":"$2","imagePullPolicy":"IfNotPresent","ports":[{"name":"http","containerPort":$3}]}]}}}}
{"apiVersion":"v1","kind":"Service","metadata":{"name":"todo-$1","namespace":"todo","labels":$(labels "$1")},
 "spec":{"type":"$4","selector":{"app.kubernetes.io/instance":"todo","app.kubernetes.io/component":"$1"},"ports":[{"name":"http","port":$3,"targetPort":$3}]}}
EOF
}
k create namespace todo >/dev/null
k -n todo create secret generic todo-secrets --from-literal=DATABASE_URL=postgresql://u:p@db/todo \
    --from-literal=BETTER_AUTH_SECRET=bench-auth-secret --from-literal=OPENAI_API_KEY=sk-bench >/dev/null
{ app frontend "$FRONTEND" 3000 ClusterIP; app backend "$BACKEND" 8000 ClusterIP; } | k apply -f - >/dev/null
k -n todo rollout status deployment/todo-frontend deployment/todo-backend --timeout=30s >/dev/null 2>&1 || true

peer() { k get pods,deployments,services,events -n todo; }
ours() { doctor; }
peer >/dev/null
if ! ours >"$WORK/doctor.out"; then
    echo "# doctor did not find the app healthy:" >&2
    grep -E '✗|\?' "$WORK/doctor.out" >&2 || true
fi
PEER=$(time_median 7 peer)
OURS=$(time_median 7 ours)
printf 'RESULT doctor ours=%s peer=%s ratio=%s\n' "$OURS" "$PEER" "$(awk -v o="$OURS" -v p="$PEER" 'BEGIN {printf "%.4f", o / p}')"
