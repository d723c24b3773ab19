#!/usr/bin/env bash
# Load benchmark of issue 12 (a FastAPI application ports whole), every server in the same run:
#
#   bench/guide/run.sh       # needs wrk and ../shared/peers/axum-bare (see its setup.sh)
#
# Two comparisons:
#   POST /invoices/  examples/invoices (no app-level dependency, no layer: what an app that
#                    uses none of the new features pays) vs ../shared/peers/axum-bare
#   POST /users/     the guide route with the app-wide dependency (X-Tenant checked), CORS and
#                    gzip (bench/src/bin/guide-route.rs --mode full) vs the same route alone
#                    (--mode plain); both get the same request (Origin, X-Tenant, gzip accepted)
# Everything runs inside a network namespace with only loopback (unshare -n). Bounded: every
# wrk run has a duration and a timeout; every wait has a cap; only the PIDs started here are
# stopped. Release builds. Rounds alternate the order of the servers.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS="${PEERS:-$ROOT/../shared/peers}"
PEERS_TARGET=${PEERS_TARGET:-/tmp/peers-target}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-18091}
SERVERS=${SERVERS:-"axum-invoices roundtrip-invoices guide-plain guide-full"}
OUT=${OUT:-$ROOT/target/bench-guide}
BIN=${BIN:-$ROOT/target/release}   # where the roundtrip binaries are (a copy, to compare builds)

if [ "${INSIDE_NETNS:-}" != 1 ]; then
    command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
    [ -x "$PEERS_TARGET/release/axum-bare" ] || (cd "$PEERS/axum-bare" && CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release --locked -q)
    [ -n "${NO_BUILD:-}" ] || (cd "$ROOT" && cargo build --release -q -p example-invoices && cargo build --release -q -p roundtrip-bench --bin guide-route)
    mkdir -p "$OUT"
    exec unshare -n env INSIDE_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

BASE="http://127.0.0.1:$PORT"
RES="$OUT/results.tsv"; : > "$RES"
. "$ROOT/bench/wrk.sh"
trap stop_server EXIT

start_server() {
    case "$1" in
        # `exec`: the PID the script keeps is the server's own, so stopping it stops the server.
        axum-invoices) exec "$PEERS_TARGET/release/axum-bare" "$PORT" ;;
        roundtrip-invoices)
            rm -f "$OUT"/invoices.db*
            exec "$BIN/example-invoices" serve --port "$PORT" \
                --database-url "sqlite://$OUT/invoices.db" ;;
        roundtrip-invoices-before)  # another build of the same app (BEFORE_BIN), to compare builds in one run
            rm -f "$OUT"/invoices.db*
            exec "${BEFORE_BIN:?BEFORE_BIN names the other build}/example-invoices" serve --port "$PORT" \
                --database-url "sqlite://$OUT/invoices.db" ;;
        guide-plain) exec "$BIN/guide-route" --mode plain --port "$PORT" ;;
        guide-full) exec "$BIN/guide-route" --mode full --port "$PORT" ;;
        *) echo "unknown server $1" >&2; exit 1 ;;
    esac >"$OUT/$1.log" 2>&1 &
    SPID=$!
    wait_ready "$1"
}

endpoint() { case "$1" in *invoices|*invoices-before) echo /invoices/ ;; *) echo /users/ ;; esac; }
script() { case "$1" in *invoices|*invoices-before) echo "$PEERS/wrk/post.lua" ;; *) echo "$HERE/users.lua" ;; esac; }

check_server() {  # correctness before load: a valid request succeeds, an invalid one is refused
    local s=$1 path=$2 ok bad
    if [ "$path" = /invoices/ ]; then
        ok=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
            -d '{"id":"inv-0001","title":"Consulting","customer":"ACME Corp","total":1234.5}' "$BASE$path")
        bad=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
            -d '{"id":"inv-0001","customer":"ACME Corp","total":"lots"}' "$BASE$path")
    else
        local body='{"username":"ada","password":"hunter2","email":"ada@example.com"}' answer
        answer=$(curl -s -D "$OUT/headers" -H 'Content-Type: application/json' \
            -H 'Origin: https://app.example.com' -H 'X-Tenant: acme' -d "$body" "$BASE$path")
        ok=$(sed -n '1s/^HTTP[^ ]* \([0-9]*\).*/\1/p' "$OUT/headers")
        [ "$answer" = '{"username":"ada","email":"ada@example.com"}' ] || { echo "$s: $answer" >&2; exit 1; }
        if [ "$s" = guide-full ]; then
            grep -qi '^access-control-allow-origin: https://app.example.com' "$OUT/headers" \
                || { echo "$s: no CORS header" >&2; exit 1; }
            bad=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
                -H 'X-Tenant: NOT VALID' -d "$body" "$BASE$path")
        else
            bad=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{}' "$BASE$path")
        fi
    fi
    [[ "$ok" =~ ^20[01]$ && "$bad" == 422 ]] || { echo "$s: valid -> $ok, invalid -> $bad" >&2; exit 1; }
}

echo "# $(date -u +%FT%TZ) duration=${DURATION}s warmup=${WARMUP}s threads=$THREADS conns=$CONNS rounds=$ROUNDS load=$(cut -d' ' -f1-3 /proc/loadavg) (wrk and the servers share $(nproc) cores)" >&2
for r in $(seq "$ROUNDS"); do
    order=$SERVERS
    (( r % 2 == 0 )) && order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
    for s in $order; do
        start_server "$s"
        path=$(endpoint "$s")
        check_server "$s" "$path"
        measure "$r" "$s" "$(script "$s")" "$path"
        stop_server
    done
done

summary_table
awk -F'\t' '{n[$2]++; rps[$2]+=$4; per[$1" "$2]=$4; cpu[$1" "$2]=$9}
  END {
    printf "POST /invoices/ (nothing new used): roundtrip/axum = %.3f\n", (rps["roundtrip-invoices"]/n["roundtrip-invoices"])/(rps["axum-invoices"]/n["axum-invoices"]);
    if (n["guide-plain"]) printf "POST /users/ (dependency, CORS, gzip): full/plain = %.3f\n", (rps["guide-full"]/n["guide-full"])/(rps["guide-plain"]/n["guide-plain"]);
    for (r = 1; r <= n["axum-invoices"]; r++) {
      printf "  round %d: invoices req/s %.3f, CPU efficiency (axum CPU/req over roundtrip CPU/req) %.3f", r, per[r" roundtrip-invoices"]/per[r" axum-invoices"], cpu[r" axum-invoices"]/cpu[r" roundtrip-invoices"];
      if (n["guide-plain"]) printf ", guide %.3f", per[r" guide-full"]/per[r" guide-plain"];
      if (n["roundtrip-invoices-before"]) printf ", before: req/s %.3f, CPU efficiency %.3f", per[r" roundtrip-invoices-before"]/per[r" axum-invoices"], cpu[r" axum-invoices"]/cpu[r" roundtrip-invoices-before"];
      printf "\n";
    }
  }' "$RES" | tee "$OUT/ratios.txt"
for col in 3 11; do  # the medians of the per-round invoices ratios
    sed -n 's/^  round [0-9]*: //p' "$OUT/ratios.txt" | tr -d ',' | awk -v c=$col '{print $c}' | sort -n \
        | awk -v c=$col '{v[NR]=$1} END {if (NR) printf "median of the rounds, invoices %s: %.3f\n", (c==3 ? "req/s" : "CPU efficiency"), (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
done
if grep -q before "$OUT/ratios.txt"; then
    for col in 14 17; do  # the same medians for the build in BEFORE_BIN
        sed -n 's/^  round [0-9]*: //p' "$OUT/ratios.txt" | tr -d ',' | awk -v c=$col '{print $c}' | sort -n \
            | awk -v c=$col '{v[NR]=$1} END {if (NR) printf "median of the rounds, before: invoices %s: %.3f\n", (c==14 ? "req/s" : "CPU efficiency"), (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
    done
fi
