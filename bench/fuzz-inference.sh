#!/usr/bin/env bash
# bench/fuzz-inference.sh — fuzz inference.local's parsers and rewriters (fuzz/inference_fuzz.cc)
# with libFuzzer: the routes file, request classification and the backend's target, the body's
# model rewrite, the header allowlist and key, and the token usage scanner (JSON and event
# streams fed in pieces).
#
#   bench/fuzz-inference.sh [SECONDS]     default 60
#
# Builds the target with clang (ASan + UBSan + libFuzzer) from the sources, seeds a corpus, runs
# for SECONDS and prints the number of executions and whether anything was found. Exits non-zero
# on a finding (crash, a broken invariant, sanitizer report); the reproducer is left in the
# artifacts directory printed at the end. The corpus stays in FUZZ_DIR between runs (under
# build-*, which git ignores).
# Environment: CXX (default clang++), FUZZ_DIR (default <repo>/build-fuzz-inference).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" # ROOT, LC_ALL=C, die

duration="${1:-60}"
[[ "$duration" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$duration'"
command -v "${CXX:=clang++}" >/dev/null || die "$CXX not found (install clang)"
FUZZ_DIR="${FUZZ_DIR:-$ROOT/build-fuzz-inference}"
corpus="$FUZZ_DIR/corpus" artifacts="$FUZZ_DIR/artifacts" bin="$FUZZ_DIR/inference_fuzz"
mkdir -p "$corpus" "$artifacts"

# The routes reader uses the policy module's YAML reader; yaml-cpp, fmt and Boost.URL come from
# the system, uninstrumented, so that the coverage is ward's.
mapfile -t sources < <(printf '%s\n' "$ROOT"/src/{base,policy,inference}/*.cc | grep -v '_test\.cc$')
echo "==> building $bin"
"$CXX" -std=c++20 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -O1 -g \
  -I"$ROOT/src" "${sources[@]}" "$ROOT/fuzz/inference_fuzz.cc" -lyaml-cpp -lfmt -lboost_url \
  -o "$bin"

# Seeds: a selector byte (0 routes, 1 classify, 2 body, 3 usage, 4 headers), a flag byte, text.
seeds=(
  routes '\x00\x00routes:\n  - name: local\n    endpoint: https://Model.Test:8443/v1/\n    model: m\n    protocols: [openai_chat_completions, model_discovery]\n    api_key_env: WARD_FUZZ_KEY\n    provider_type: anthropic\n'
  routes-bad '\x00\x00routes:\n  - {name: a, endpoint: "http://u:p@[::1]:0/x?q#f", protocols: [OpenAI_Models, nope], api_key: "k\\n"}\n'
  classify '\x01\x00POST /v1/chat/completions?x=1'
  models '\x01\x01GET /v1/models/org%2Fmodel/%2e%2E?beta=true'
  body '\x02\x01{"model":"caller","stream":true,"messages":[{"role":"user","content":"hi \\u00e9"}]}'
  body-deep '\x02\x00{"a":[[[[[[[[[[[[[[[[{"stream":true}]]]]]]]]]]]]]]]]}'
  usage-json '\x03\x06{"id":"x","choices":[{"text":"{\\"usage\\":1}"}],"usage":{"prompt_tokens":3,"completion_tokens":7}}'
  usage-sse '\x03\x03event: message_start\r\ndata: {"message":{"usage":{"input_tokens":5}}}\r\n\r\ndata: {"usage":{"output_tokens":7}}\n\ndata: [DONE]\n\n'
  headers '\x04\x05Authorization: Bearer caller\r\nx-api-key: caller\r\nCookie: a=b\r\nanthropic-version: 2023-06-01\r\nX-Stainless-Retry-Count: 0\r\nHost: inference.local'
)
for ((i = 0; i < ${#seeds[@]}; i += 2)); do
  printf '%b' "${seeds[i + 1]}" >"$corpus/seed-${seeds[i]}"
done

echo "==> fuzzing for ${duration}s (corpus $corpus)"
log="$FUZZ_DIR/fuzz.log"
status=0
(cd "$artifacts" && "$bin" -max_len=16384 -max_total_time="$duration" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus") >"$log" 2>&1 ||
  status=$?

echo "executions: $(awk '/stat::number_of_executed_units/ {n += $2} END {print n + 0}' "$log")"
shopt -s nullglob
found=("$artifacts"/{crash,leak,timeout,oom,slow-unit}-*)
if ((status == 0 && ${#found[@]} == 0)); then
  echo "result: no finding"
  exit 0
fi
echo "result: FINDING (libFuzzer exit $status); see $log"
for f in "${found[@]}"; do echo "  reproducer: $f (run: $bin $f)"; done
grep -m1 -A15 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|deadly signal' \
  "$log" || true
exit 1
