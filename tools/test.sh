#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs the whole test suite —
# unit tests, integration tests against the real ward binary (as root: also as the unprivileged
# user ward-test), a format check and a short fuzzing smoke run.
#
#   sudo tools/test.sh            # everything (CI runs exactly this through .ci/run)
#   tools/test.sh -R Seccomp      # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $EUID -eq 0 ]]; then
  tools/setup.sh --no-demo
  # The rootless half of the suite runs as this unprivileged user.
  id ward-test >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin ward-test
else
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C build
fi

echo "== format"
tools/check-format.sh

echo "== tests"
ctest --test-dir build --output-on-failure --timeout 300 -j2 "$@"

if [[ $# -eq 0 ]]; then
  echo "== fuzz smoke (policy parser, 20 s)"
  bench/fuzz-policy.sh 20
fi
