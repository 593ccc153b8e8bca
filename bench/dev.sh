#!/usr/bin/env bash
# Edit-to-serving (issue 15): one source file of a component changes, and
# the time until the new version answers. Ours: a running `kubectl todo dev`
# session, answering through its own forwarded port. Peer, in the same run,
# the same steps by hand: `image-builder build --load minikube`,
# `kubectl todo up`, then `kubectl port-forward` and requests until the new
# version answers. Median of BENCH_ROUNDS (default 3) edits each; goal:
# ratio <= 1.0. Then the session's idle cost over BENCH_IDLE seconds
# (default 60): CPU (goal < 1% of a core) and resident memory, first and
# last. BENCH_BIN runs other binaries than release ones (e.g. target/debug).
set -euo pipefail
BENCH_PROJECT=benchdev
BENCH_RUNTIME=docker
source "$(dirname "$0")/up-common.bash"
ROUNDS=${BENCH_ROUNDS:-3}
IDLE=${BENCH_IDLE:-60}

mkdir -p "$WORK/app/api/www"
cat >"$WORK/app/todo.yaml" <<'YAML'
name: benchdev
namespace: todo
secret:
  keys:
    - name: API_KEY
components:
  - {name: api, port: 8080, healthPath: /health, readyPath: /health, secretKeys: [API_KEY]}
YAML
echo ok >"$WORK/app/api/www/health"
echo v0 >"$WORK/app/api/www/index.html"
printf 'FROM %s\nCOPY www /www\nUSER 1001:1001\nCMD ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n' "$BASE" >"$WORK/app/api/Dockerfile"
todo() { "$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/app" "$@"; }
k create namespace todo >/dev/null
k -n todo create secret generic benchdev-secrets --from-literal=API_KEY=bench-key >/dev/null
todo up --timeout 2m >/dev/null 2>"$WORK/up.err" || { cat "$WORK/up.err" >&2; exit 1; }

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN {printf "%.3f\n", e - s}'; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
answers() { # url body: polls until the body answers, 180 s at most
    for _ in $(seq 3600); do
        [ "$(curl -s --max-time 5 "$1" || true)" = "$2" ] && return 0
        sleep 0.05
    done
    echo "# $1 never answered $2" >&2
    return 1
}

# By hand: build and load, up (which waits for the rollout), forward, ask.
: >"$WORK/peer.times"
: >"$WORK/peer.steps"
for i in $(seq "$ROUNDS"); do
    echo "hand $i" >"$WORK/app/api/www/index.html"
    START=$(now)
    "$BIN/image-builder" build "$WORK/app/api" --project benchdev --port 8080 --load minikube >/dev/null 2>>"$WORK/peer.err"
    BUILT=$(elapsed "$START")
    todo up --timeout 2m >/dev/null 2>>"$WORK/peer.err"
    UP=$(elapsed "$START")
    k -n todo port-forward svc/benchdev-api :8080 >"$WORK/pf.out" 2>>"$WORK/peer.err" &
    PF=$!
    for _ in $(seq 1200); do
        grep -q '^Forwarding from 127.0.0.1:' "$WORK/pf.out" && break
        sleep 0.05
    done
    PORT=$(sed -n 's/^Forwarding from 127.0.0.1:\([0-9]*\) .*/\1/p' "$WORK/pf.out")
    [ -n "$PORT" ] || { echo "# kubectl port-forward did not start:" >&2; cat "$WORK/peer.err" >&2; exit 1; }
    answers "http://127.0.0.1:$PORT/" "hand $i"
    elapsed "$START" >>"$WORK/peer.times"
    printf 'image=%s up=%s\n' "$BUILT" "$UP" >>"$WORK/peer.steps"
    kill "$PF" 2>/dev/null || true
    wait "$PF" 2>/dev/null || true
done

# Ours: one session, with the debounce users get (the default); each edit is
# served through its forward. Its status lines get the time they arrive, to
# tell where a turn's time goes.
: >"$WORK/dev.err"
"$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/app" dev --no-logs \
    >/dev/null 2> >(while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$WORK/dev.err") &
DEV=$!
PIDS="$DEV $PIDS"
for _ in $(seq 1200); do
    grep -q ' api: http://' "$WORK/dev.err" && break
    sleep 0.1
done
URL=$(sed -n 's/^[0-9.]* api: \(http:[^ ]*\) .*/\1/p' "$WORK/dev.err" | head -1)
[ -n "$URL" ] || { cat "$WORK/dev.err" >&2; exit 1; }
: >"$WORK/ours.times"
: >"$WORK/steps"
for i in $(seq "$ROUNDS"); do
    before=$(wc -l <"$WORK/dev.err")
    echo "dev $i" >"$WORK/app/api/www/index.html"
    START=$(now)
    answers "$URL/" "dev $i" || {
        echo "# the session's output:" >&2
        cat "$WORK/dev.err" >&2
        echo "# the pods:" >&2
        k -n todo get pods -o wide >&2 || true
        exit 1
    }
    elapsed "$START" >>"$WORK/ours.times"
    # The next edit starts once this turn has ended.
    for _ in $(seq 600); do
        tail -n +"$((before + 1))" "$WORK/dev.err" | grep -q ' is running' && break
        sleep 0.05
    done
    # Seconds from the edit to the turn's first line (watch + debounce +
    # plan), to the image (build + load), to the apply, to the rollout's end.
    tail -n +"$((before + 1))" "$WORK/dev.err" | awk -v s="$START" '
        / building / && !b {b = $1 - s}
        / api: image / && !i {i = $1 - s}
        / applied revision / && !a {a = $1 - s}
        / is running / && !r {r = $1 - s}
        END {printf "started=%.2f image=%.2f applied=%.2f running=%.2f\n", b, i, a, r}' >>"$WORK/steps"
done
OURS=$(median <"$WORK/ours.times")
PEER=$(median <"$WORK/peer.times")
printf 'RESULT dev-edit-to-serving ours=%s peer=%s ratio=%s\n' "$OURS" "$PEER" "$(awk -v o="$OURS" -v p="$PEER" 'BEGIN {printf "%.4f", o / p}')"
while read -r steps; do printf 'INFO dev-edit-steps %s\n' "$steps"; done <"$WORK/steps"
while read -r steps; do printf 'INFO by-hand-steps %s\n' "$steps"; done <"$WORK/peer.steps"

# Idle: nothing changes for $IDLE seconds.
ticks() { awk '{print $14 + $15}' "/proc/$DEV/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DEV/status"; }
T0=$(ticks); R0=$(rss); S0=$(now)
sleep "$IDLE"
T1=$(ticks); R1=$(rss)
HZ=$(getconf CLK_TCK)
printf 'INFO dev-idle cpu=%s%% seconds=%s rss_kb_start=%s rss_kb_end=%s\n' \
    "$(awk -v a="$T0" -v b="$T1" -v hz="$HZ" -v s="$(elapsed "$S0")" 'BEGIN {printf "%.2f", 100 * (b - a) / hz / s}')" \
    "$IDLE" "$R0" "$R1"
kill -INT "$DEV"
wait "$DEV"
