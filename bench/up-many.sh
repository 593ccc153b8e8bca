#!/usr/bin/env bash
# `up` of an app with BENCH_COMPONENTS components (default 20) on the scripted
# emulator (issue 17's load test): the first `up` (20 builds in parallel,
# loads, apply, rollout wait), `up` after one component's source changed, and
# `up` with nothing changed; wall time and the plugin's peak resident set of
# each. A load figure, not a race: it prints INFO lines, and fails when a run
# fails or does not converge (every Deployment ready, one revision per run).
# BENCH_BIN runs other binaries than release ones (e.g. target/debug).
set -euo pipefail
BENCH_PROJECT=benchmany
source "$(dirname "$0")/up-common.bash"
N=${BENCH_COMPONENTS:-20}

mkdir -p "$WORK/app"
{
    printf 'name: benchmany\nnamespace: todo\nsecret:\n  keys:\n    - name: API_KEY\ncomponents:\n'
    for i in $(seq "$N"); do
        printf '  - {name: c%02d, port: 8080, healthPath: /, readyPath: /, secretKeys: [API_KEY]}\n' "$i"
    done
} >"$WORK/app/todo.yaml"
for i in $(seq "$N"); do
    c=$(printf 'c%02d' "$i")
    mkdir -p "$WORK/app/$c/www"
    echo "$c v1" >"$WORK/app/$c/www/index.html"
    printf 'FROM %s\nCOPY www /www\nUSER 1001:1001\nCMD ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n' "$BASE" >"$WORK/app/$c/Dockerfile"
done
k create namespace todo >/dev/null
k -n todo create secret generic benchmany-secrets --from-literal=API_KEY=bench-key >/dev/null

# One `up`: wall seconds and peak RSS (kB), or the run's stderr and a failure.
measure() { # label
    local a b
    a=$(date +%s.%N)
    if ! /usr/bin/time -f '%M' -o "$WORK/$1.rss" \
        "$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/app" up --timeout 5m \
        >"$WORK/$1.out" 2>"$WORK/$1.err"; then
        echo "# up ($1) failed:" >&2
        cat "$WORK/$1.err" >&2
        exit 1
    fi
    b=$(date +%s.%N)
    printf '%s_s=%s %s_rss_kb=%s' "$1" "$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", b - a}')" "$1" "$(cat "$WORK/$1.rss")"
}
ready() {
    k -n todo get deployments -o jsonpath='{range .items[*]}{.status.readyReplicas}{"\n"}{end}' | grep -c '^1$'
}

FIRST=$(measure first)
echo "c01 v2" >"$WORK/app/c01/www/index.html"
ONE=$(measure one_changed)
NOOP=$(measure unchanged)
grep -q 'nothing changed' "$WORK/unchanged.err" || { echo "# up did work on an unchanged app:" >&2; cat "$WORK/unchanged.err" >&2; exit 1; }
READY=$(ready)
REVISIONS=$("$BIN/kubectl-todo" --kubeconfig "$WORK/kubeconfig" --project "$WORK/app" history -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(",".join(r["outcome"] for r in (d if isinstance(d, list) else d["revisions"])))')
[ "$READY" -eq "$N" ] || { echo "# only $READY of $N Deployments are ready" >&2; exit 1; }
[ "$REVISIONS" = "applied,applied" ] || { echo "# revisions: $REVISIONS (expected applied,applied)" >&2; exit 1; }
printf 'INFO up-many components=%s %s %s %s ready=%s revisions=%s\n' "$N" "$FIRST" "$ONE" "$NOOP" "$READY" "$REVISIONS"
