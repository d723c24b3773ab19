#!/usr/bin/env bash
# Load benchmark of the tour (issue 8): roundtrip against hand-written axum, in the same run.
#
#   bench/tour/run.sh        # needs wrk and ../shared/peers/axum-bare (see its setup.sh)
#
# Two endpoints, each against its own hand-written axum peer:
#   POST /invoices/  examples/invoices (a body with no constraints: serde's fast path only;
#                    no callback_url, so nothing is enqueued or delivered)
#                    vs ../shared/peers/axum-bare
#   POST /items/     examples/tour (a body with constraints: the compiled validator runs on
#                    every request) vs bench/tour/axum-items (the same two checks by hand)
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
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18090}
SERVERS=${SERVERS:-"axum-invoices roundtrip-invoices axum-items roundtrip-tour"}
OUT=${OUT:-$ROOT/target/bench-tour}

if [ "${INSIDE_NETNS:-}" != 1 ]; then
    command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
    [ -x "$PEERS_TARGET/release/axum-bare" ] || (cd "$PEERS/axum-bare" && CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release --locked -q)
    (cd "$HERE/axum-items" && CARGO_TARGET_DIR="$PEERS_TARGET" cargo build --release --locked -q)
    (cd "$ROOT" && cargo build --release -q -p example-invoices -p example-tour)
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
        axum-items) exec "$PEERS_TARGET/release/axum-items" "$PORT" ;;
        roundtrip-invoices)
            rm -f "$OUT"/invoices.db*
            exec "$ROOT/target/release/example-invoices" serve --port "$PORT" \
                --database-url "sqlite://$OUT/invoices.db" ;;
        roundtrip-tour) exec "$ROOT/target/release/example-tour" serve --port "$PORT" ;;
        *) echo "unknown server $1" >&2; exit 1 ;;
    esac >"$OUT/$1.log" 2>&1 &
    SPID=$!
    wait_ready "$1"
}

endpoint() { case "$1" in *invoices) echo /invoices/ ;; *) echo /items/ ;; esac; }
script() { case "$1" in *invoices) echo "$PEERS/wrk/post.lua" ;; *) echo "$HERE/items.lua" ;; esac; }

check_server() {  # correctness before load: a valid body succeeds, an invalid one is refused
    local path=$1 valid invalid ok bad
    if [ "$path" = /invoices/ ]; then
        valid='{"id":"inv-0001","title":"Consulting","customer":"ACME Corp","total":1234.5}'
        invalid='{"id":"inv-0001","customer":"ACME Corp","total":"lots"}'
    else
        valid='{"name":"Foo","price":2.5,"tags":["a","b"],"description":"A foo"}'
        invalid='{"name":"","price":-1}'
    fi
    ok=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$valid" "$BASE$path")
    bad=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$invalid" "$BASE$path")
    [[ "$ok" =~ ^20[01]$ && "$bad" == 422 ]] || { echo "$2: valid -> $ok, invalid -> $bad" >&2; exit 1; }
}

echo "# $(date -u +%FT%TZ) duration=${DURATION}s warmup=${WARMUP}s threads=$THREADS conns=$CONNS rounds=$ROUNDS (wrk and the servers share $(nproc) cores)" >&2
for r in $(seq "$ROUNDS"); do
    order=$SERVERS
    (( r % 2 == 0 )) && order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
    for s in $order; do
        start_server "$s"
        path=$(endpoint "$s")
        check_server "$path" "$s"
        measure "$r" "$s" "$(script "$s")" "$path"
        stop_server
    done
done

summary_table
awk -F'\t' '{n[$2]++; rps[$2]+=$4; per[$1" "$2]=$4}
  END {
    printf "POST /invoices/ (no constraints): roundtrip/axum = %.3f\n", (rps["roundtrip-invoices"]/n["roundtrip-invoices"])/(rps["axum-invoices"]/n["axum-invoices"]);
    printf "POST /items/ (constraints):       roundtrip/axum = %.3f\n", (rps["roundtrip-tour"]/n["roundtrip-tour"])/(rps["axum-items"]/n["axum-items"]);
    for (r = 1; r <= n["axum-items"]; r++)
      printf "  round %d: invoices %.3f, items %.3f\n", r, per[r" roundtrip-invoices"]/per[r" axum-invoices"], per[r" roundtrip-tour"]/per[r" axum-items"];
  }' "$RES"
