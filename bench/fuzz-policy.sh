#!/usr/bin/env bash
# bench/fuzz-policy.sh — fuzz the policy loader (fuzz/policy_fuzz.cc) with libFuzzer.
#
#   bench/fuzz-policy.sh [SECONDS]     default 60
#
# Builds the target with clang (ASan + UBSan + libFuzzer) straight from the sources, seeds a corpus
# from the OpenShell policy files (plus the built-in default), runs for SECONDS and prints the number
# of executions and whether anything was found. Exits non-zero on a finding (crash, leak, timeout,
# sanitizer report); the reproducer is left in the work directory printed at the end.
# The corpus is kept between runs in FUZZ_DIR (under build-*, which git ignores).
# Environment: CXX (default clang++), FUZZ_DIR (default <repo>/build-fuzz-policy).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
CXX="${CXX:-clang++}"
FUZZ_DIR="${FUZZ_DIR:-$ROOT/build-fuzz-policy}"
SHARED="$ROOT/../shared/reference/openshell-policies"

die() {
  printf 'fuzz-policy.sh: error: %s\n' "$*" >&2
  exit 2
}
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$SECONDS_TO_RUN'"
command -v "$CXX" >/dev/null || die "$CXX not found (install clang)"

mkdir -p "$FUZZ_DIR/corpus" "$FUZZ_DIR/artifacts"
BIN="$FUZZ_DIR/policy_fuzz"

sources=()
for f in "$ROOT"/src/base/*.cc "$ROOT"/src/policy/*.cc; do
  [[ "$f" == *_test.cc ]] || sources+=("$f")
done
echo "==> building $BIN"
# yaml-cpp and fmt come from the system, uninstrumented: the fuzzer's coverage is ward's code.
"$CXX" -std=c++20 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -O1 -g \
  -I"$ROOT/src" "${sources[@]}" "$ROOT/fuzz/policy_fuzz.cc" -lyaml-cpp -lfmt -o "$BIN"

# Seeds: every OpenShell file (policies and the non-policy ones, which exercise unknown keys).
if [[ -d "$SHARED" ]]; then
  for f in "$SHARED"/*.yaml; do cp -f "$f" "$FUZZ_DIR/corpus/seed-$(basename "$f")"; done
fi
cat >"$FUZZ_DIR/corpus/seed-ward-sections.yaml" <<'YAML'
version: 1
filesystem_policy: {include_workdir: true, read_only: [/usr, /etc], read_write: [/tmp]}
landlock: {compatibility: hard_requirement}
process: {run_as_user: 1000, run_as_group: sandbox}
resources: {memory: 512M, pids: 64, cpu: 0.5, timeout: 1h30m}
environment: {pass: [TERM, "LC_*"], set: {A: 1, B: "x"}}
network_policies:
  r:
    endpoints:
      - {host: "*.example.com", ports: [443, 8443], protocol: rest, enforcement: audit,
         rules: [{allow: {method: GET, path: "/a/**", query: {q: {any: ["x*"]}}}}],
         deny_rules: [{method: DELETE}], allowed_ips: [10.0.0.0/8, "fd00::/8"],
         credential_binding: {provider: gh}, tls: skip}
    binaries: [/usr/bin/curl, {path: "/**"}]
YAML
printf '{"version": 1, "network_policies": {"a": {"endpoints": [{"host": "[::1]", "port": 1}]}}}' \
  >"$FUZZ_DIR/corpus/seed-json.json"

echo "==> fuzzing for ${SECONDS_TO_RUN}s (corpus $FUZZ_DIR/corpus)"
LOG="$FUZZ_DIR/fuzz.log"
status=0
(cd "$FUZZ_DIR/artifacts" && "$BIN" -max_len=4096 -max_total_time="$SECONDS_TO_RUN" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$FUZZ_DIR/artifacts/" "$FUZZ_DIR/corpus") >"$LOG" 2>&1 || status=$?

runs="$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "$LOG")"
echo "executions: $runs"
findings=("$FUZZ_DIR"/artifacts/{crash,leak,timeout,oom,slow-unit}-*)
if ((status != 0)) || [[ -e "${findings[0]}" ]]; then
  echo "result: FINDING (libFuzzer exit $status); see $LOG"
  for f in "${findings[@]}"; do [[ -e "$f" ]] && echo "  reproducer: $f (run: $BIN $f)"; done
  grep -m1 -A15 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error' "$LOG" || true
  exit 1
fi
echo "result: no finding"
