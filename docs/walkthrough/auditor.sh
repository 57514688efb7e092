#!/usr/bin/env bash
# The walkthrough of docs/auditor-guide.md, run by docs/guides_test.go.
# See lib.sh for the conventions.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- 1. Install
# guide (not run: needs the network and the published module; the test builds the checkout instead): go install github.com/custodylog/custody@latest
# guide (done by the test: it builds custody from the checkout and puts it on PATH): go build -o custody .
cd "$CUSTODY_SRC"
CGO_ENABLED=0 go build ./verify/ ./audit/
go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./verify/ > "$OLDPWD/deps.txt"
cd "$OLDPWD"
# every dependency is one the guide's table lists
while read -r dep; do
  case $dep in
  github.com/custodylog/custody/verify | github.com/custodylog/custody/internal/tiles) ;;
  golang.org/x/mod/sumdb/note | github.com/transparency-dev/merkle | github.com/transparency-dev/merkle/*) ;;
  *) fail "verify depends on $dep, which the guide's table does not list" ;;
  esac
done < deps.txt

# --- 0. The example log (the operator's side)
mkdir auditor-guide && cd auditor-guide
# guide (set by the test: a free port): ADDR=127.0.0.1:18700
# guide (set by the test: a free port): WADDR=127.0.0.1:18701
custody init --dir ./guidelog --origin example.com/auditor-guide --sample-index
(umask 077 && openssl rand -hex 32 > tokens.txt)
custody keygen --witness --origin witness.auditor-guide.example --out wit
custody witness serve --dir ./witness --listen $WADDR --key wit.key --log ./guidelog/log.pub 2> witness.log &
listening $WADDR
custody serve --dir ./guidelog --listen $ADDR --token-file tokens.txt --witness http://$WADDR=wit.pub --quorum 1 2> serve.log &
up "http://$ADDR/healthz"
../scripts/guide-events.sh 1 > batch1.jsonl
custody append --log http://$ADDR --token-file tokens.txt batch1.jsonl > /dev/null
cp guidelog/log.pub log.pub
cp ../testdata/policy.yaml policy.yaml

# --- 2. Pin the log's key
cat log.pub > key.txt
has key.txt '^example.com/auditor-guide\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$'
tr -d '\n' < log.pub | sha256sum > keyhash.txt
has keyhash.txt '^[0-9a-f]{64}  -$'
want 3 custody audit --log http://$ADDR --key guidelog/log.key --policy policy.yaml --no-state 2> private.txt
has private.txt '^custody: error: --key: key file guidelog/log.key: a private signer key \(PRIVATE\+KEY\+…\) was given where a public verifier key belongs$'
! grep -qF "$(cut -d+ -f5 guidelog/log.key)" private.txt || fail "the error quotes the private key"

# --- 3. Write the routing policy
sed 's/de-fra-1, ch-zrh-1/de-fra-2, ch-zrh-1/' policy.yaml > bad.yaml
want 3 custody audit --log http://$ADDR --key log.pub --policy bad.yaml --no-state 2> bad.txt
has bad.txt '^custody: error: policy bad.yaml: regions.EU.allowed\[0\]: unknown location "de-fra-2": not listed under locations \(line [0-9]+\)$'
has bad.txt '^custody: hint: fix the policy file; see testdata/policy.yaml for an example$'

# --- 4. Run the audit
custody audit --log http://$ADDR --key log.pub --policy policy.yaml --state state > audit1.txt 2> audit1.err
has audit1.txt '^log example.com/auditor-guide: 10 entries verified \(root [A-Za-z0-9+/]{43}=\)$'
has audit1.txt "^sample index: the map recomputed from the entries matches the checkpoint's custody-sample-index line$"
[ -f state/sample-index.tiles ] || fail "no state/sample-index.tiles"
has audit1.txt '^EU +2 +3 +- +- +- +5$'
has audit1.txt '^ROW +- +- +1 +2 +- +3$'
has audit1.txt '^US +- +- +- +- +2 +2$'
has audit1.txt '^no findings$'
has audit1.err '^custody: audit state in state$'
[ -f state/state.json ] || fail "no state/state.json"
[ "$(jq -c keys state/state.json)" = '["activity","audited","checkpoint","engine_file","findings","origin","size","tree","version"]' ] ||
  fail "state.json fields are not the guide's: $(jq -c keys state/state.json)"
case $(ls -l state/state.json) in -rw-------*) ;; *) fail "state.json is not mode 0600" ;; esac
engine=state/$(jq -r .engine_file state/state.json)
case $(ls -l "$engine") in -rw-------*) ;; *) fail "$engine is not mode 0600" ;; esac
[ "$(jq -c keys "$engine")" = '["counts","next","samples","version"]' ] || fail "$engine is not the engine state"

../scripts/guide-events.sh 2 > batch2.jsonl
custody append --log http://$ADDR --token-file tokens.txt batch2.jsonl > /dev/null
want 1 custody audit --log http://$ADDR --key log.pub --policy policy.yaml --state state > audit2.txt 2> audit2.err
has audit2.txt '^log example.com/auditor-guide: 19 entries verified \(root [A-Za-z0-9+/]{43}=\); continued from 10$'
has audit2.txt "^sample index: the map recomputed from the entries matches the checkpoint's custody-sample-index line$"
has audit2.txt '^EU +5 +5 +- +- +1 +- +11$'
has audit2.txt '^LATAM +1 +- +- +- +- +- +1$'
has audit2.txt '^US +- +- +- +- +3 +1 +4$'
has audit2.txt '^7 findings:$'
has audit2.txt '^11 +smp-eu-0002 +reroute +transferred to ru-mow-1 \(RU\), not allowed for region EU \(allowed: de-fra-1, ch-zrh-1\)$'
has audit2.txt '^12 +smp-eu-0003 +continuity +stored at ch-zrh-1, where the sample is not present \(no earlier event of the sample\)$'
has audit2.txt '^13 +smp-us-0001 +region-change +logged under region EU, but the sample.s region is US \(first logged at index 5\)$'
has audit2.txt '^14 +smp-us-0002 +unknown-location +location us-nyc-2 is not in the policy$'
has audit2.txt '^15 +smp-la-0001 +unknown-region +region LATAM is not in the policy$'
has audit2.txt '^16 +smp-us-0003 +late +logged 3h0m[0-9]+s after its time, more than max_log_delay 1h0m0s$'
has audit2.txt '^18 +smp-eu-0001 +continuity +analysed at ch-zrh-1 after deletion everywhere \(deleted everywhere at index 17\)$'
has audit2.err '^custody: error: 7 findings in 19 entries of example.com/auditor-guide$'


custody mirror --log http://$ADDR --key log.pub --dir ./mirror 2> mirror.txt
[ -f mirror/checkpoint ] && [ -f mirror/tile/0/000.p/19 ] && [ -f mirror/tile/entries/000.p/19 ] || fail "mirror layout: $(find mirror -type f)"
want 1 custody audit --log ./mirror --key log.pub --policy policy.yaml --no-state > audit-mirror.txt 2> /dev/null
has audit-mirror.txt '^log example.com/auditor-guide: 19 entries verified'

echo "log $(cat log.pub)" > trust.policy
echo "witness w1 $(cat wit.pub) http://$WADDR" >> trust.policy
echo "quorum w1" >> trust.policy
want 1 custody audit --log http://$ADDR --trust trust.policy --policy policy.yaml --state trust-state > audit-trust.txt 2> /dev/null
has audit-trust.txt '^log example.com/auditor-guide: 19 entries verified'
custody keygen --witness --origin witness2.auditor-guide.example --out wit2
echo "log $(cat log.pub)" > trust-both.policy
echo "witness w1 $(cat wit.pub)" >> trust-both.policy
echo "witness w2 $(cat wit2.pub)" >> trust-both.policy
echo "group both all w1 w2" >> trust-both.policy
echo "quorum both" >> trust-both.policy
want 2 custody audit --log http://$ADDR --trust trust-both.policy --policy policy.yaml --state both-state 2> quorum.txt
has quorum.txt '^custody: evidence written to both-state/evidence-quorum-[0-9a-f]{12}\.json$'
has quorum.txt '^custody: error: log example.com/auditor-guide failed verification \(quorum\): witness quorum "both" is not met'
evidence both-state quorum > /dev/null

# --- 5. Read the report
want 1 custody audit --log http://$ADDR --key log.pub --policy policy.yaml --state state --json > audit.json 2> /dev/null
[ "$(jq -c '[.origin, .size, .from, (.findings | length), .findings[0].kind, .counts.EU["de-fra-1"]]' audit.json)" = '["example.com/auditor-guide",19,19,7,"reroute",5]' ] ||
  fail "audit --json: $(cat audit.json)"
[ "$(jq -r .sample_index audit.json)" = verified ] || fail "audit --json: sample_index $(jq .sample_index audit.json)"
want 1 custody verify sample smp-eu-0002 --log http://$ADDR --key log.pub --policy policy.yaml > sample.txt 2> /dev/null
has sample.txt '^sample smp-eu-0002: 2 events in log example.com/auditor-guide$'
has sample.txt '^complete as of checkpoint 19$'
has sample.txt '^1 findings:$'
has sample.txt '^11 +reroute +transferred to ru-mow-1 \(RU\), not allowed for region EU \(allowed: de-fra-1, ch-zrh-1\)$'

# --- 6. Monitor the log
custody monitor --log http://$ADDR --key log.pub --policy policy.yaml --every 2s --state monitor-state > monitor.txt &
MONITOR=$!
for _ in $(seq 100); do [ "$(wc -l < monitor.txt)" -ge 7 ] && break; sleep 0.1; done
lines monitor.txt 7
has monitor.txt '^[0-9-]{10}T[0-9:]{8}Z finding: 11 smp-eu-0002 reroute: transferred to ru-mow-1 \(RU\), not allowed for region EU \(allowed: de-fra-1, ch-zrh-1\)$'
../scripts/guide-events.sh 3 > batch3.jsonl
custody append --log http://$ADDR --token-file tokens.txt batch3.jsonl > /dev/null
for _ in $(seq 100); do [ "$(wc -l < monitor.txt)" -ge 8 ] && break; sleep 0.1; done
lines monitor.txt 8
has monitor.txt '^[0-9-]{10}T[0-9:]{8}Z finding: 21 smp-uk-0001 reroute: transferred to sg-sin-1 \(SG\), not allowed for region UK \(allowed: uk-lon-1, ch-zrh-1\)$'
kill -TERM $MONITOR
stopped $MONITOR

custody monitor --log http://$ADDR --key log.pub --policy policy.yaml --every 2s --state monitor-json --json > monitor.json &
MONITOR=$!
for _ in $(seq 100); do [ "$(wc -l < monitor.json)" -ge 8 ] && break; sleep 0.1; done
kill -TERM $MONITOR
stopped $MONITOR
lines monitor.json 8
[ "$(jq -sc 'map(keys) | unique' monitor.json)" = '[["finding","kind","origin","size","time"]]' ] ||
  fail "monitor --json objects have other fields than the guide's table: $(head -1 monitor.json)"
[ "$(jq -sc 'map(.finding | keys) | unique' monitor.json)" = '[["detail","index","kind","sample"]]' ] ||
  fail "monitor --json findings have other fields than the guide's table: $(head -1 monitor.json)"

# --- 7. Evidence
want 1 custody audit --log http://$ADDR --key log.pub --policy policy.yaml --state state > /dev/null 2> audit3.err
has audit3.err '^custody: error: 8 findings in 22 entries of example.com/auditor-guide$'
want 2 custody audit --log ./mirror --key log.pub --policy policy.yaml --state state 2> rollback.txt
has rollback.txt '^custody: evidence written to state/evidence-rollback-[0-9a-f]{12}\.json$'
has rollback.txt '^custody: error: log example.com/auditor-guide failed verification \(rollback\): the log signed a checkpoint of size 19 after one of size 22$'
evidence state rollback > /dev/null
cat state/evidence-rollback-*.json > rollback.json
[ "$(jq -c '[.kind, .old_size, .new_size]' rollback.json)" = '["rollback",22,19]' ] || fail "rollback evidence: $(cat rollback.json)"

perl -0777 -pi -e 's/ch-zrh-1/ru-mow-1/' mirror/tile/entries/000.p/19
want 2 custody audit --log ./mirror --key log.pub --policy policy.yaml --no-state 2> bad-entry.txt
has bad-entry.txt '^custody: evidence written to evidence-bad-entry-[0-9a-f]{12}\.json$'
has bad-entry.txt "^custody: error: log example.com/auditor-guide failed verification \(bad-entry\): entry 1 in the log's entry bundle does not match the leaf hash in its authenticated level-0 tile$"
evidence . bad-entry > /dev/null
cat evidence-bad-entry-*.json > bad-entry.json
[ "$(jq -c '[.kind, .index, .tile, .new_size]' bad-entry.json)" = '["bad-entry",1,"tile/entries/000.p/19",19]' ] || fail "bad-entry evidence: $(cat bad-entry.json)"

custody keygen --origin example.com/auditor-guide --out other
want 2 custody audit --log http://$ADDR --key other.pub --policy policy.yaml --no-state 2> wrong-key.txt
has wrong-key.txt '^custody: evidence written to evidence-bad-signature-[0-9a-f]{12}\.json$'
evidence . bad-signature > /dev/null
has wrong-key.txt 'failed verification \(bad-signature\): the checkpoint is not validly signed by the log'

# --- 8. Spot checks
custody verify checkpoint http://$ADDR --key log.pub > vc.txt
has vc.txt '^valid checkpoint: origin example.com/auditor-guide, size 22, root [A-Za-z0-9+/]{43}=$'
custody verify checkpoint http://$ADDR --trust trust.policy > vct.txt
has vct.txt '^cosigned by: w1$'
custody verify consistency --log http://$ADDR --key log.pub --old mirror/checkpoint > vcons.txt
has vcons.txt '^the tree of size 22 extends the checkpoint of size 19 \(proof of [0-9]+ hashes checked\)$'
custody verify inclusion --log http://$ADDR --key log.pub --index 11 > vi.txt
has vi.txt '^entry 11 is in the tree of size 22 \(proof of 5 hashes checked\)$'
has vi.txt '^\{"sample":"smp-eu-0002","action":"transferred","location":"de-fra-1","to":"ru-mow-1","region":"EU",'
want 2 custody verify inclusion --log http://$ADDR --key log.pub --index 22 2> beyond.txt
has beyond.txt "^custody: error: entry 22 is not in the log's tree of size 22$"

kill %1 %2
wait

echo WALKTHROUGH OK
