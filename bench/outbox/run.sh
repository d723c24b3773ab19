#!/usr/bin/env bash
# The outbox store benchmark: claim-and-complete without HTTP, enqueue, and idle wake-up
# latency, on PostgreSQL and SQLite in one run; then EXPLAIN of the claim on 1M rows.
#
#   bench/outbox/run.sh            # everything (about 5 minutes on 2 cores)
#   bench/outbox/run.sh claim      # one part: claim | enqueue | wake | explain
#
# PostgreSQL: ROUNDTRIP_BENCH_DATABASE_URL, else ROUNDTRIP_TEST_DATABASE_URL, else
# postgres://postgres@127.0.0.1:5432/test. Loopback only; every run uses a fresh schema
# and drops it. Counts are bounded: 50,000 messages per claim run, 10,000 per enqueue run.
set -euo pipefail
cd "$(dirname "$0")/../.."
part="${1:-all}"
url="${ROUNDTRIP_BENCH_DATABASE_URL:-${ROUNDTRIP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}}"

cargo build --release -p roundtrip-delivery --example outbox_bench
bin=target/release/examples/outbox_bench

echo "# outbox bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $(psql "$url" -Atc 'select version()' 2>/dev/null || echo 'psql not found')"
if [[ "$part" == all || "$part" == claim ]]; then
  "$bin" claim --messages 50000 --claimers 1,2,4 --batch 100
  "$bin" claim --messages 50000 --claimers 1,4 --batch 1000
fi
if [[ "$part" == all || "$part" == enqueue ]]; then
  "$bin" enqueue --messages 10000 --concurrency 1,16,64 --lanes 1,2,4,8
fi
if [[ "$part" == all || "$part" == wake ]]; then
  "$bin" wake --rounds 300
fi
if [[ "$part" == all || "$part" == explain ]]; then
  schema="rt_explain_$(date +%s)_$$"
  psql "$url" -v schema="$schema" -f bench/outbox/explain.sql
fi
