#!/usr/bin/env bash
# Python recipes on a real base (Debian bookworm's Python 3.11, made with
# mmdebstrap like the tests' base) with FastAPI and uvicorn from PyPI:
#  - python-size: the FastAPI example's image vs a naive single-stage
#    `COPY . . && pip install -r requirements.txt` of it on the same base
#    (figures in MB; goal: ours <= peer and ours <= base + 18 MB);
#  - python-rebuild-<kind>: one .py file changed, `image-builder build` vs a
#    build of the code layer alone (COPY of the code onto the base) with the
#    engine's cache warm (goal: ratio <= 1.3), for requirements, uv and
#    pyproject projects; the two arms alternate, PY_REBUILD_RUNS (5) times each.
# Needs the Docker Engine, mmdebstrap, and Debian's mirror and PyPI.
set -euo pipefail
source "$(dirname "$0")/hash-common.bash"
IB=$(ib_binary)
WORK=$(mktemp -d)
BASE=ib-bench/debian-python:3.11-slim
NAIVE="ib-bench/python-naive:$$"
cleanup() {
    docker rmi -f "$NAIVE" >/dev/null 2>&1 || true
    docker images --filter "reference=ib-bench-py*" -q | xargs -r docker rmi -f >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    # The host's CA bundle: PyPI may be reached through a TLS-intercepting proxy.
    mmdebstrap --quiet --variant=minbase \
        --include=python3,python3-venv,python3-pip,ca-certificates \
        --customize-hook='for n in python python3; do ln -sf /usr/bin/python3 "$1/usr/local/bin/$n"; done; ln -sf /usr/bin/pip3 "$1/usr/local/bin/pip"' \
        --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
        --customize-hook='cat > "$1/etc/ssl/certs/ca-certificates.crt" < /etc/ssl/certs/ca-certificates.crt' \
        bookworm - |
        docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' - "$BASE" >/dev/null
fi
export IMAGE_BUILDER_CACHE_DIR="$WORK/cache"
ours() { # DIR
    "$IB" build "$1" --project ib-bench-py -o json \
        --base-image "builder=$BASE" --base-image "runtime=$BASE"
}
mb() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1000000}'; }
size() { docker image inspect -f '{{.Size}}' "$1"; }

# Size
cp -r "$ROOT/examples/todo-app/backend" "$WORK/backend"
IMAGE=$(ours "$WORK/backend" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["image"])')
cat > "$WORK/naive.Dockerfile" <<DF
FROM $BASE
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -r requirements.txt
CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
DF
DOCKER_BUILDKIT=0 docker build -q -f "$WORK/naive.Dockerfile" -t "$NAIVE" "$WORK/backend" >/dev/null
B=$(size "$BASE"); O=$(size "$IMAGE"); P=$(size "$NAIVE")
printf 'RESULT python-size ours=%s peer=%s ratio=%s\n' "$(mb "$O")" "$(mb "$P")" \
    "$(awk -v o="$O" -v p="$P" 'BEGIN {printf "%.4f", o / p}')"
printf 'INFO python-size base_mb=%s ours_added_mb=%s naive_added_mb=%s ours_bytes=%s naive_bytes=%s\n' \
    "$(mb "$B")" "$(mb $((O - B)))" "$(mb $((P - B)))" "$O" "$P"

# Rebuild after one .py change
FIX="$ROOT/image-builder/tests/fixtures"
mkdir -p "$WORK/req" "$WORK/uv" "$WORK/pyproject"
cp -r "$WORK/backend" "$WORK/req/backend"
cp -r "$FIX/py-uv-flat" "$WORK/uv/backend"
cp -r "$FIX/py-uv-flat" "$WORK/pyproject/backend" && rm "$WORK/pyproject/backend/uv.lock"
N=0
touch_py() { # DIR
    N=$((N + 1))
    local f
    f=$(cd "$1" && ls main.py app/main.py 2>/dev/null | head -1)
    echo "# change $N $$" >> "$1/$f"
}
# The code layer alone: the same app as an own-Dockerfile component that only
# copies the code onto the base, built the same way (BuildKit through the API).
code_only() { # DIR
    "$IB" build "$1" --project ib-bench-py -o json
}
for kind in req uv pyproject; do
    dir="$WORK/$kind/backend"
    code="$WORK/$kind-code/backend"
    mkdir -p "$(dirname "$code")" && cp -r "$dir" "$code"
    printf 'FROM %s\nWORKDIR /app\nCOPY . .\nUSER 1001:1001\n' "$BASE" > "$code/Dockerfile"
    ours "$dir" >/dev/null 2>&1 # first build: the dependency layer
    code_only "$code" >/dev/null 2>&1
    rebuild() { touch_py "$dir"; ours "$dir"; }
    codeonly() { touch_py "$code"; code_only "$code"; }
    # Alternated, so that a change in the machine's load hits both arms alike.
    o=(); p=()
    for _ in $(seq "${PY_REBUILD_RUNS:-5}"); do
        o+=("$(time_median 1 rebuild)")
        p+=("$(time_median 1 codeonly)")
    done
    median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {printf "%.4f\n", a[int((NR+1)/2)]}'; }
    OURS=$(median "${o[@]}")
    PEER=$(median "${p[@]}")
    printf 'RESULT python-rebuild-%s ours=%s peer=%s ratio=%s\n' "$kind" "$OURS" "$PEER" \
        "$(awk -v o="$OURS" -v p="$PEER" 'BEGIN {printf "%.4f", o / p}')"
done
