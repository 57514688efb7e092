#!/usr/bin/env bash
# The walkthrough of docs/regulator-guide.md, run by docs/guides_test.go.
# See lib.sh for the conventions.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- 0. The example log
mkdir regulator-guide && cd regulator-guide
# guide (set by the test: a free port): ADDR=127.0.0.1:18710
custody init --dir ./reglog --origin example.com/regulator-guide --sample-index
(umask 077 && openssl rand -hex 32 > tokens.txt)
custody serve --dir ./reglog --listen $ADDR --token-file tokens.txt 2> serve.log &
up "http://$ADDR/healthz"
../scripts/guide-events.sh 1 > batch1.jsonl
custody append --log http://$ADDR --token-file tokens.txt batch1.jsonl > receipts.jsonl
lines receipts.jsonl 10
cp reglog/log.pub log.pub
cat log.pub > key.txt
has key.txt '^example.com/regulator-guide\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$'

# --- 1. What a receipt is
sed -n 3p receipts.jsonl > receipt-2.json
jq . receipt-2.json > receipt-2-pretty.json
has receipt-2-pretty.json '^  "index": 2,$'
has receipt-2-pretty.json '^    "location": "ch-zrh-1",$'
has receipt-2-pretty.json '^  "checkpoint": "example.com/regulator-guide\\n10\\n'
has receipt-2-pretty.json '^  "tlog_proof": "c2sp.org/tlog-proof@v1\\nindex 2\\n'
[ "$(jq '.proof | length' receipt-2.json)" = 4 ] || fail "the receipt of entry 2 in a tree of 10 has not 4 proof hashes"

# --- 2. Check a receipt with custody
custody verify receipt receipts.jsonl --key log.pub > verify.txt
lines verify.txt 10
has verify.txt '^valid: entry 0 \(smp-eu-0001 collected\) is in example.com/regulator-guide at size 10$'
has verify.txt '^valid: entry 9 \(smp-row-0001 analysed\) is in example.com/regulator-guide at size 10$'
custody verify receipt receipt-2.json --key log.pub --json > verify.json
[ "$(jq -c . verify.json)" = '{"origin":"example.com/regulator-guide","receipts":[{"index":2,"size":10,"sample":"smp-eu-0001","action":"stored"}],"valid":true}' ] ||
  fail "verify --json: $(cat verify.json)"
jq -j .entry receipt-2.json | base64 -d > entry.txt
has entry.txt '^\{"sample":"smp-eu-0001","action":"stored","location":"ch-zrh-1","region":"EU",.*"actor":"vault"\}$'

jq -c '.event.location = "ru-mow-1"' receipt-2.json > receipt-2-event.json
want 2 custody verify receipt receipt-2-event.json --key log.pub 2> fail.txt
has fail.txt "^custody: error: receipt 1 \(index 2\): log example.com/regulator-guide failed verification \(bad-receipt\): the receipt's event is not its entry$"
has fail.txt '^custody: evidence written to evidence-bad-receipt-[0-9a-f]{12}\.json$'
has fail.txt '^custody: hint: the receipt was altered, damaged or is for another log; only its checkpoint is signed by the log; the evidence holds the signed data: publish or send evidence-bad-receipt-[0-9a-f]{12}\.json$'
ev=$(evidence . bad-receipt)
[ "$(jq -r .kind "$ev")" = bad-receipt ] || fail "$ev: kind"
[ "$(jq -r .index "$ev")" = 2 ] || fail "$ev: index"
[ "$(jq -r .new_checkpoint "$ev")" = "$(jq -r .checkpoint receipt-2.json)" ] || fail "$ev does not hold the receipt's checkpoint"
want 2 custody verify receipt receipt-2-event.json --key log.pub --evidence-dir evidence 2> fail2.txt
has fail2.txt '^custody: evidence written to evidence/evidence-bad-receipt-[0-9a-f]{12}\.json$'
[ "$(basename "$(evidence evidence bad-receipt)")" = "$(basename "$ev")" ] || fail "the same failure gave evidence files of other names"
cat evidence/evidence-bad-receipt-*.json > ev.json
[ "$(jq -r .what ev.json)" = "the receipt's event is not its entry" ] || fail "evidence: $(cat ev.json)"

jq -j .tlog_proof receipt-2.json > proof-2.tlog-proof
jq -j .entry receipt-2.json | base64 -d > entry-2.json
cat proof-2.tlog-proof > proof.txt
has proof.txt '^c2sp.org/tlog-proof@v1$'
has proof.txt '^index 2$'
custody verify receipt proof-2.tlog-proof --entry entry-2.json --key log.pub > verify-proof.txt
has verify-proof.txt '^valid: entry 2 \(smp-eu-0001 stored\) is in example.com/regulator-guide at size 10$'
# not a receipt at all: exit 3, and no evidence
echo '{}' > garbage.json
want 3 custody verify receipt garbage.json --key log.pub --evidence-dir garbage-evidence 2> /dev/null
[ ! -e garbage-evidence ] || fail "a garbage receipt produced evidence: $(ls garbage-evidence)"
# with jq -r (one newline more), the tlog-proof is malformed: exit 3
jq -r .tlog_proof receipt-2.json > proof-2-r.tlog-proof
want 3 custody verify receipt proof-2-r.tlog-proof --entry entry-2.json --key log.pub 2> /dev/null

# --- 3. Check a receipt by hand
mkdir receiptcheck
cp ../guide-program-1.go receiptcheck/main.go
cd receiptcheck
go mod init example.com/receiptcheck && go get golang.org/x/mod@v0.43.0 && go build .
cd ..
receiptcheck/receiptcheck log.pub receipt-2.json > check.txt
has check.txt '^ok: entry 2 is in example.com/regulator-guide at size 10$'
has check.txt '^\{"sample":"smp-eu-0001","action":"stored","location":"ch-zrh-1",'
E=$(jq -j .entry receipt-2.json | base64 -d | sed 's/ch-zrh-1/ru-mow-1/' | base64 | tr -d '\n')
jq -c --arg e "$E" '.entry = $e' receipt-2.json > receipt-2-forged.json
want 1 receiptcheck/receiptcheck log.pub receipt-2-forged.json 2> forged.txt
has forged.txt 'inclusion proof: invalid transparency proof$'
custody keygen --origin example.com/regulator-guide --out other 2> /dev/null
want 1 receiptcheck/receiptcheck other.pub receipt-2.json 2> other.txt
has other.txt 'checkpoint: note has no verifiable signatures$'

# --- 5. Later: is the receipt still part of the public log?
../scripts/guide-events.sh 2 > batch2.jsonl
../scripts/guide-events.sh 3 > batch3.jsonl
cat batch2.jsonl batch3.jsonl | custody append --log http://$ADDR --token-file tokens.txt - > later.jsonl
lines later.jsonl 12
jq -j .checkpoint receipt-2.json > receipt-2-checkpoint.txt
custody verify consistency --log http://$ADDR --key log.pub --old receipt-2-checkpoint.txt > cons.txt
has cons.txt '^the tree of size 22 extends the checkpoint of size 10 \(proof of [0-9]+ hashes checked\)$'
custody verify inclusion --log http://$ADDR --key log.pub --index 2 --entry entry-2.json > incl.txt
has incl.txt '^entry 2 is in the tree of size 22 \(proof of 5 hashes checked\)$'
has incl.txt '^\{"sample":"smp-eu-0001","action":"stored","location":"ch-zrh-1",'
# a receipt for another entry's bytes does not pass
jq -j .entry receipt-2-forged.json | base64 -d > entry-2-forged.json
want 2 custody verify inclusion --log http://$ADDR --key log.pub --index 2 --entry entry-2-forged.json 2> /dev/null
curl -s "http://$ADDR/v1/proof/consistency?from=10&to=22" > cproof.json
[ "$(jq '.proof | length' cproof.json)" -ge 1 ] || fail "no consistency proof: $(cat cproof.json)"
custody verify sample smp-eu-0001 --log http://$ADDR --key log.pub > chain.txt
lines chain.txt 10
has chain.txt '^sample smp-eu-0001: 7 events in log example.com/regulator-guide$'
has chain.txt '^INDEX    TIME                 ACTION       LOCATION              REGION$'
has chain.txt '^1        [0-9T:Z-]{20} transferred  de-fra-1 -> ch-zrh-1  EU$'
has chain.txt '^18       [0-9T:Z-]{20} analysed     ch-zrh-1              EU$'
has chain.txt '^complete as of checkpoint 22$'
want 1 custody verify sample smp-eu-0001 --log http://$ADDR --key log.pub --policy ../testdata/policy.yaml > chain-policy.txt 2> /dev/null
has chain-policy.txt '^complete as of checkpoint 22$'
has chain-policy.txt '^1 findings:$'
has chain-policy.txt '^18       continuity        analysed at ch-zrh-1 after deletion everywhere \(deleted everywhere at index 17\)$'
custody verify sample smp-eu-0001 --log http://$ADDR --key log.pub --since receipt-2-checkpoint.txt > chain-since.txt
lines chain-since.txt 5
has chain-since.txt '^sample smp-eu-0001: 7 events in log example.com/regulator-guide, 2 of them since checkpoint 10$'
has chain-since.txt '^17       [0-9T:Z-]{20} deleted      ch-zrh-1              EU$'
custody verify sample smp-never --log http://$ADDR --key log.pub > absent.txt
has absent.txt '^sample smp-never: no events in log example.com/regulator-guide \(verified absence\)$'
has absent.txt '^complete as of checkpoint 22$'
# a directory log serves no sample proofs: exit 3
want 3 custody verify sample smp-eu-0001 --log ./reglog --key log.pub 2> /dev/null
# section 7: the audit report, re-checked offline, and caught when edited
want 1 custody audit --log http://$ADDR --key log.pub --policy ../testdata/policy.yaml --no-state --report audit.html > audit-report.txt 2> audit-report.err
has audit-report.err '^custody: report written to audit.html$'
has audit-report.txt '^8 findings:$'
custody verify report audit.html --key log.pub > verify-report.txt
has verify-report.txt '^valid checkpoint: origin example.com/regulator-guide, size 22, '
has verify-report.txt '^valid: entry 11 \(smp-eu-0002 transferred\) is in the tree \(proof of 5 hashes\)$'
has verify-report.txt '^all 8 findings listed name their proved entries$'
sed '/id="entry-11"/,/<\/pre>/s/ru-mow-1/de-fra-1/' audit.html > edited.html
want 2 custody verify report edited.html --key log.pub 2> edited.err
has edited.err 'the inclusion proof of entry 11 does not lead to the root'
kill %1
stopped %1

echo WALKTHROUGH OK
