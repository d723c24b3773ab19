#!/usr/bin/env bash
# Load benchmark: POST /invoices/ (and GET /) on roundtrip and its peers, in the same run.
#
#   bench/http/run.sh            # setup is /work/shared/peers/setup.sh (wrk, axum-bare, FastAPI venv)
#
# Servers: axum (hand-written, ../shared/peers/axum-bare), roundtrip (validated query and
# body, documented), roundtrip-axum-serve (the same app served by `axum::serve`, without
# roundtrip's header/idle timeouts and connection cap), roundtrip-callback (the same plus a durable SQLite enqueue of the
# callback on every request, synchronous = FULL; workers off), roundtrip-callback-normal (the
# same with synchronous = NORMAL: no fsync per commit), fastapi (uvicorn, 1 worker, async def).
# Everything runs inside a network namespace with only loopback (unshare -n), so nothing a
# server does can leave the machine; the callback URL is loopback and never delivered.
# Bounded: every wrk run has a duration and a timeout; every wait has a cap.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PEERS="${PEERS:-$ROOT/../shared/peers}"
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-2}
PORT=${PORT:-18080}
VENV=${VENV:-/tmp/peers-venv}
PEERS_TARGET=${PEERS_TARGET:-/tmp/peers-target}
SERVERS=${SERVERS:-"axum roundtrip roundtrip-callback fastapi-1w-async"}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET/bench-http}

if [ "${INSIDE_NETNS:-}" != 1 ]; then
    command -v wrk >/dev/null || { echo "wrk missing: run $PEERS/setup.sh" >&2; exit 1; }
    [ -x "$PEERS_TARGET/release/axum-bare" ] || { echo "axum-bare missing: run $PEERS/setup.sh" >&2; exit 1; }
    (cd "$ROOT" && cargo build --release -q -p roundtrip-bench --bin rt-server)
    mkdir -p "$OUT"
    exec unshare -n env INSIDE_NETNS=1 bash "$0" "$@"
fi
ip link set lo up

BASE="http://127.0.0.1:$PORT"
EXTERNAL_QUERY="/invoices/?callback_url=https://www.external.org/events"
LOOPBACK_QUERY="/invoices/?callback_url=http://127.0.0.1:9/events"
RES="$OUT/results.tsv"; : > "$RES"
SPID=""
stop_server() {
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    # Only the server this script started, by its pid (uvicorn is exec'd in its place, with
    # one worker in-process): never a broad match that could end another run's server.
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}
trap stop_server EXIT

start_server() {
    case "$1" in
        axum) "$PEERS_TARGET/release/axum-bare" "$PORT" >"$OUT/$1.log" 2>&1 & ;;
        roundtrip) "$TARGET/release/rt-server" --mode plain --port "$PORT" >"$OUT/$1.log" 2>&1 & ;;
        roundtrip-axum-serve) "$TARGET/release/rt-server" --mode plain --serve axum --port "$PORT" >"$OUT/$1.log" 2>&1 & ;;
        roundtrip-callback)
            rm -f "$OUT"/callback.db*
            "$TARGET/release/rt-server" --mode callback --port "$PORT" --db "$OUT/callback.db" >"$OUT/$1.log" 2>&1 & ;;
        roundtrip-callback-normal)
            rm -f "$OUT"/callback.db*
            "$TARGET/release/rt-server" --mode callback --sync normal --port "$PORT" --db "$OUT/callback.db" >"$OUT/$1.log" 2>&1 & ;;
        fastapi-1w-async)
            (cd "$PEERS/fastapi" && PEERS_ASYNC_POST=1 exec "$VENV/bin/uvicorn" main:app --host 127.0.0.1 --port "$PORT" \
                --loop uvloop --http httptools --no-access-log --log-level warning) >"$OUT/$1.log" 2>&1 & ;;
        *) echo "unknown server $1" >&2; exit 1 ;;
    esac
    SPID=$!
    for _ in $(seq 100); do
        curl -fs -o /dev/null "$BASE/" 2>/dev/null && return 0
        kill -0 "$SPID" 2>/dev/null || { echo "$1 died; see $OUT/$1.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "$1 not ready after 20 s" >&2; exit 1
}

post_url() {
    if [[ "$1" = roundtrip-callback* ]]; then echo "$BASE$LOOPBACK_QUERY"; else echo "$BASE$EXTERNAL_QUERY"; fi
}

wrk_run() { # lua url seconds
    timeout $(( $3 + 20 )) wrk -t"$THREADS" -c"$CONNS" -d"${3}s" --timeout 5s -s "$PEERS/wrk/$1" "$2" | grep '^RESULT'
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
rss_mib() { awk '/^VmHWM:/{printf "%.1f", $2/1024}' /proc/"$SPID"/status 2>/dev/null || echo -; }

echo "# $(date -u +%FT%TZ) duration=${DURATION}s warmup=${WARMUP}s threads=$THREADS conns=$CONNS rounds=$ROUNDS (wrk and the servers share $(nproc) cores)" >&2
for r in $(seq "$ROUNDS"); do
    order=$SERVERS
    (( r % 2 == 0 )) && order=$(tr ' ' '\n' <<<"$SERVERS" | tac | tr '\n' ' ')
    for s in $order; do
        start_server "$s"
        for ep in GET POST; do
            if [ "$ep" = GET ]; then lua=get.lua; url="$BASE/"; else lua=post.lua; url=$(post_url "$s"); fi
            wrk_run "$lua" "$url" "$WARMUP" >/dev/null || true
            line=$(wrk_run "$lua" "$url" "$DURATION") || { echo "wrk failed for $s $ep" >&2; exit 1; }
            echo "[$s] round $r $ep $line" >&2
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$s" "$ep" "$(field rps "$line")" \
                "$(field p50_ms "$line")" "$(field p99_ms "$line")" \
                "$(( $(field non2xx "$line") + $(field sockerr "$line") ))" "$(rss_mib)" >>"$RES"
        done
        stop_server
    done
done

echo "| server | endpoint | req/s (mean of $ROUNDS) | p50 ms | p99 ms | errors | peak RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|"
awk -F'\t' '{k=$2" "$3; n[k]++; rps[k]+=$4; p50[k]+=$5; p99[k]+=$6; err[k]+=$7; rss[k]=$8}
  END {for (k in n) {split(k, a, " "); printf "| %s | %s | %.0f | %.2f | %.2f | %d | %s |\n", a[1], a[2], rps[k]/n[k], p50[k]/n[k], p99[k]/n[k], err[k], rss[k]}}' "$RES" | sort
echo
awk -F'\t' '{k=$2" "$3; n[k]++; rps[k]+=$4}
  END {
    for (e in ep) {}
    split("GET POST", E, " ");
    for (i = 1; i <= 2; i++) {
      e = E[i]; if (!n["axum " e]) continue; ax = rps["axum " e]/n["axum " e];
      printf "%s:", e;
      if (n["roundtrip " e]) printf " roundtrip/axum = %.2f", (rps["roundtrip " e]/n["roundtrip " e])/ax;
      if (n["roundtrip-callback " e]) printf " roundtrip-callback/axum = %.2f", (rps["roundtrip-callback " e]/n["roundtrip-callback " e])/ax;
      if (n["roundtrip-callback-normal " e]) printf " roundtrip-callback-normal/axum = %.2f", (rps["roundtrip-callback-normal " e]/n["roundtrip-callback-normal " e])/ax;
      if (n["fastapi-1w-async " e] && n["roundtrip " e]) printf " roundtrip/fastapi = %.1f", (rps["roundtrip " e]/n["roundtrip " e])/(rps["fastapi-1w-async " e]/n["fastapi-1w-async " e]);
      printf "\n";
    }
  }' "$RES"
