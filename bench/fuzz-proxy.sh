#!/usr/bin/env bash
# bench/fuzz-proxy.sh — fuzz the proxy's input handling with libFuzzer: request heads
# (fuzz/request_fuzz.cc: Beast's parser as the proxy configures it, target parsing, header
# rewriting) and host/IP literal normalisation (fuzz/host_fuzz.cc).
#
#   bench/fuzz-proxy.sh [SECONDS]     default 60, split evenly between the two targets
#
# Builds each target with clang (ASan + UBSan + libFuzzer), seeds its corpus, runs it and prints
# the number of executions and whether anything was found. Exits non-zero on a finding; the
# reproducer is left in the artifacts directory printed at the end. Corpora are kept between runs
# in FUZZ_DIR (under build-*, which git ignores).
# Environment: CXX (default clang++), FUZZ_DIR (default <repo>/build-fuzz-proxy).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
CXX="${CXX:-clang++}"
FUZZ_DIR="${FUZZ_DIR:-$ROOT/build-fuzz-proxy}"

die() {
  printf 'fuzz-proxy.sh: error: %s\n' "$*" >&2
  exit 2
}
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$SECONDS_TO_RUN'"
command -v "$CXX" >/dev/null || die "$CXX not found (install clang)"
half=$(((SECONDS_TO_RUN + 1) / 2))

build() { # NAME SOURCES...
  local name="$1"
  shift
  echo "==> building $FUZZ_DIR/bin/$name"
  # Boost.URL and fmt come from the system, uninstrumented: the coverage is ward's and Beast's.
  "$CXX" -std=c++20 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -O1 -g \
    -I"$ROOT/src" "$@" -lboost_url -lfmt -o "$FUZZ_DIR/bin/$name"
}

seed() { # NAME FILE CONTENT
  mkdir -p "$FUZZ_DIR/$1/corpus"
  printf '%b' "$3" >"$FUZZ_DIR/$1/corpus/$2"
}

run() { # NAME
  local name="$1" log="$FUZZ_DIR/$1/fuzz.log"
  mkdir -p "$FUZZ_DIR/$name/artifacts"
  echo "==> fuzzing $name for $half s"
  if ! "$FUZZ_DIR/bin/$name" -max_total_time="$half" -max_len=20000 -timeout=10 \
    -artifact_prefix="$FUZZ_DIR/$name/artifacts/" "$FUZZ_DIR/$name/corpus" >"$log" 2>&1; then
    tail -n 40 "$log"
    die "$name found a problem; reproducer in $FUZZ_DIR/$name/artifacts/"
  fi
  local execs
  execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' || true)"
  [[ -n "$execs" ]] || execs="$(grep -Eo '#[0-9]+' "$log" | tail -n 1 | tr -d '#')"
  echo "    $name: ${execs:-?} executions in $half s, nothing found"
}

mkdir -p "$FUZZ_DIR/bin"
build request_fuzz "$ROOT/fuzz/request_fuzz.cc" "$ROOT/src/proxy/target.cc" \
  "$ROOT/src/proxy/guard.cc" "$ROOT/src/proxy/headers.cc" "$ROOT/src/policy/values.cc" \
  "$ROOT/src/base/strings.cc"
build host_fuzz "$ROOT/fuzz/host_fuzz.cc" "$ROOT/src/proxy/guard.cc" "$ROOT/src/policy/values.cc" \
  "$ROOT/src/base/strings.cc"

seed request_fuzz connect 'CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n\r\n'
seed request_fuzz connect6 'CONNECT [::ffff:127.0.0.1]:8443 HTTP/1.1\r\n\r\n'
seed request_fuzz forward 'GET http://example.com:8080/a/b?q=1 HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-A\r\nX-A: 1\r\nProxy-Authorization: Basic eDp5\r\n\r\n'
seed request_fuzz chunked 'POST http://0x7f.1/upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
seed request_fuzz https 'GET https://example.com/ HTTP/1.1\r\n\r\n'
seed host_fuzz dotted '127.0.0.1'
seed host_fuzz octal '0177.0.0.01'
seed host_fuzz hex '0x7f.1'
seed host_fuzz mapped '[::ffff:169.254.169.254]'
seed host_fuzz name 'API.Example.COM.'

run request_fuzz
run host_fuzz
echo "==> no findings (work directory: $FUZZ_DIR)"
