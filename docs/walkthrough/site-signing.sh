#!/usr/bin/env bash
# The walkthrough of docs/site-signing.md, run by docs/guides_test.go.
# See lib.sh for the conventions.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir site-signing && cd site-signing
# guide (set by the test: a free port): ADDR=127.0.0.1:18720

# --- Keys and the policy's sites
custody keygen --site zrh > zrh-vkey.txt
custody keygen --site mow > mow-vkey.txt
has zrh-vkey.txt '^zrh\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$'
case $(ls -l zrh.key) in -rw-------*) ;; *) fail "zrh.key is not mode 0600" ;; esac
[ "$(cat zrh.pub)" = "$(cat zrh-vkey.txt)" ] || fail "zrh.pub is not the printed key"
cp ../testdata/policy.yaml policy.yaml
printf 'sites:\n  zrh:\n    locations: [ch-zrh-1]\n    keys:\n      - {key: %s, from: 2026-01-01T00:00:00Z}\n  mow:\n    locations: [ru-mow-1]\n    keys:\n      - {key: %s, from: 2026-01-01T00:00:00Z}\n' \
  "$(cat zrh.pub)" "$(cat mow.pub)" >> policy.yaml

# The events: a sample collected, stored and analysed at ch-zrh-1, and
# another collected there, a few minutes ago.
ago() { date -u -d "@$(($(date -u +%s) - $1))" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$(($(date -u +%s) - $1))" +%Y-%m-%dT%H:%M:%SZ; }
ev() { printf '{"sample":"%s","action":"%s","location":"ch-zrh-1","region":"EU","time":"%s","actor":"%s"}\n' "$1" "$2" "$(ago "$3")" "$4"; }
{ ev smp-zrh-0001 collected 300 edge-sensor; ev smp-zrh-0001 stored 240 vault; ev smp-zrh-0001 analysed 180 sandbox-7; } > zrh.jsonl
ev smp-zrh-0002 collected 120 edge-sensor > more.jsonl

# --- A log that requires site signatures
custody init --dir ./signedlog --origin example.com/signed
(umask 077 && openssl rand -hex 32 > tokens.txt)
custody serve --dir ./signedlog --listen $ADDR --token-file tokens.txt --policy policy.yaml --require-site-signatures 2> serve.log &
up "http://$ADDR/healthz"
curl -s http://$ADDR/v1/stats > stats.json
[ "$(jq -r .site_signatures stats.json)" = required ] || fail "stats: $(cat stats.json)"

# --- Signed appends, and refusals
custody append --log http://$ADDR --token-file tokens.txt --key signedlog/log.pub --site-key zrh.key zrh.jsonl > receipts.jsonl
lines receipts.jsonl 3
[ "$(jq -s '[.[].attestation.index] | unique' receipts.jsonl | jq -c .)" = '[3]' ] || fail "receipts: attestation not at index 3"
[ "$(jq -s '[.[].attestation.path | length] | max' receipts.jsonl)" -le 2 ] || fail "attestation paths too long"
want 1 custody append --log http://$ADDR --token-file tokens.txt more.jsonl 2> unsigned.txt
has unsigned.txt 'server answered 400: event 0 \(sample "smp-zrh-0002"\): unsigned: this log requires every event to be signed by its site'
has unsigned.txt 'nothing of the request was written$'

custody sign --key mow.key --log-origin example.com/signed < more.jsonl > signed.jsonl
lines signed.jsonl 2
has signed.jsonl '^\{"attestation":"custody-attestation/v1\\norigin example.com/signed\\nsite mow\\n'
curl -s -H "Authorization: Bearer $(cat tokens.txt)" --data-binary @signed.jsonl http://$ADDR/v1/events > mow.json
[ "$(jq -r .error mow.json)" = 'event 0 (sample "smp-zrh-0002"): site-not-allowed: site mow vouches for an event at ch-zrh-1, which is site zrh'"'"'s location; nothing of the request was written' ] ||
  fail "mow signing a ch-zrh-1 event: $(cat mow.json)"
curl -s http://$ADDR/v1/stats > stats.json
[ "$(jq .size stats.json)" = 4 ] || fail "a refused request changed the log: $(cat stats.json)"

custody sign --key zrh.key --log-origin example.com/signed < more.jsonl > signed.jsonl
curl -s -H "Authorization: Bearer $(cat tokens.txt)" --data-binary @signed.jsonl http://$ADDR/v1/events > zrh-receipt.json
[ "$(jq -r .attestation.index zrh-receipt.json)" = 5 ] || fail "signed by zrh: $(cat zrh-receipt.json)"

custody verify receipt receipts.jsonl --key signedlog/log.pub --policy policy.yaml > verify.txt
has verify.txt '^valid: entry 0 \(smp-zrh-0001 collected\) is in example.com/signed at size 4$'
has verify.txt '^site: entry 2 signed by site zrh \(key [0-9a-f]{8}\)$'
[ "$(grep -c '^site: entry [0-9] signed by site zrh' verify.txt)" = 3 ] || fail "verify --policy: $(cat verify.txt)"
custody fsck --dir ./signedlog --policy policy.yaml --require-site-signatures > fsck.txt
has fsck.txt 'checked 6 entries'

# --- The audit
custody audit --log http://$ADDR --key signedlog/log.pub --policy policy.yaml --no-state > audit.txt
has audit.txt '^log example.com/signed: 6 entries verified'
has audit.txt '^site signatures: 4 of 4 events covered by a valid site attestation \(2 attestations, 0 that do not hold\)$'
has audit.txt '^no findings$'
kill %1
stopped %1

echo WALKTHROUGH OK
