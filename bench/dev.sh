#!/usr/bin/env bash
# Edit-to-serving (issue 15): one source file of a component changes, and
# the time until the new version answers. Ours: a running `kubectl todo dev`
# session, answering through its own forwarded port. Peer, in the same run,
# the same steps by hand: `image-builder build --load minikube`,
# `kubectl todo up`, then `kubectl port-forward` and requests until the new
# version answers. Each arm has its own copy of the app (its own namespace)
# on the same emulator, and the arms take turns edit by edit, so a machine
# that slows down as images and containers pile up weighs on both alike.
# Median of BENCH_ROUNDS (default 9) edits each; goal: ratio <= 1.0. Then
# the session's idle cost over BENCH_IDLE seconds (default 60): CPU (goal
# < 1% of a core) and resident memory, first and last. BENCH_BIN runs other
# binaries than release ones (e.g. target/debug).
set -euo pipefail
BENCH_PROJECT=benchdev
BENCH_RUNTIME=docker
source "$(dirname "$0")/up-common.bash"
ROUNDS=${BENCH_ROUNDS:-9}
IDLE=${BENCH_IDLE:-60}

# app DIR NAME NAMESPACE: one busybox httpd component and its Secret.
app() {
    mkdir -p "$1/api/www"
    cat >"$1/todo.yaml" <<YAML
name: $2
namespace: $3
secret:
  keys:
    - name: API_KEY
components:
  - {name: api, port: 8080, healthPath: /health, readyPath: /health, secretKeys: [API_KEY]}
YAML
    echo ok >"$1/api/www/health"
    echo v0 >"$1/api/www/index.html"
    printf 'FROM %s\nCOPY www /www\nUSER 1001:1001\nCMD ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n' "$BASE" >"$1/api/Dockerfile"
    k create namespace "$3" >/dev/null
    k -n "$3" create secret generic "$2-secrets" --from-literal=API_KEY=bench-key >/dev/null
    "$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$1" up --timeout 2m >/dev/null 2>"$WORK/up.err" ||
        { cat "$WORK/up.err" >&2; exit 1; }
}
app "$WORK/app" benchdev todo
app "$WORK/devapp" benchdev-dev tododev
todo() { "$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/app" "$@"; }

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
# An engine may finish an image only on a whole second (this machine's, on
# fuse-overlayfs, does: every build, BuildKit or classic, ends 0-20 ms past
# one), so how long a build takes depends on when in the second it starts.
# Each round draws a point in the second, and both arms make their edit at
# that point: their builds meet the same boundary, and what the session
# does later (it starts its build once the files have settled) costs what
# it costs. A loop that edited as soon as the last turn ended would make
# every edit of an arm at nearly the same point instead.
at_phase() { # MS: sleeps until MS milliseconds past a whole second
    local ms=$(($(date +%s%N) / 1000000 % 1000))
    sleep "$(printf '0.%03d' $((($1 - ms + 1000) % 1000)))"
}

# Ours: one session on its copy, with the debounce users get (the default).
# Its status lines get the time they arrive, to tell where a turn's time goes.
: >"$WORK/dev.err"
"$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/devapp" dev --no-logs \
    >/dev/null 2> >(while IFS= read -r line; do printf '%s %s\n' "$(now)" "$line"; done >"$WORK/dev.err") &
DEV=$!
PIDS="$DEV $PIDS"
for _ in $(seq 1200); do
    grep -q ' api: http://' "$WORK/dev.err" && break
    sleep 0.1
done
URL=$(sed -n 's/^[0-9.]* api: \(http:[^ ]*\) .*/\1/p' "$WORK/dev.err" | head -1)
[ -n "$URL" ] || { cat "$WORK/dev.err" >&2; exit 1; }

# By hand: build and load, up (which waits for the rollout), forward, ask.
hand() { # round phase
    at_phase "$2"
    echo "hand $1" >"$WORK/app/api/www/index.html"
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
    answers "http://127.0.0.1:$PORT/" "hand $1"
    elapsed "$START" >>"$WORK/peer.times"
    printf 'image=%s up=%s\n' "$BUILT" "$UP" >>"$WORK/peer.steps"
    kill "$PF" 2>/dev/null || true
    wait "$PF" 2>/dev/null || true
}

# Ours: the edit, then requests through the session's forward.
ours() { # round phase
    before=$(wc -l <"$WORK/dev.err")
    at_phase "$2"
    echo "dev $1" >"$WORK/devapp/api/www/index.html"
    START=$(now)
    answers "$URL/" "dev $1" || {
        echo "# the session's output:" >&2
        cat "$WORK/dev.err" >&2
        echo "# the pods:" >&2
        k -n tododev get pods -o wide >&2 || true
        exit 1
    }
    elapsed "$START" >>"$WORK/ours.times"
    # The next edit starts once this turn has ended.
    for _ in $(seq 600); do
        tail -n +"$((before + 1))" "$WORK/dev.err" | grep -q ' is running' && break
        sleep 0.05
    done
    # Seconds from the edit to the turn's first line (the build's lines are
    # held until the quiet period ends, though it started a third of the
    # way in), to the image (built; loaded), to the apply, to the rollout's end.
    tail -n +"$((before + 1))" "$WORK/dev.err" | awk -v s="$START" '
        / building / && !b {b = $1 - s}
        / api: image built/ && !i {i = $1 - s}
        / api: image benchdev/ && !l {l = $1 - s}
        / applied revision / && !a {a = $1 - s}
        / is running / && !r {r = $1 - s}
        END {printf "turn=%.2f built=%.2f loaded=%.2f applied=%.2f running=%.2f\n", b, i, l, a, r}' >>"$WORK/steps"
}

: >"$WORK/peer.err"
: >"$WORK/peer.times"
: >"$WORK/peer.steps"
: >"$WORK/ours.times"
: >"$WORK/steps"
for i in $(seq "$ROUNDS"); do
    phase=$((RANDOM % 1000))
    hand "$i" "$phase"
    ours "$i" "$phase"
done
OURS=$(median <"$WORK/ours.times")
PEER=$(median <"$WORK/peer.times")
printf 'RESULT dev-edit-to-serving ours=%s peer=%s ratio=%s\n' "$OURS" "$PEER" "$(awk -v o="$OURS" -v p="$PEER" 'BEGIN {printf "%.4f", o / p}')"
paste -d' ' "$WORK/ours.times" "$WORK/steps" | while read -r served steps; do
    printf 'INFO dev-edit-steps %s served=%s\n' "$steps" "$served"
done
paste -d' ' "$WORK/peer.times" "$WORK/peer.steps" | while read -r served steps; do
    printf 'INFO by-hand-steps %s served=%s\n' "$steps" "$served"
done

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
