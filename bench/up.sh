#!/usr/bin/env bash
# `up` with nothing changed (issue 4): no build, no load, no write, against
# `kubectl apply --server-side -f` of the same rendered manifests on the same
# scripted emulator (kubectl's discovery cache warm). Goal: ratio <= 1.0.
set -euo pipefail
BENCH_PROJECT=benchup
source "$(dirname "$0")/up-common.bash"
source "$ROOT/bench/hash-common.bash"

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
