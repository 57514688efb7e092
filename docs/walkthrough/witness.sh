#!/usr/bin/env bash
# The walkthrough of docs/witness-guide.md, run by docs/guides_test.go.
# See lib.sh for the conventions.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- A practice log
mkdir witness-guide && cd witness-guide
# guide (set by the test: a free port): ADDR=127.0.0.1:18800
# guide (set by the test: a free port): WADDR=127.0.0.1:18801
custody init --dir ./mylog --origin example.com/witness-guide
(umask 077 && openssl rand -hex 32 > tokens.txt)
custody serve --dir ./mylog --listen $ADDR --token-file tokens.txt 2> serve.log &
LOG_PID=$!
up "http://$ADDR/healthz"
head -5 ../testdata/events.jsonl | custody append --log http://$ADDR --token-file tokens.txt - > /dev/null

# --- 2. Generating a key
custody keygen --witness --origin witness.regulator.example --out wit > wit.txt 2>&1
has wit.txt '^witness.regulator.example\+[0-9a-f]{8}\+B[A-Za-z0-9+/]{43}$'
has wit.txt '^custody: wrote wit.key \(private, 0600\) and wit.pub$'
ls -l wit.* > ls.txt
has ls.txt '^-rw------- .* wit.key$'
want 1 custody keygen --witness --origin witness.regulator.example --out wit 2> again.txt
has again.txt '^custody: error: wit.key already exists$'

# --- 3. Running the witness
custody witness serve --dir ./witness --listen $WADDR --key wit.key --log ./mylog/log.pub 2> witness.log &
WITNESS_PID=$!
listening $WADDR
cat witness.log > serving.txt
has serving.txt '"msg":"serving","witness":"witness.regulator.example",.*"logs":\["example.com/witness-guide"\]'
cp wit.key wit-open.key && chmod 644 wit-open.key
want 1 custody witness serve --dir ./witness2 --listen 127.0.0.1:18802 --key wit-open.key --log ./mylog/log.pub 2> open.txt
has open.txt '^custody: error: private key wit-open.key is readable by group or others \(mode 0644\)$'
has open.txt '^custody: hint: chmod 600 wit-open.key$'
want 1 custody witness serve --dir ./witness --listen 127.0.0.1:18803 --key wit.key --log ./mylog/log.pub 2> second.txt
has second.txt '^custody: error: another process is serving from this directory \(witness/witness.db.lock is locked\)$'

# --- 4. The protocol
W=http://$WADDR
(printf 'old 0\n\n'; curl -s http://$ADDR/checkpoint) | curl -s -i --data-binary @- $W/add-checkpoint > r1.txt
has r1.txt '^HTTP/1.1 200 OK'
has r1.txt '^— witness.regulator.example [A-Za-z0-9+/]{102}==$'
custody copy --from sqlite:mylog/custody.db --to sqlite:fork.db > copy.txt
has copy.txt 'latest size 5'
sed -n 6,10p ../testdata/events.jsonl | custody append --log http://$ADDR --token-file tokens.txt - > /dev/null
(printf 'old 0\n\n'; curl -s http://$ADDR/checkpoint) | curl -s -i --data-binary @- $W/add-checkpoint > r2.txt
has r2.txt '^HTTP/1.1 409 Conflict'
has r2.txt '^Content-Type: text/x.tlog.size'
[ "$(tail -1 r2.txt)" = 5 ] || fail "409 body: $(cat r2.txt)"
(echo "old 5"; curl -s "http://$ADDR/v1/proof/consistency?from=5&to=10" | jq -r '.proof[]'; echo; curl -s http://$ADDR/checkpoint) > req10.txt
cat req10.txt > req.txt
[ "$(sed -n 1p req10.txt)" = "old 5" ] && [ "$(sed -n 7p req10.txt)" = "" ] && [ "$(sed -n 8p req10.txt)" = example.com/witness-guide ] ||
  fail "req10.txt is not old 5, 5 proof lines, a blank line, the checkpoint: $(cat req10.txt)"
sed '2s/.*/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=/' req10.txt | curl -s -i --data-binary @- $W/add-checkpoint > r3.txt
has r3.txt '^HTTP/1.1 422 Unprocessable Entity'
has r3.txt '^checkpoint is not consistent with the last one cosigned: consistency proof from tree size 5 to 10: proof does not match root hash$'
curl -s -i --data-binary @req10.txt $W/add-checkpoint > r4.txt
has r4.txt '^HTTP/1.1 200 OK'
kill $WITNESS_PID
stopped $WITNESS_PID
has witness.log '"msg":"shutting down: finishing requests in flight"'
has witness.log '"msg":"stopped"'
custody witness serve --dir ./witness --listen $WADDR --key wit.key --log ./mylog/log.pub 2>> witness.log &
WITNESS_PID=$!
listening $WADDR
(printf 'old 0\n\n'; curl -s http://$ADDR/checkpoint) | curl -s -i --data-binary @- $W/add-checkpoint > r5.txt
has r5.txt '^HTTP/1.1 409 Conflict'
[ "$(tail -1 r5.txt)" = 10 ] || fail "409 body after the restart: $(cat r5.txt)"

kill $LOG_PID
stopped $LOG_PID
custody serve --dir ./mylog --store sqlite:fork.db --listen $ADDR --token-file tokens.txt 2> fork.log &
FORK_PID=$!
up "http://$ADDR/healthz"
sed -n 11,15p ../testdata/events.jsonl | custody append --log http://$ADDR --token-file tokens.txt - > /dev/null
(printf 'old 10\n\n'; curl -s http://$ADDR/checkpoint) > fork.txt
cat fork.txt > /dev/null
[ "$(sed -n 4p fork.txt)" = 10 ] || fail "fork.txt is not a checkpoint of size 10: $(cat fork.txt)"
curl -s -i --data-binary @fork.txt $W/add-checkpoint > r6.txt
has r6.txt '^HTTP/1.1 422 Unprocessable Entity'
has r6.txt '^checkpoint is not consistent with the last one cosigned: consistency proof from tree size 10 to 10: proof does not match root hash$'
has witness.log '"level":"WARN","msg":"checkpoint not consistent with the cosigned state: possible log misbehaviour","origin":"example.com/witness-guide","stored_size":10,'
kill $FORK_PID
stopped $FORK_PID
custody serve --dir ./mylog --listen $ADDR --token-file tokens.txt 2> serve.log &
LOG_PID=$!
up "http://$ADDR/healthz"

custody init --dir ./otherlog --origin example.org/other
custody mirror --store sqlite:otherlog/custody.db --key otherlog/log.pub --dir ./other-mirror 2> /dev/null
(printf 'old 0\n\n'; cat other-mirror/checkpoint) > other-log.txt
curl -s -i --data-binary @other-log.txt $W/add-checkpoint > r7.txt
has r7.txt '^HTTP/1.1 404 Not Found'
has r7.txt '^unknown log "example.org/other"$'

H=$(printf '%s' example.com/witness-guide | sha256sum | cut -d' ' -f1); echo $H
curl -s -i $W/$H/checkpoint > r8.txt
has r8.txt '^HTTP/1.1 200 OK'
has r8.txt '^10$'
has r8.txt '^— witness.regulator.example '
curl -s $W/$H/checkpoint > cosigned.txt

# --- 5. How verifiers require your cosignature
echo "log $(cat mylog/log.pub)" > trust.policy
echo "witness regulator $(cat wit.pub) http://$WADDR" >> trust.policy
echo "quorum regulator" >> trust.policy
custody verify checkpoint cosigned.txt --key mylog/log.pub --trust trust.policy > v1.txt
has v1.txt '^valid checkpoint: origin example.com/witness-guide, size 10, root [A-Za-z0-9+/]{43}=$'
has v1.txt '^cosigned by: regulator$'
want 2 custody verify checkpoint http://$ADDR --key mylog/log.pub --trust trust.policy --evidence-dir ev 2> v2.txt
has v2.txt '^custody: evidence written to ev/evidence-quorum-[0-9a-f]{12}\.json$'
has v2.txt '^custody: error: log example.com/witness-guide failed verification \(quorum\): witness quorum "regulator" is not met; cosigned by no witness$'
evidence ev quorum > /dev/null

# --- 6. How the log operator uses your witness
kill $LOG_PID
stopped $LOG_PID
custody serve --dir ./mylog --listen $ADDR --token-file tokens.txt --witness http://$WADDR=wit.pub --quorum 1 2> serve.log &
LOG_PID=$!
up "http://$ADDR/healthz"
sed -n 16,20p ../testdata/events.jsonl | custody append --log http://$ADDR --token-file tokens.txt - > receipts.jsonl
custody verify receipt receipts.jsonl --key mylog/log.pub --trust trust.policy > v3.txt
lines v3.txt 5
has v3.txt '^valid: entry 10 \(smp-0003 deleted\) is in example.com/witness-guide at size 15$'
kill $LOG_PID
stopped $LOG_PID
custody serve --dir ./mylog --listen $ADDR --token-file tokens.txt --witness http://$WADDR=wit.pub --quorum 1 2> serve.log &
LOG_PID=$!
up "http://$ADDR/healthz"
custody verify checkpoint http://$ADDR --key mylog/log.pub --trust trust.policy > v4.txt
has v4.txt '^valid checkpoint: origin example.com/witness-guide, size 15, '
has v4.txt '^cosigned by: regulator$'

kill $WITNESS_PID
stopped $WITNESS_PID
sed -n 21,25p ../testdata/events.jsonl > more.jsonl
want 1 custody append --log http://$ADDR --token-file tokens.txt --retries 0 more.jsonl > more-receipts.jsonl 2> down.txt
has down.txt 'server answered 503: the events are stored but the witnesses have not cosigned a checkpoint covering them yet; retry the same request to get receipts$'
custody witness serve --dir ./witness --listen $WADDR --key wit.key --log ./mylog/log.pub 2>> witness.log &
WITNESS_PID=$!
listening $WADDR
custody append --log http://$ADDR --token-file tokens.txt more.jsonl > more-receipts.jsonl
[ "$(jq -s -c 'map(.index)' more-receipts.jsonl)" = '[15,16,17,18,19]' ] || fail "the retry did not get the original indexes: $(jq -s -c 'map(.index)' more-receipts.jsonl)"

kill $LOG_PID $WITNESS_PID
wait

echo WALKTHROUGH OK
