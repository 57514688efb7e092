#!/usr/bin/env bash
# The main job on the embedded default (SQLite), start to finish:
# build custody, create a log, serve it, append testdata/events.jsonl,
# show the receipts, the signed checkpoint and one sample's custody chain,
# then keep serving until Ctrl-C. Nothing to install but Go and gcc.
#
#   scripts/try.sh            # a fresh log in a temporary directory
#   DIR=./mylog scripts/try.sh  # keep the log in ./mylog (reused if it exists)
set -euo pipefail
cd "$(dirname "$0")/.."

ADDR=${ADDR:-127.0.0.1:8080}
DIR=${DIR:-$(mktemp -d)/log}
BIN=$(mktemp -d)/custody

echo "== building custody"
go build -o "$BIN" .

if [ ! -f "$DIR/log.key" ]; then
  echo "== creating a log in $DIR"
  "$BIN" init --dir "$DIR" --origin example.com/custody-try
fi
TOKENS="$DIR/tokens.txt"
[ -f "$TOKENS" ] || { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TOKENS"; echo >> "$TOKENS"; chmod 600 "$TOKENS"; }

echo "== serving on http://$ADDR"
"$BIN" serve --dir "$DIR" --listen "$ADDR" --token-file "$TOKENS" --log-level warn &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.1; done

echo "== appending testdata/events.jsonl (one receipt per event, verified with log.pub)"
"$BIN" append --log "http://$ADDR" --token-file "$TOKENS" --key "$DIR/log.pub" testdata/events.jsonl > "$DIR/receipts.jsonl"
echo "   $(wc -l < "$DIR/receipts.jsonl") receipts in $DIR/receipts.jsonl"

echo "== appending the same file again: same indexes, the tree does not grow"
"$BIN" append --log "http://$ADDR" --token-file "$TOKENS" testdata/events.jsonl > "$DIR/receipts-again.jsonl"
cmp -s <(grep -o '"index":[0-9]*' "$DIR/receipts.jsonl") <(grep -o '"index":[0-9]*' "$DIR/receipts-again.jsonl") && echo "   same indexes"

echo "== the signed checkpoint (GET /checkpoint)"
curl -s "http://$ADDR/checkpoint" | sed 's/^/   /'

echo "== the custody chain of sample smp-0001"
"$BIN" get --log "http://$ADDR" --sample smp-0001 | sed 's/^/   /'

echo
echo "The log is at http://$ADDR (tiles under /tile/, JSON under /v1/). Ctrl-C stops it."
wait $PID
