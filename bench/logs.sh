#!/usr/bin/env bash
# Logs throughput (issue 6): 10 scripted pods printing 10,000 lines each, read by
# `kubectl todo logs --tail=-1` and by `kubectl logs -l … --prefix
# --max-log-requests=10 --tail=-1` against the same emulator; both must deliver
# exactly 100,000 lines. Goal: ratio <= 1.0.
# Follow memory: resident set of `kubectl todo logs -f` following 50 pods (100
# lines/s each), sampled at the start and after BENCH_FOLLOW_SECS (default 20).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release
if [ ! -x "$BIN/kubectl-todo" ] || [ ! -x "$BIN/kube-emulator" ]; then
    (cd "$ROOT" && cargo build --release -q -p kubectl-todo -p kube-emulator) >&2
fi
FOLLOW_SECS=${BENCH_FOLLOW_SECS:-20}
WORK=$(mktemp -d)
EMULATOR=""
FOLLOWER=""
cleanup() {
    for pid in $FOLLOWER $EMULATOR; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/kube-emulator" --kubeconfig "$WORK/kubeconfig" --runtime scripted --preload logs-bench:1 \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
EMULATOR=$!
for _ in $(seq 100); do
    grep -q '^ready ' "$WORK/emulator.out" && break
    sleep 0.1
done
grep -q '^ready ' "$WORK/emulator.out" || { cat "$WORK/emulator.err" >&2; exit 1; }

k() { kubectl --kubeconfig "$WORK/kubeconfig" --cache-dir "$WORK/kube-cache" "$@"; }
ours() { "$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK" logs "$@"; }
selector() { echo "app.kubernetes.io/instance=todo,app.kubernetes.io/component=$1"; }

# A Deployment labelled as kubectl-todo labels a component of project `todo`.
deploy() { # component replicas lines interval-ms
    k apply -n todo -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
spec:
  replicas: $2
  selector:
    matchLabels: &labels
      app.kubernetes.io/name: $1
      app.kubernetes.io/instance: todo
      app.kubernetes.io/component: $1
      app.kubernetes.io/part-of: todo
      app.kubernetes.io/managed-by: kubectl-todo
  template:
    metadata:
      labels: *labels
      annotations:
        kube-emulator.dev/log-lines: "$3"
        kube-emulator.dev/log-interval-ms: "$4"
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: logs-bench:1
YAML
}

wait_running() { # component count
    for _ in $(seq 300); do
        local n
        n=$(k get pods -n todo -l "$(selector "$1")" --field-selector=status.phase=Running -o name | wc -l)
        [ "$n" -eq "$2" ] && return 0
        sleep 0.1
    done
    echo "pods of $1 never all ran" >&2
    exit 1
}

now() { date +%s.%N; }
time_median() { # N cmd...
    local n=$1; shift
    local ts=()
    for _ in $(seq "$n"); do
        local a b
        a=$(now); "$@" >/dev/null; b=$(now)
        ts+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.4f", b - a}')")
    done
    printf '%s\n' "${ts[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.4f\n", a[int((NR+1)/2)]}'
}

k create namespace todo >/dev/null
deploy backend 10 10000 0
wait_running backend 10

ours_read() { ours backend --tail=-1; }
peer_read() { k logs -n todo -l "$(selector backend)" --prefix --max-log-requests=10 --tail=-1; }
OURS_LINES=$(ours_read | wc -l)
PEER_LINES=$(peer_read | wc -l)
if [ "$OURS_LINES" -ne 100000 ] || [ "$OURS_LINES" -ne "$PEER_LINES" ]; then
    echo "line counts differ: ours=$OURS_LINES peer=$PEER_LINES (expected 100000)" >&2
    exit 1
fi
OURS=$(time_median 5 ours_read)
PEER=$(time_median 5 peer_read)
printf 'RESULT logs-throughput ours=%s peer=%s ratio=%s\n' "$OURS" "$PEER" \
    "$(awk -v o="$OURS" -v p="$PEER" 'BEGIN {printf "%.4f", o / p}')"
echo "  (logs-throughput: $OURS_LINES lines each)" >&2

deploy frontend 50 100000000 10
wait_running frontend 50
# Started directly (not through a function) so that $! is the plugin's own pid.
"$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK" logs frontend -f >"$WORK/follow.out" &
FOLLOWER=$!
rss() { awk '/^VmRSS/ {print $2}' "/proc/$FOLLOWER/status"; }
sleep 3
START=$(rss)
sleep "$FOLLOW_SECS"
END=$(rss)
LINES=$(wc -l <"$WORK/follow.out")
kill -INT "$FOLLOWER"
STATUS=0
wait "$FOLLOWER" || STATUS=$?
FOLLOWER=""
if [ "$STATUS" -ne 0 ]; then
    echo "kubectl todo logs -f exited with $STATUS after Ctrl-C" >&2
    exit 1
fi
printf 'INFO logs-follow-rss pods=50 start_kb=%s end_kb=%s after_s=%s lines=%s\n' "$START" "$END" "$FOLLOW_SECS" "$LINES"
