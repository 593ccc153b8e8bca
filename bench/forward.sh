#!/usr/bin/env bash
# Availability through redeploys (issue 15): a client requesting every 20 ms
# through the forwarder (kubectl-todo's forward module) and one through
# `kubectl port-forward svc/web`, side by side against the same emulator
# (docker runtime, a busybox httpd as UID 1001), while the Deployment is
# redeployed BENCH_REDEPLOYS times (default 5). Prints the failed requests
# of each; the goal is ours=0.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BENCH_BIN:-$CARGO_TARGET_DIR/release}
# The example links kubectl-todo's dev-dependencies (the emulator among
# them): a first release build of all that takes many minutes with no
# output, which looked like a hang. Build only what is missing, and say so.
if [ ! -x "$BIN/kube-emulator" ] || [ ! -x "$BIN/examples/forward" ]; then
    echo "# building release binaries (minutes on a first run)" >&2
    (cd "$ROOT" && cargo build --release -q -p kube-emulator -p kubectl-todo --example forward) >&2
fi
REDEPLOYS=${BENCH_REDEPLOYS:-5}
IMAGE=kubectl-todo-bench/httpd:1
WORK=$(mktemp -d)
PIDS=""
cleanup() {
    for pid in $PIDS; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc" "$WORK/rootfs/tmp"
    chmod 1777 "$WORK/rootfs/tmp"
    cp /bin/busybox "$WORK/rootfs/bin/busybox"
    for applet in sh mkdir echo httpd; do ln -s busybox "$WORK/rootfs/bin/$applet"; done
    printf 'root:x:0:0::/:/bin/sh\napp:x:1001:1001::/tmp:/bin/sh\n' >"$WORK/rootfs/etc/passwd"
    tar -C "$WORK/rootfs" -cf - . | docker import - "$IMAGE" >/dev/null
fi

"$BIN/kube-emulator" --kubeconfig "$WORK/kubeconfig" --runtime docker --preload "$IMAGE" \
    >"$WORK/emulator.out" 2>"$WORK/emulator.err" &
PIDS="$!"
for _ in $(seq 100); do
    grep -q '^ready ' "$WORK/emulator.out" && break
    sleep 0.1
done
grep -q '^ready ' "$WORK/emulator.out" || { cat "$WORK/emulator.err" >&2; exit 1; }
export KUBECONFIG=$WORK/kubeconfig
k() { kubectl --cache-dir "$WORK/kube-cache" -n bench "$@"; }
kubectl --cache-dir "$WORK/kube-cache" create namespace bench >/dev/null
k apply -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      securityContext: {runAsNonRoot: true, runAsUser: 1001, runAsGroup: 1001}
      containers:
      - name: web
        image: $IMAGE
        imagePullPolicy: IfNotPresent
        env: [{name: VERSION, value: "0"}]
        command: ["sh", "-c", "mkdir -p /tmp/www && echo ok > /tmp/www/health && echo version \$VERSION > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
YAML
k rollout status deploy/web --timeout=90s >/dev/null

"$BIN/examples/forward" bench web 80 bench web >"$WORK/ours.out" 2>"$WORK/ours.err" &
PIDS="$! $PIDS"
k port-forward svc/web :80 >"$WORK/peer.out" 2>"$WORK/peer.err" &
PIDS="$! $PIDS"
for _ in $(seq 100); do
    grep -q '^forwarding ' "$WORK/ours.out" && grep -q '^Forwarding from 127.0.0.1:' "$WORK/peer.out" && break
    sleep 0.1
done
OURS_URL=$(sed -n 's/^forwarding //p' "$WORK/ours.out")
PEER_URL=http://127.0.0.1:$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$WORK/peer.out")
[ -n "$OURS_URL" ] && [ "$PEER_URL" != http://127.0.0.1: ] || { cat "$WORK"/*.err >&2; exit 1; }

# One line per request: the HTTP code, 000 when there was no response.
client() { # url file
    while [ ! -e "$WORK/stop" ]; do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 40 "$1" >>"$2" || true
        sleep 0.02
    done
}
client "$OURS_URL" "$WORK/ours.codes" &
PIDS="$! $PIDS"
client "$PEER_URL" "$WORK/peer.codes" &
PIDS="$! $PIDS"
START=$(date +%s.%N)
for i in $(seq "$REDEPLOYS"); do
    k set env deploy/web "VERSION=$i" >/dev/null
    k rollout status deploy/web --timeout=90s >/dev/null
    for _ in $(seq 300); do
        [ "$(k get pods -l app=web -o name | wc -l)" -eq 1 ] && break
        sleep 0.1
    done
    curl -s --max-time 40 "$OURS_URL" | grep -qx "version $i" || { echo "ours does not serve version $i" >&2; exit 1; }
done
touch "$WORK/stop"
sleep 0.5
END=$(date +%s.%N)
failed() { grep -cv '^200$' "$1" || true; }
OURS=$(failed "$WORK/ours.codes")
PEER=$(failed "$WORK/peer.codes")
printf 'RESULT forward-failed-requests ours=%s peer=%s redeploys=%s\n' "$OURS" "$PEER" "$REDEPLOYS"
printf 'INFO forward-requests ours=%s peer=%s seconds=%s\n' "$(wc -l <"$WORK/ours.codes")" "$(wc -l <"$WORK/peer.codes")" \
    "$(awk -v s="$START" -v e="$END" 'BEGIN {printf "%.1f", e - s}')"
[ "$OURS" -eq 0 ]
