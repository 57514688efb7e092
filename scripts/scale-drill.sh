#!/usr/bin/env bash
# scale-drill.sh: the large-log acceptance measurements of docs/performance.md
# ("A billion events on one node"), on one log directory.
#
#   scripts/scale-drill.sh CUSTODY_BINARY LOG_DIR PORT [BENCH_SECONDS]
#
# LOG_DIR is made by `custody init` and usually grown by `custody prefill`.
# With CUSTODY_STORE=DSN set, the log is in that database (PostgreSQL) and
# LOG_DIR holds its keys.
# The drill starts `custody serve` on it and measures, printing one JSON
# object at the end:
#   - start_healthz_ms / start_checkpoint_ms: from process start until
#     /healthz and /checkpoint first answer 200;
#   - rss_start_mb: resident memory 3 s after /checkpoint answered;
#   - dup_index: entry 0 (the very first batch) submitted again must get
#     index 0 back (strict de-duplication at any size);
#   - proof_by_hash_ms_max / _median: 20 GET /v1/proof/inclusion?hash= for
#     entry 0's leaf hash;
#   - bench: `custody bench --clients 8 --batch 256` for BENCH_SECONDS
#     (default 60): events/s, p99, and the server's peak RSS (VmHWM) after it.
# The log grows by what the bench appends. Needs curl, jq, base64, sha256sum,
# xxd or perl.
set -euo pipefail
bin=${1:?usage: scale-drill.sh CUSTODY_BINARY LOG_DIR PORT [BENCH_SECONDS]}
dir=${2:?usage: scale-drill.sh CUSTODY_BINARY LOG_DIR PORT [BENCH_SECONDS]}
port=${3:?usage: scale-drill.sh CUSTODY_BINARY LOG_DIR PORT [BENCH_SECONDS]}
secs=${4:-60}
url=http://127.0.0.1:$port
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT
printf 'drill-token-%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/tokens"
chmod 600 "$work/tokens"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
wait_200() { # path; prints ms since start when it first answers 200
  while :; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url$1" || true)" = 200 ]; then
      echo $(($(now_ms) - t0))
      return
    fi
    kill -0 "$pid" 2>/dev/null || { echo "custody serve exited; see $work/serve.log" >&2; cat "$work/serve.log" >&2; exit 1; }
    sleep 0.01
  done
}
rss_mb() { awk -v k="$1:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }

t0=$(now_ms)
"$bin" serve --dir "$dir" ${CUSTODY_STORE:+--store "$CUSTODY_STORE"} --listen "127.0.0.1:$port" --token-file "$work/tokens" >"$work/serve.log" 2>&1 &
pid=$!
healthz=$(wait_200 /healthz)
checkpoint=$(wait_200 /checkpoint)
size=$(curl -s "$url/checkpoint" | sed -n 2p)
sleep 3
rss_start=$(rss_mb VmRSS)

# Entry 0 again: the log must answer with index 0.
entry=$(curl -s "$url/v1/entries/0" | jq -r .entry | base64 -d)
line=$(printf '%s' "$entry" | jq -c 'del(.logged)')
dup=$(printf '%s\n' "$line" | curl -s -H "Authorization: Bearer $(cat "$work/tokens")" \
  -H 'Content-Type: application/x-ndjson' --data-binary @- "$url/v1/events" | jq -r '.index')

# Inclusion proof by leaf hash for entry 0.
hash=$( (printf '\0'; printf '%s' "$entry") | sha256sum | cut -c1-64 | xxd -r -p | base64 | jq -sRr @uri)
times=()
for _ in $(seq 20); do
  times+=("$(curl -s -o /dev/null -w '%{time_total}' "$url/v1/proof/inclusion?hash=$hash")")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -g)
pmax=$(echo "$sorted" | tail -1 | awk '{ printf "%.2f", $1 * 1000 }')
pmed=$(echo "$sorted" | sed -n 10p | awk '{ printf "%.2f", $1 * 1000 }')

"$bin" bench --log "$url" --token-file "$work/tokens" --clients 8 --batch 256 --duration "${secs}s" --json >"$work/bench.json"
rss_peak=$(rss_mb VmHWM)
rss_end=$(rss_mb VmRSS)

jq -n --arg dir "$dir" --argjson size "$size" --argjson healthz "$healthz" --argjson checkpoint "$checkpoint" \
  --argjson rss_start "$rss_start" --argjson rss_end "$rss_end" --argjson rss_peak "$rss_peak" \
  --arg dup "$dup" --argjson pmax "$pmax" --argjson pmed "$pmed" --slurpfile bench "$work/bench.json" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
  '{dir: $dir, size: $size, start_healthz_ms: $healthz, start_checkpoint_ms: $checkpoint,
    rss_start_mb: $rss_start, dup_index: $dup, proof_by_hash_ms_median: $pmed, proof_by_hash_ms_max: $pmax,
    bench: $bench[0], rss_after_bench_mb: $rss_end, rss_peak_mb: $rss_peak, loadavg_after: $load}'
