#!/usr/bin/env bash
# Prints the example events of docs/auditor-guide.md and
# docs/regulator-guide.md as JSON lines, dated a few minutes before now, so
# that a log you fill with them today reproduces the guides' reports.
#
#   scripts/guide-events.sh 1 > batch1.jsonl   # 10 events: no findings
#   scripts/guide-events.sh 2 > batch2.jsonl   # 9 more: 7 findings, one of each kind
#   scripts/guide-events.sh 3 > batch3.jsonl   # 3 more: a UK sample sent to Singapore
#
# Append each batch within half an hour of making it: an event logged more
# than max_log_delay (1h in testdata/policy.yaml) after its time is a `late`
# finding. Batch 2 has one such event on purpose (smp-us-0003, 3 hours old).
# Making a batch again gives new times, so new events (not duplicates).
set -euo pipefail

usage() { echo "usage: $0 1|2|3 > batchN.jsonl" >&2; exit 2; }
[ $# -eq 1 ] || usage

now=$(date -u +%s)
# at SECONDS_AGO: the UTC time that long before now, in RFC 3339 (GNU or BSD date).
at() {
  local t=$((now - $1))
  date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || date -u -r "$t" +%Y-%m-%dT%H:%M:%SZ
}
C=65a8f95e999b098ce96b1ba94bf5fd49cfbc35fdd374c99ef7a29e554529884c # an opaque customer commitment
# ev MINUTES_AGO SAMPLE ACTION LOCATION TO REGION ACTOR: one event ("-" for no TO).
ev() {
  local to=""
  [ "$5" = - ] || to="\"to\":\"$5\","
  printf '{"sample":"%s","action":"%s","location":"%s",%s"region":"%s","customer":"%s","time":"%s","actor":"%s"}\n' \
    "$2" "$3" "$4" "$to" "$6" "$C" "$(at $(($1 * 60)))" "$7"
}

case $1 in
1) # indexes 0-9: every event allowed by testdata/policy.yaml
  ev 12 smp-eu-0001  collected   de-fra-1 -        EU  edge-sensor
  ev 11 smp-eu-0001  transferred de-fra-1 ch-zrh-1 EU  transfer-svc
  ev 10 smp-eu-0001  stored      ch-zrh-1 -        EU  vault
  ev 9  smp-eu-0001  analysed    ch-zrh-1 -        EU  sandbox-7
  ev 8  smp-eu-0001  deleted     de-fra-1 -        EU  retention
  ev 7  smp-us-0001  collected   us-ash-1 -        US  edge-sensor
  ev 6  smp-us-0001  stored      us-ash-1 -        US  vault
  ev 5  smp-row-0001 collected   sg-sin-1 -        ROW edge-sensor
  ev 4  smp-row-0001 transferred sg-sin-1 ru-mow-1 ROW transfer-svc
  ev 3  smp-row-0001 analysed    ru-mow-1 -        ROW sandbox-2
  ;;
2) # indexes 10-18: one finding of each kind
  ev 9   smp-eu-0002 collected   de-fra-1 -        EU    edge-sensor
  ev 8   smp-eu-0002 transferred de-fra-1 ru-mow-1 EU    transfer-svc # 11 reroute: RU is not allowed for EU
  ev 7   smp-eu-0003 stored      ch-zrh-1 -        EU    vault        # 12 continuity: never collected
  ev 6   smp-us-0001 analysed    us-ash-1 -        EU    sandbox-1    # 13 region-change: smp-us-0001 is a US sample
  ev 5   smp-us-0002 collected   us-nyc-2 -        US    edge-sensor  # 14 unknown-location
  ev 4   smp-la-0001 collected   ch-zrh-1 -        LATAM edge-sensor  # 15 unknown-region
  ev 180 smp-us-0003 collected   us-ash-1 -        US    edge-sensor  # 16 late: 3 hours old
  ev 3   smp-eu-0001 deleted     ch-zrh-1 -        EU    retention    # 17 now deleted everywhere
  ev 2   smp-eu-0001 analysed    ch-zrh-1 -        EU    sandbox-7    # 18 continuity: after deletion everywhere
  ;;
3) # indexes 19-21
  ev 3 smp-uk-0001 collected   uk-lon-1 -        UK edge-sensor
  ev 2 smp-uk-0001 stored      uk-lon-1 -        UK vault
  ev 1 smp-uk-0001 transferred uk-lon-1 sg-sin-1 UK transfer-svc # 21 reroute: SG is not allowed for UK
  ;;
*) usage ;;
esac
