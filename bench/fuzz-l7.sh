#!/usr/bin/env bash
# bench/fuzz-l7.sh — fuzz the L7 request matching (fuzz/l7_fuzz.cc) with libFuzzer: request-path
# normalisation, query parsing, the path and value globs and evaluate_l7, which see every request
# on an intercepted connection.
#
#   bench/fuzz-l7.sh [SECONDS]     default 60
#
# Builds the target with clang (ASan + UBSan + libFuzzer) straight from the sources, seeds its
# corpus, runs it and prints the number of executions and whether anything was found. Exits
# non-zero on a finding; the reproducer is left in the artifacts directory printed at the end.
# The corpus is kept between runs in FUZZ_DIR (under build-*, which git ignores).
# Environment: CXX (default clang++), FUZZ_DIR (default <repo>/build-fuzz-l7).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
CXX="${CXX:-clang++}"
FUZZ_DIR="${FUZZ_DIR:-$ROOT/build-fuzz-l7}"
NAME=l7_fuzz

die() {
  printf 'fuzz-l7.sh: error: %s\n' "$*" >&2
  exit 2
}
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$SECONDS_TO_RUN'"
command -v "$CXX" >/dev/null || die "$CXX not found (install clang)"

mkdir -p "$FUZZ_DIR/bin" "$FUZZ_DIR/$NAME/corpus" "$FUZZ_DIR/$NAME/artifacts"
BIN="$FUZZ_DIR/bin/$NAME"
echo "==> building $BIN"
# fmt comes from the system, uninstrumented: the coverage is ward's.
"$CXX" -std=c++20 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -O1 -g \
  -I"$ROOT/src" "$ROOT/fuzz/l7_fuzz.cc" "$ROOT/src/policy/l7.cc" "$ROOT/src/policy/matcher.cc" \
  "$ROOT/src/base/strings.cc" -lfmt -o "$BIN"

seed() { # FILE CONTENT (the first byte is the flag byte: \x01 = allow_encoded_slash)
  printf '%b' "$2" >"$FUZZ_DIR/$NAME/corpus/$1"
}
seed plain '\x00/repos/octo/hello-world/pulls'
seed dots '\x00/a/./b/../c//d/%2e%2e/e/'
seed slash '\x01/projects/group%2Fproject/issues%5c..%2f'
seed utf8 '\x00/caf%C3%A9/%c0%ae/%25/%3F'
seed tomcat '\x00/public/..;/admin'
seed query '\x00a=1&b=x%20y&c&&q=ok+1&q=evil%26x'
seed glob '\x00/**/git-upload-pack\x00/org/repo.git/git-upload-pack'
seed glob2 '\x00/repos/*/pulls/*.json\x00/repos/x/pulls/1.json'

LOG="$FUZZ_DIR/$NAME/fuzz.log"
echo "==> fuzzing $NAME for $SECONDS_TO_RUN s"
if ! "$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len=20000 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$FUZZ_DIR/$NAME/artifacts/" "$FUZZ_DIR/$NAME/corpus" >"$LOG" 2>&1; then
  tail -n 40 "$LOG"
  die "$NAME found a problem; reproducer in $FUZZ_DIR/$NAME/artifacts/"
fi
execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$LOG" | awk '{print $2}' || true)"
[[ -n "$execs" ]] || execs="$(grep -Eo '#[0-9]+' "$LOG" | tail -n 1 | tr -d '#')"
echo "    $NAME: ${execs:-?} executions in $SECONDS_TO_RUN s, nothing found"
echo "==> no findings (work directory: $FUZZ_DIR)"
