# Helpers shared by the wrk load benchmarks (bench/tour/run.sh, bench/guide/run.sh), sourced
# inside their network namespace. They expect OUT, RES, BASE, THREADS, CONNS and ROUNDS, and
# keep the server's PID in SPID.

SPID=""

# Stops the server this script started (its own PID only), TERM first, KILL after 10 s.
stop_server() {
    [ -n "$SPID" ] || return 0
    kill -TERM "$SPID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
}

# wait_ready NAME: waits (20 s at most) for any HTTP answer from the server just started.
wait_ready() {
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/" 2>/dev/null)" != 000 ] && return 0
        kill -0 "$SPID" 2>/dev/null || { echo "$1 died; see $OUT/$1.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "$1 not ready after 20 s" >&2; exit 1
}

# wrk_run LUA URL SECONDS: one bounded wrk run; prints its RESULT line.
wrk_run() {
    timeout $(( $3 + 20 )) wrk -t"$THREADS" -c"$CONNS" -d"${3}s" --timeout 5s -s "$1" "$2" | grep '^RESULT'
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
rss_mib() { awk '/^VmHWM:/{printf "%.1f", $2/1024}' /proc/"$SPID"/status 2>/dev/null || echo -; }
# cpu_ticks: the server's user + system CPU time so far, in clock ticks (/proc/PID/stat).
cpu_ticks() { awk '{print $14 + $15}' /proc/"$SPID"/stat 2>/dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)

# measure ROUND SERVER LUA PATH: warms up, measures, and records one line in RES, with the
# server's own CPU time per request (user + system, from /proc, over the measured run).
measure() {
    local line before after cpu_us
    wrk_run "$3" "$BASE$4" "$WARMUP" >/dev/null || true
    before=$(cpu_ticks)
    line=$(wrk_run "$3" "$BASE$4" "$DURATION") || { echo "wrk failed for $2" >&2; exit 1; }
    after=$(cpu_ticks)
    cpu_us=$(awk -v t=$(( after - before )) -v hz="$CLK_TCK" -v n="$(field reqs "$line")" \
        'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n; else print 0 }')
    echo "[$2] round $1 POST $4 $line cpu_us=$cpu_us" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$4" "$(field rps "$line")" \
        "$(field p50_ms "$line")" "$(field p99_ms "$line")" \
        "$(( $(field non2xx "$line") + $(field sockerr "$line") ))" "$(rss_mib)" "$cpu_us" >>"$RES"
}

# The table of RES: each server's mean over the rounds.
summary_table() {
    echo "| server | endpoint | req/s (mean of $ROUNDS) | p50 ms | p99 ms | errors | peak RSS MiB | server CPU µs/req |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' '{k=$2"\t"$3; n[k]++; rps[k]+=$4; p50[k]+=$5; p99[k]+=$6; err[k]+=$7; rss[k]=$8; cpu[k]+=$9}
      END {for (k in n) {split(k, a, "\t"); printf "| %s | POST %s | %.0f | %.2f | %.2f | %d | %s | %.2f |\n", a[1], a[2], rps[k]/n[k], p50[k]/n[k], p99[k]/n[k], err[k], rss[k], cpu[k]/n[k]}}' "$RES" | sort
    echo
}
