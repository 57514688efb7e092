# Helpers for the guide walkthroughs (sourced, never run alone). Each
# walkthrough runs its guide's commands as shown and checks what the guide
# says they do. docs/guides_test.go runs them in a scratch directory with
# custody on PATH; to run one by hand, do the same:
#
#   d=$(mktemp -d) && go build -o "$d/custody" . && ln -s "$PWD/testdata" "$PWD/scripts" "$d" &&
#     (cd "$d" && PATH=$d:$PATH CUSTODY_SRC=$OLDPWD ADDR=127.0.0.1:18700 WADDR=127.0.0.1:18701 \
#       bash "$OLDPWD/docs/walkthrough/auditor.sh")
#
# (regulator.sh also needs guide-program-1.go in that directory: the
# guide's Go program, which the test extracts from the guide.)
#
# Conventions (docs/guides_test.go checks the first two against the guide):
#   - a guide's command appears verbatim, optionally followed by
#     redirections or a pipe into a check;
#   - `want N COMMAND` runs a command that the guide says exits with N;
#   - `# guide (REASON): COMMAND` stands for a guide command not run as such;
#   - every other line (waiting for a server, checking output) is the
#     walkthrough's own.
set -euo pipefail

# Diagnostics go to fd 3, the walkthrough's own stderr, also from inside a
# command whose stderr is redirected to a file.
exec 3>&2
fail() {
  echo "WALKTHROUGH FAILED: $*" >&3
  exit 1
}
trap 'echo "WALKTHROUGH FAILED: ${BASH_SOURCE[0]}:$LINENO: exit $?: $BASH_COMMAND" >&3' ERR
# Background servers die with the walkthrough (the test also kills its
# process group).
trap 'trap - ERR; jobs -p | xargs -r kill 2>/dev/null || true; wait 2>/dev/null || true' EXIT

# want CODE COMMAND...: run COMMAND; its exit code must be CODE.
want() {
  local code=$1 got=0
  shift
  "$@" || got=$?
  [ "$got" = "$code" ] || fail "exit code $got, want $code: $*"
}

# has FILE ERE: some line of FILE matches the extended regular expression.
has() {
  grep -Eq -- "$2" "$1" || {
    echo "--- $1:" >&3
    cat "$1" >&3
    fail "$1 has no line matching: $2"
  }
}

# hasnt FILE ERE: no line of FILE matches.
hasnt() {
  ! grep -Eq -- "$2" "$1" || {
    echo "--- $1:" >&3
    cat "$1" >&3
    fail "$1 has a line matching: $2"
  }
}

# lines FILE N: FILE has exactly N lines.
lines() {
  local n
  n=$(wc -l <"$1" | tr -d ' ')
  [ "$n" = "$2" ] || fail "$1 has $n lines, want $2"
}

# up URL: wait (at most 10 s) until URL answers 2xx.
up() {
  for _ in $(seq 200); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.05
  done
  fail "$1 did not answer within 10 s"
}

# listening HOSTPORT: wait (at most 10 s) until an HTTP server answers there.
listening() {
  for _ in $(seq 200); do
    curl -s -o /dev/null "http://$1/" && return 0
    sleep 0.05
  done
  fail "nothing answers HTTP on $1 after 10 s"
}

# down HOSTPORT: wait (at most 10 s) until nothing listens on HOSTPORT.
down() {
  for _ in $(seq 200); do
    curl -s -o /dev/null "http://$1/" || return 0
    sleep 0.05
  done
  fail "$1 is still answering after 10 s"
}

# stopped PID: the process ended (after a SIGTERM) with exit code 0.
stopped() {
  local got=0
  wait "$1" || got=$?
  [ "$got" = 0 ] || fail "process $1 exited with $got after SIGTERM, want 0"
}

# evidence DIR KIND: the one evidence file of KIND in DIR, mode 0600;
# prints its path.
evidence() {
  local f
  f=$(ls "$1"/evidence-"$2"-*.json 2>/dev/null | head -1)
  [ -n "$f" ] || fail "no evidence-$2-*.json in $1"
  [[ $(basename "$f") =~ ^evidence-$2-[0-9a-f]{12}\.json$ ]] || fail "evidence file name $f is not evidence-$2-<12 hex>.json"
  case $(ls -l "$f") in -rw-------*) ;; *) fail "evidence file $f is not mode 0600: $(ls -l "$f")" ;; esac
  echo "$f"
}
