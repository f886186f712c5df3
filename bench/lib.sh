# shellcheck shell=bash
# bench/lib.sh — shared by the bench/*.sh scripts (sourced, not run).
#
# The peers, as command prefixes; each benchmark appends its payload (`true`, `sleep 600`):
#   ward      $WARD run --                                   (every layer on, default policy)
#   true      (nothing: the payload itself, /bin/true)
#   unshare   unshare -Urnpf --mount-proc
#   bwrap     bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc
#   firejail  firejail --quiet --noprofile --net=none
#   srt       srt --settings bench/srt-settings.json    (Anthropic sandbox-runtime, from bench/.peers)
#
# Environment: WARD (default build/ward), SRT (default bench/.peers/node_modules/.bin/srt, then PATH),
# PEERS (space-separated subset of the names above, in that order by default).

export LC_ALL=C
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="$BENCH_DIR/results"
SRT_SETTINGS="$BENCH_DIR/srt-settings.json"
ALL_PEERS=(ward true unshare bwrap firejail srt)
mkdir -p "$RESULTS"

WARD="${WARD:-$ROOT/build/ward}"
if [[ -z "${SRT:-}" ]]; then
  if [[ -x "$BENCH_DIR/.peers/node_modules/.bin/srt" ]]; then
    SRT="$BENCH_DIR/.peers/node_modules/.bin/srt"
  else
    SRT="$(command -v srt || true)"
  fi
fi

log() { printf '%s\n' "$*" >&2; }

# pid_running PID: alive and not a zombie.
pid_running() { [[ -e "/proc/$1" && "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" != Z ]]; }
# stop_pid PID [SECONDS]: stops a child of this shell by PID — SIGTERM, up to SECONDS (3) for it
# to end, then SIGKILL (said on stderr) — and reaps it.
stop_pid() {
  local pid="$1" grace="${2:-3}" i
  if pid_running "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      pid_running "$pid" || break
      sleep 0.1
    done
    if pid_running "$pid"; then
      log "pid $pid still running $grace s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}
die() {
  printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

# Absolute path of WARD (it may be given relative to the caller's directory; benchmarks cd away).
[[ "$WARD" == /* || ! -e "$WARD" ]] || WARD="$(cd "$(dirname "$WARD")" && pwd)/$(basename "$WARD")"

# peer_prefix NAME: sets the array PREFIX to the peer's command prefix.
peer_prefix() {
  case "$1" in
    ward) PREFIX=("$WARD" run --) ;;
    true) PREFIX=() ;;
    unshare) PREFIX=(unshare -Urnpf --mount-proc) ;;
    bwrap) PREFIX=(bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc) ;;
    firejail) PREFIX=(firejail --quiet --noprofile --net=none) ;;
    srt) PREFIX=("$SRT" --settings "$SRT_SETTINGS") ;;
    *) die "unknown peer: $1" ;;
  esac
}

# peer_label NAME PAYLOAD: the human name of "peer + payload", as the tables show it.
peer_label() {
  local payload="$2"
  case "$1" in
    ward) echo "ward run -- $payload" ;;
    true) echo "$payload" ;;
    unshare) echo "unshare -Urnpf --mount-proc ${payload#/bin/}" ;;
    bwrap) echo "bwrap --unshare-all --ro-bind / / --dev /dev --proc /proc ${payload#/bin/}" ;;
    firejail) echo "firejail --quiet --noprofile --net=none ${payload#/bin/}" ;;
    srt) echo "srt ${payload#/bin/}" ;;
  esac
}

# peer_check NAME: is the peer installed and able to run `true` here? Prints the reason if not.
peer_check() {
  local name="$1" bin out
  peer_prefix "$name"
  case "$name" in
    ward) bin="$WARD" ;;
    true) bin=/bin/true ;;
    srt) bin="$SRT" ;;
    *) bin="$(command -v "${PREFIX[0]}" || true)" ;;
  esac
  if [[ -z "$bin" || ! -x "$bin" ]]; then
    case "$name" in
      ward) echo "no ward binary at '$WARD' (build it, or set WARD=path/to/ward)" ;;
      srt) echo "srt not installed (run bench/setup-peers.sh)" ;;
      *) echo "${PREFIX[0]} not installed (run bench/setup-peers.sh)" ;;
    esac
    return 1
  fi
  if ! out="$(timeout 60 "${PREFIX[@]}" /bin/true </dev/null 2>&1)"; then
    echo "'$(peer_label "$name" true)' fails here: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    return 1
  fi
}

# select_peers: sets RUN_PEERS to the peers (from PEERS or all) that work, logging each skip.
select_peers() {
  local name reason
  local -a wanted
  read -r -a wanted <<<"${PEERS:-${ALL_PEERS[*]}}"
  RUN_PEERS=()
  for name in "${wanted[@]}"; do
    if reason="$(peer_check "$name")"; then
      RUN_PEERS+=("$name")
    else
      log "skip $name: $reason"
    fi
  done
  ((${#RUN_PEERS[@]} > 0)) || die "no peer can run here"
}

# A scratch working directory: `ward run` uses the current directory as the sandbox's workdir,
# and srt scans the current directory for files to protect, so both get a small empty one.
make_workdir() {
  WORKDIR="$(mktemp -d -t ward-bench.XXXXXX)"
  chmod 755 "$WORKDIR"
}

machine_line() {
  printf '%s, %s CPUs, Linux %s, %s MiB RAM, %s\n' \
    "$(. /etc/os-release && echo "$PRETTY_NAME")" "$(nproc)" "$(uname -r)" \
    "$(awk '/MemTotal/ {printf "%d", $2/1024}' /proc/meminfo)" "$(date -u '+%Y-%m-%d %H:%M UTC')"
}

versions_line() {
  local v=()
  v+=("ward $([[ -x "$WARD" ]] && git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)")
  command -v bwrap >/dev/null && v+=("$(bwrap --version 2>/dev/null | head -n1)")
  command -v firejail >/dev/null && v+=("$(firejail --version 2>/dev/null | head -n1)")
  [[ -n "$SRT" && -x "$SRT" ]] && v+=("srt $("$SRT" --version 2>/dev/null | head -n1)")
  command -v hyperfine >/dev/null && v+=("$(hyperfine --version 2>/dev/null | head -n1)")
  local IFS=';'
  printf '%s\n' "${v[*]}" | sed 's/;/; /g'
}

# cpu_busy: percent of all CPUs busy over the next second (from /proc/stat), as an integer.
cpu_busy() {
  local a b
  a="$(head -n1 /proc/stat)"
  sleep 1
  b="$(head -n1 /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x); split(b, y); t = 0
    for (i = 2; i <= n; i++) t += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%d\n", (t > 0) ? 100 * (t - idle) / t : 0
  }'
}

# busy_note: a markdown paragraph when something else kept the machine busy, else nothing: the CPUs
# were more than 25% busy in the second before the benchmark (sampled when this file is sourced)
# or in the second after it (sampled now, once the benchmark's own processes are gone).
BUSY_START="$(cpu_busy)"
busy_note() {
  local end
  end="$(cpu_busy)"
  if ((BUSY_START > 25 || end > 25)); then
    printf '\n**The machine was busy**: other processes used %s%% of the CPUs just before this benchmark and %s%% just after; they skew these figures, so re-run on a quiet machine.\n' "$BUSY_START" "$end"
  fi
}

# memory_cgroup: the memory cgroup this script runs in, when it may make children there: sets
# MEMCG_DIR (its directory), MEMCG_REL (its path as /proc/PID/cgroup shows it) and MEMCG_FILE
# (memory.usage_in_bytes on v1, memory.current on v2), and returns 0; else returns 1. v1 memory,
# or v2 with the memory controller enabled for children.
# shellcheck disable=SC2034 # the MEMCG_* variables are read by the scripts that source this file
memory_cgroup() {
  local rel mnt
  MEMCG_DIR="" MEMCG_REL="" MEMCG_FILE=""
  rel="$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' /proc/self/cgroup)"
  if [[ -n "$rel" ]]; then
    mnt="$(awk '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup" && $(i+3) ~ /(^|,)memory(,|$)/) print $5; break }}' /proc/self/mountinfo | head -n1)"
    MEMCG_FILE=memory.usage_in_bytes
  else
    rel="$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)"
    mnt="$(awk '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break }}' /proc/self/mountinfo | head -n1)"
    MEMCG_FILE=memory.current
    grep -qw memory "$mnt${rel%/}/cgroup.subtree_control" 2>/dev/null || return 1
  fi
  [[ -n "$mnt" && -w "$mnt${rel%/}" ]] || return 1
  MEMCG_DIR="$mnt${rel%/}" MEMCG_REL="$rel"
}
