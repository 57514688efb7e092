#!/usr/bin/env bash
# The walkthrough of README.md ("Two commands", "Using it"), run by
# docs/guides_test.go. See lib.sh for the conventions.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# guide (not run: serves until Ctrl-C; cmd TestDemoClean and TestDemoViolations run the demo): go run . demo
# guide (not run: it is this test's own command): go test ./...

# guide (done by the test: it builds ./custody from the checkout): go build -o custody .
# guide (set by the test: a free port): ADDR=127.0.0.1:8080
./custody init  --dir ./mylog --origin transparency.example.com/custody
(umask 077 && openssl rand -hex 32 > tokens.txt)
case $(ls -l tokens.txt) in -rw-------*) ;; *) fail "tokens.txt is not mode 0600: $(ls -l tokens.txt)" ;; esac
./custody serve --dir ./mylog --token-file tokens.txt --listen $ADDR --policy testdata/policy.yaml 2> serve.log &
up "http://$ADDR/healthz"
./custody append --log http://$ADDR --token-file tokens.txt --key ./mylog/log.pub testdata/events.jsonl > receipts.jsonl
lines receipts.jsonl 44
./custody get    --log http://$ADDR --sample smp-0001 > get.txt
has get.txt '^0 +2026-11-01T08:00:00Z +collected +de-fra-1 .* smp-0001$'
has get.txt '^5 .* deleted +ch-zrh-1 '

want 1 ./custody audit --log http://$ADDR --key ./mylog/log.pub --policy testdata/policy.yaml --state ./audit-state > audit.txt 2> audit.err
has audit.txt '^log transparency.example.com/custody: 44 entries verified \(root [A-Za-z0-9+/]{43}=\)$'
has audit.txt '^sample index: not checked \(the checkpoint has no custody-sample-index line\)$'
has audit.txt '^44 findings:$'
# every finding is late, and nothing else
[ "$(grep -cE '^[0-9]+ +smp-[0-9]+ +late +logged [0-9]+h[0-9]+m[0-9]+s after its time, more than max_log_delay 1h0m0s$' audit.txt)" = 44 ] ||
  fail "not 44 late findings: $(cat audit.txt)"
has audit.err '^custody: audit state in ./audit-state$'
has audit.err '^custody: error: 44 findings in 44 entries of transparency.example.com/custody$'
[ -f audit-state/state.json ] || fail "no ./audit-state/state.json"

./custody verify receipt receipts.jsonl --key ./mylog/log.pub > verify.txt
lines verify.txt 44
has verify.txt '^valid: entry 0 \(smp-0001 collected\) is in transparency.example.com/custody at size 44$'
has verify.txt '^valid: entry 43 \(smp-0008 deleted\) is in transparency.example.com/custody at size 44$'

./custody bench  --log http://$ADDR --token-file tokens.txt --duration 2s > bench.txt
has bench.txt 'events/s with receipts'
kill %1
wait %1 || fail "serve did not stop cleanly on SIGTERM"

# Starting over with a new log under the same origin needs a fresh
# state directory (the README says so): the old one must refuse it.
mv mylog mylog.old
./custody init  --dir ./mylog --origin transparency.example.com/custody
./custody serve --dir ./mylog --token-file tokens.txt --listen $ADDR 2> serve2.log &
up "http://$ADDR/healthz"
./custody append --log http://$ADDR --token-file tokens.txt testdata/events.jsonl > /dev/null
want 3 ./custody audit --log http://$ADDR --key ./mylog/log.pub --policy testdata/policy.yaml --state ./audit-state > audit2.txt 2> audit2.err
has audit2.err '^custody: error: audit state in ./audit-state: the audit state was written for another key of this origin'
has audit2.err '^custody: hint: .*remove ./audit-state to start over'
hasnt audit2.err 'network'
rm -r audit-state
want 1 ./custody audit --log http://$ADDR --key ./mylog/log.pub --policy testdata/policy.yaml --state ./audit-state > audit3.txt 2> audit3.err
has audit3.txt '^44 findings:$'

echo WALKTHROUGH OK
