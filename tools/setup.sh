#!/usr/bin/env bash
# tools/setup.sh — from a fresh Debian 12 / Ubuntu 22.04+ machine to a running ward.
#
#   sudo tools/setup.sh              install dependencies, build into build/, run `build/ward demo`
#   sudo tools/setup.sh --no-demo    install dependencies and build only
#   sudo tools/setup.sh --deps-only  install dependencies only
#
# Re-runs are fast: apt is skipped when every package is already installed (dpkg-query), and the
# build is incremental. Without root it still works when nothing needs installing.
# Environment: BUILD_DIR (default <repo>/build), JOBS (parallel build jobs, default: ninja's).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
LOG="$(mktemp -t ward-setup.XXXXXX)"
trap 'rm -f "$LOG"' EXIT

say() { printf '==> %s\n' "$*"; }
warn() { printf 'setup.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'setup.sh: error: %s\n' "$*" >&2
  exit 1
}
usage() { sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

do_build=1
do_demo=1
while (($#)); do
  case "$1" in
    --no-demo) do_demo=0 ;;
    --deps-only) do_build=0 do_demo=0 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: $1"
      ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------------
# Packages. Boost is resolved separately (Debian 12 has 1.81 with Boost.URL; Ubuntu may not).
readonly BUILD_PKGS=(
  cmake ninja-build g++ pkg-config clang clang-format lld
  libssl-dev libyaml-cpp-dev nlohmann-json3-dev libseccomp-dev libcap-dev libsqlite3-dev
  libcli11-dev libspdlog-dev libfmt-dev libexpected-dev libgtest-dev libgmock-dev libbenchmark-dev
  libarchive-dev libacl1-dev  # libacl.a: a static ward links libarchive.a, which needs it
)
readonly TEST_PKGS=(
  iproute2 procps util-linux curl ca-certificates python3 nodejs tmux passwd libcap2-bin git sudo
  python3-requests python3-pip wget openssl
)

is_installed() { [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]; }

has_candidate() {
  local c
  c="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
  [[ -n "$c" && "$c" != "(none)" ]]
}

# The Boost pairs we accept, best first: "<boost dev package> <Boost.URL dev package>".
boost_pairs() {
  echo "libboost1.81-dev libboost-url1.81-dev"
  echo "libboost-dev libboost-url-dev"
  # Any other versioned Boost.URL (1.81+) the archive has, newest first.
  apt-cache pkgnames libboost-url1. 2>/dev/null | grep -E '^libboost-url1\.[0-9]+-dev$' | sort -rV |
    while read -r url; do
      local ver="${url#libboost-url}"
      echo "libboost${ver%-dev}-dev $url"
    done
}

# Sets BOOST_PKGS. With $1 = installed, only considers pairs that are already installed.
resolve_boost() {
  local mode="$1" a b
  while read -r a b; do
    if [[ "$mode" == installed ]]; then
      if is_installed "$a" && is_installed "$b"; then BOOST_PKGS=("$a" "$b") && return 0; fi
    elif has_candidate "$a" && has_candidate "$b"; then
      BOOST_PKGS=("$a" "$b") && return 0
    fi
  done < <(boost_pairs)
  if [[ "$mode" == available ]] && has_candidate libboost-dev; then
    warn "no Boost.URL package in this distribution's archive (Boost >= 1.81 is needed);"
    warn "installing libboost-dev anyway — the build will fail until Boost.URL is available."
    BOOST_PKGS=(libboost-dev)
    return 0
  fi
  return 1
}

# Prints the packages among "$@" that are not installed (one dpkg-query call for all of them).
missing_pkgs() {
  local -A ok=()
  local name status p
  while read -r name status; do
    [[ "$status" == installed ]] && ok["${name%%:*}"]=1
  done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
  for p in "$@"; do [[ -n "${ok[$p]:-}" ]] || printf '%s\n' "$p"; done
}

install_deps() {
  command -v dpkg-query >/dev/null || die "this script needs a Debian or Ubuntu system (dpkg-query not found)"
  command -v apt-get >/dev/null ||
    die "this script needs a Debian or Ubuntu system (apt-get not found)"

  BOOST_PKGS=()
  if resolve_boost installed; then
    local missing
    mapfile -t missing < <(missing_pkgs "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
    if ((${#missing[@]} == 0)); then
      say "dependencies: all installed (Boost: ${BOOST_PKGS[*]})"
      return 0
    fi
  fi

  ((EUID == 0)) || die "packages are missing; run as root: sudo $0"

  export DEBIAN_FRONTEND=noninteractive
  say "apt-get update"
  apt-get update -qq >"$LOG" 2>&1 || {
    tail -n 20 "$LOG" >&2
    die "apt-get update failed (log above)"
  }

  resolve_boost available || die "no Boost development package available (tried libboost1.81-dev, libboost-dev)"

  local want=("${BUILD_PKGS[@]}" "${BOOST_PKGS[@]}" "${TEST_PKGS[@]}") p unavailable=() todo=()
  for p in "${want[@]}"; do
    is_installed "$p" && continue
    if has_candidate "$p"; then todo+=("$p"); else unavailable+=("$p"); fi
  done
  ((${#unavailable[@]} == 0)) ||
    die "not available from apt on this system: ${unavailable[*]} (Debian 12 or Ubuntu 22.04+ with universe enabled is needed)"

  if ((${#todo[@]} == 0)); then
    say "dependencies: all installed"
    return 0
  fi
  say "apt-get install ${#todo[@]} package(s): ${todo[*]}"
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${todo[@]}" >"$LOG" 2>&1 || {
    tail -n 30 "$LOG" >&2
    die "apt-get install failed (log above)"
  }
  mapfile -t todo < <(missing_pkgs "${want[@]}")
  ((${#todo[@]} == 0)) || die "still not installed after apt-get: ${todo[*]}"
  say "dependencies: installed"
}

# ---------------------------------------------------------------------------------------------
check_kernel() {
  local f
  f=/proc/sys/kernel/unprivileged_userns_clone
  if [[ -r $f && "$(<"$f")" == 0 ]]; then
    warn "unprivileged user namespaces are disabled ($f = 0): rootless ward cannot run;"
    warn "enable them with: sysctl -w kernel.unprivileged_userns_clone=1"
  fi
  f=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
  if [[ -r $f && "$(<"$f")" == 1 ]]; then
    warn "AppArmor restricts unprivileged user namespaces ($f = 1, Ubuntu 24.04+ default):"
    warn "rootless sandboxes lose their capabilities; see 'build/ward doctor'. To lift it:"
    warn "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0"
  fi
  return 0
}

# The user who asked for this: SUDO_USER when run through sudo by a non-root user.
invoking_user() {
  if ((EUID == 0)) && [[ -n "${SUDO_USER:-}" && "${SUDO_USER}" != root ]] && id -u "$SUDO_USER" >/dev/null 2>&1; then
    printf '%s\n' "$SUDO_USER"
  fi
}

give_back_build_dir() {
  local user
  user="$(invoking_user)"
  [[ -n "$user" && -d "$BUILD_DIR" ]] || return 0
  chown -R "$user:$(id -gn "$user")" "$BUILD_DIR" || warn "could not chown $BUILD_DIR to $user"
}

build() {
  local cache="$BUILD_DIR/CMakeCache.txt" gen
  if [[ -f $cache ]]; then
    gen="$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$cache")"
    [[ "$gen" == Ninja ]] ||
      die "$BUILD_DIR was configured with generator '$gen', not Ninja; remove it (rm -rf '$BUILD_DIR') and re-run"
  fi
  say "configure: cmake -S $ROOT -B $BUILD_DIR -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo"
  # Whatever happens from here on, a build dir made by root for a sudo user goes back to that user.
  trap 'give_back_build_dir; rm -f "$LOG"' EXIT
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$LOG" 2>&1 || {
    cat "$LOG" >&2
    die "cmake configure failed (output above)"
  }
  local jobs=()
  [[ -z "${JOBS:-}" ]] || jobs=(-j "$JOBS")
  say "build: cmake --build $BUILD_DIR ${jobs[*]}"
  cmake --build "$BUILD_DIR" "${jobs[@]}" || die "build failed (compiler output above)"
  [[ -x "$BUILD_DIR/ward" ]] || die "build finished but $BUILD_DIR/ward was not produced"
  say "built $BUILD_DIR/ward"
}

demo() {
  local user
  user="$(invoking_user)"
  say "demo: build/ward demo${user:+ (as $user)}"
  cd "$ROOT"
  if [[ -n "$user" ]]; then
    # The point of ward is rootless sandboxes: show it as the user who ran sudo.
    runuser -u "$user" -- "$BUILD_DIR/ward" demo || die "'ward demo' failed (as $user); try '$BUILD_DIR/ward doctor'"
  else
    "$BUILD_DIR/ward" demo || die "'ward demo' failed; try '$BUILD_DIR/ward doctor'"
  fi
}

install_deps
((do_build)) || exit 0
check_kernel
build
((do_demo)) || {
  say "done (demo skipped): run '$BUILD_DIR/ward demo' to try it"
  exit 0
}
demo
say "done"
