#!/usr/bin/env bash
# bench/fuzz-creds.sh — fuzz the credential placeholder rewriter (fuzz/creds_fuzz.cc) with
# libFuzzer: header values, request targets, JSON and form bodies, Basic auth and websocket
# frames, against a fixed vault. "@0" and "@1" in an input stand for the vault's placeholders.
#
#   bench/fuzz-creds.sh [SECONDS]     default 60
#
# Builds the target with clang (ASan + UBSan + libFuzzer) straight from the sources, seeds a
# corpus, runs for SECONDS and prints the number of executions and whether anything was found.
# Exits non-zero on a finding (crash, a placeholder left after a rewrite, a secret in refused text
# or in a reason, sanitizer report); the reproducer is left in the artifacts directory printed at
# the end. The corpus is kept between runs in FUZZ_DIR (under build-*, which git ignores).
# Environment: CXX (default clang++), FUZZ_DIR (default <repo>/build-fuzz-creds).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
CXX="${CXX:-clang++}"
FUZZ_DIR="${FUZZ_DIR:-$ROOT/build-fuzz-creds}"

die() {
  printf 'fuzz-creds.sh: error: %s\n' "$*" >&2
  exit 2
}
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$SECONDS_TO_RUN'"
command -v "$CXX" >/dev/null || die "$CXX not found (install clang)"

mkdir -p "$FUZZ_DIR/corpus" "$FUZZ_DIR/artifacts"
BIN="$FUZZ_DIR/creds_fuzz"

# The built-in profiles are YAML loaded by the policy reader, so the creds module needs the policy
# module's sources too.
sources=()
for f in "$ROOT"/src/base/*.cc "$ROOT"/src/policy/*.cc "$ROOT"/src/creds/*.cc; do
  [[ "$f" == *_test.cc ]] || sources+=("$f")
done
echo "==> building $BIN"
# yaml-cpp and fmt come from the system, uninstrumented: the fuzzer's coverage is ward's code.
"$CXX" -std=c++20 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -O1 -g \
  -I"$ROOT/src" "${sources[@]}" "$ROOT/fuzz/creds_fuzz.cc" -lyaml-cpp -lfmt -o "$BIN"

# Seeds: the first byte selects the context (0 header, 1 target, 2 JSON, 3 form, 4 text,
# 5 Basic auth, 6 other header, 7 websocket; +8 binds every provider).
seed() { # NAME CONTENT (printf %b escapes)
  printf '%b' "$2" >"$FUZZ_DIR/corpus/seed-$1"
}
seed header '\x08Bearer @0'
seed header-unbound '\x00token @1'
seed target '\x09/repos/o/r?access_token=@0&x=%41'
seed path '\x09/bot@0/sendMessage'
seed json '\x0a{"token":"@0","other":"\\u0077ardcred-"}'
seed form '\x0buser=__token__&password=@0'
seed text '\x0c@0 @1 wardcred-GITHUB_TOKEN-00'
seed basic '\x0dx-access-token:@0'
seed apikey '\x0e@1'
seed escaped '\x0c%77ardcred-GITHUB_TOKEN-0123'
# Websocket: a masked text frame with a placeholder, then a ping.
seed ws '\x0f\x81\xb6\x00\x00\x00\x00@0\x89\x00'

echo "==> fuzzing for ${SECONDS_TO_RUN}s (corpus $FUZZ_DIR/corpus)"
LOG="$FUZZ_DIR/fuzz.log"
status=0
(cd "$FUZZ_DIR/artifacts" && "$BIN" -max_len=8192 -max_total_time="$SECONDS_TO_RUN" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$FUZZ_DIR/artifacts/" "$FUZZ_DIR/corpus") >"$LOG" 2>&1 || status=$?

runs="$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "$LOG")"
echo "executions: $runs"
findings=("$FUZZ_DIR"/artifacts/{crash,leak,timeout,oom,slow-unit}-*)
if ((status != 0)) || [[ -e "${findings[0]}" ]]; then
  echo "result: FINDING (libFuzzer exit $status); see $LOG"
  for f in "${findings[@]}"; do [[ -e "$f" ]] && echo "  reproducer: $f (run: $BIN $f)"; done
  grep -m1 -A15 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' \
    "$LOG" || true
  exit 1
fi
echo "result: no finding"
