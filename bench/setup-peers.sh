#!/usr/bin/env bash
# bench/setup-peers.sh — install the tools ward is compared with (idempotent; run as root).
#
#   Debian packages: hyperfine bubblewrap firejail time (and squid tinyproxy nginx wrk for the proxy
#                    benchmarks, mitmproxy for the HTTPS interception one), socat ripgrep
#                    (sandbox-runtime needs them on Linux), valgrind and linux-perf (for
#                    tools/startup-order.sh; Ubuntu: linux-tools-$(uname -r) by hand), npm if absent
#   npm:             @anthropic-ai/sandbox-runtime (the `srt` command) into bench/.peers/
#
# How srt is made to work here (sandbox-runtime 0.0.83 on Linux):
#   - it refuses to start without `socat` and `rg` on PATH ("Sandbox dependencies not available"),
#     and uses bubblewrap; all three come from Debian.
#   - it declares node >= 22.12 but runs on Debian 12's node 18 and on node 20 (tested).
#   - as root it needs CAP_SETFCAP in the bounding set (to map uid 0 in its user namespace); a
#     normal root shell has it. Ubuntu 24.04+ additionally needs
#     kernel.apparmor_restrict_unprivileged_userns=0 for it (and for bwrap) as a non-root user.
#   - no settings file is needed; bench/ passes `--settings bench/srt-settings.json` (the built-in
#     defaults written out: no network, no extra write paths) so that a ~/.srt-settings.json on the
#     benchmarking machine cannot change what is measured.
#   - srt scans the current directory with ripgrep for files to protect, so the benchmarks run it
#     from a small temporary directory, as they do ward.
# Environment: SRT_VERSION (default 0.0.83, the version in shared/reference/peers.md).
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PEERS_DIR="$BENCH_DIR/.peers"
SRT_VERSION="${SRT_VERSION:-0.0.83}"
SRT_PKG="@anthropic-ai/sandbox-runtime"
PKGS=(hyperfine bubblewrap firejail time socat ripgrep squid tinyproxy nginx wrk mitmproxy python3 util-linux procps
  valgrind)
# perf is Debian's linux-perf; Ubuntu ships it as linux-tools-$(uname -r), installed by hand there.
if apt-cache show linux-perf >/dev/null 2>&1; then PKGS+=(linux-perf); fi
DAEMONS=(squid tinyproxy nginx)

say() { printf '==> %s\n' "$*"; }
die() {
  printf 'setup-peers.sh: error: %s\n' "$*" >&2
  exit 1
}

LOG="$(mktemp -t ward-peers.XXXXXX)"
POLICY_RC=""
cleanup() {
  rm -f "$LOG"
  [[ -z "$POLICY_RC" ]] || rm -f "$POLICY_RC"
}
trap cleanup EXIT

is_installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]; }

# --- Debian packages ---------------------------------------------------------------------------
todo=()
for p in "${PKGS[@]}"; do is_installed "$p" || todo+=("$p"); done
command -v npm >/dev/null || todo+=(npm) # nodesource's nodejs ships npm itself; Debian's does not
if ((${#todo[@]})); then
  ((EUID == 0)) || die "packages missing (${todo[*]}); run as root: sudo $0"
  export DEBIAN_FRONTEND=noninteractive
  # The proxy benchmarks start their own squid/tinyproxy/nginx on loopback ports: keep the
  # packages' system services from being started by the install (standard policy-rc.d "101").
  for d in "${DAEMONS[@]}"; do
    if [[ " ${todo[*]} " == *" $d "* && ! -e /usr/sbin/policy-rc.d ]]; then
      POLICY_RC=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\n# temporary, from ward bench/setup-peers.sh\nexit 101\n' >"$POLICY_RC"
      chmod +x "$POLICY_RC"
      break
    fi
  done
  say "apt-get update"
  apt-get update -qq >"$LOG" 2>&1 || {
    tail -n 20 "$LOG" >&2
    die "apt-get update failed"
  }
  say "apt-get install ${todo[*]}"
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${todo[@]}" >"$LOG" 2>&1 || {
    tail -n 30 "$LOG" >&2
    die "apt-get install failed"
  }
  if [[ -n "$POLICY_RC" ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    for d in "${DAEMONS[@]}"; do
      if [[ " ${todo[*]} " == *" $d "* ]]; then systemctl disable "$d" >/dev/null 2>&1 || true; fi
    done
  fi
else
  say "Debian packages: all installed"
fi
command -v node >/dev/null || die "node not found after installing npm"

# --- sandbox-runtime (srt) from npm --------------------------------------------------------------
SRT="$PEERS_DIR/node_modules/.bin/srt"
have="$(node -p "require('$PEERS_DIR/node_modules/$SRT_PKG/package.json').version" 2>/dev/null || true)"
if [[ "$have" == "$SRT_VERSION" && -x "$SRT" ]]; then
  say "srt $have: already in $PEERS_DIR"
else
  say "npm install $SRT_PKG@$SRT_VERSION into $PEERS_DIR"
  mkdir -p "$PEERS_DIR"
  [[ -f "$PEERS_DIR/package.json" ]] || printf '{ "private": true }\n' >"$PEERS_DIR/package.json"
  npm install --prefix "$PEERS_DIR" --no-audit --no-fund --loglevel=error \
    "$SRT_PKG@$SRT_VERSION" >"$LOG" 2>&1 || {
    cat "$LOG" >&2
    die "npm install $SRT_PKG failed"
  }
fi

# --- check every peer runs here ------------------------------------------------------------------
WORK="$(mktemp -d -t ward-peers-check.XXXXXX)"
trap 'cleanup; rm -rf "$WORK"' EXIT
cd "$WORK"
fail=0
check() {
  local name="$1" out
  shift
  if out="$(timeout 120 "$@" 2>&1 </dev/null)"; then
    printf '    ok    %s\n' "$name"
  else
    printf '    FAIL  %s: %s\n' "$name" "$(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    fail=1
  fi
}
say "checking the peers (from $WORK)"
check "unshare -Urnpf --mount-proc true" unshare -Urnpf --mount-proc true
check "bwrap --unshare-all ... true" bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc true
check "firejail --quiet --noprofile --net=none true" firejail --quiet --noprofile --net=none true
check "srt true" "$SRT" --settings "$BENCH_DIR/srt-settings.json" true
if ((fail)); then
  capbnd="$(awk '/^CapBnd:/ {print $2}' /proc/self/status)"
  if ((EUID == 0)) && ! (((0x$capbnd >> 31) & 1)); then
    echo "    note: CAP_SETFCAP is not in this root shell's bounding set; srt and bwrap need it as root" >&2
  fi
  die "some peers do not run here (see above); the benchmarks will skip them"
fi
say "peers ready; srt is $SRT"
