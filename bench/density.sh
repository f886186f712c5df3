#!/usr/bin/env bash
# bench/density.sh — how fast N idle sandboxes start, and what each one costs the machine.
#
#   bench/setup-peers.sh && bench/density.sh
#
# For each peer (default: ward and bwrap), from a temporary working directory:
#   1. read the memory in use: system-wide (MemTotal - MemAvailable) and, when this script can make
#      one (root + cgroup v1 memory, or v2 with memory delegated), in a fresh memory cgroup that the
#      sandboxes are started in: that figure counts only them, kernel memory included, so it holds
#      even while something else runs on the machine,
#   2. start N (default 200) `<peer> sleep 600` in the background, back to back (posix_spawn from
#      bench/proctree.py: a shell loop's own forks would cost ~5 ms each on a VM),
#   3. poll /proc until every one has a process named `sleep` in its process tree; the wall time from
#      the first launch to that moment is the start time,
#   4. let it settle (SETTLE seconds, default 2) and read memory again: (after - before) / N is the
#      cost per sandbox; the median process-tree size is the processes per sandbox,
#   5. SIGTERM the N started processes, count what is left of their trees a moment later (a leak
#      check: a sandbox should not outlive the process that started it), SIGKILL everything left,
#      and verify nothing remains.
# Targets for ward: N=200 running within 3 s, <= 1 MB each. Writes bench/results/density.{json,md}.
# Bounded: TIMEOUT (default 60 s) for the start; a trap kills everything on any exit.
# Environment: WARD (see bench/lib.sh), N, TIMEOUT, SETTLE, PEERS (default "ward bwrap").
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${N:-200}"
TIMEOUT="${TIMEOUT:-60}"
SETTLE="${SETTLE:-2}"
PEERS="${PEERS:-ward bwrap}"
TARGET_S=3
TARGET_KB=1024
PROCTREE="$BENCH_DIR/proctree.py"
command -v python3 >/dev/null || die "python3 not installed"

select_peers
make_workdir

# --- memory cgroup for the sandboxes (optional) ---------------------------------------------------
CG_HOME="" # the cgroup directory this script started in
CG_REL=""  # its path as /proc/PID/cgroup shows it
CG_FILE="" # memory.usage_in_bytes (v1) or memory.current (v2)
CG_DIR=""  # the current peer's cgroup, a child of CG_HOME
CG_LEFT=() # cgroups that could not be removed (something left a child cgroup or a task in them)
cg_init() {
  memory_cgroup || return 0
  grep -qx "$$" "$MEMCG_DIR/cgroup.procs" 2>/dev/null || return 0
  CG_HOME="$MEMCG_DIR" CG_REL="$MEMCG_REL" CG_FILE="$MEMCG_FILE"
}
cg_make() { # cg_make NAME: a fresh child cgroup for one peer, or nothing
  CG_DIR=""
  [[ -n "$CG_HOME" ]] || return 0
  local dir="$CG_HOME/ward-bench-density-$$-$1"
  mkdir "$dir" 2>/dev/null && [[ -r "$dir/$CG_FILE" ]] && CG_DIR="$dir"
  return 0
}
cg_kb() { if [[ -n "$CG_DIR" ]]; then echo $(($(<"$CG_DIR/$CG_FILE") / 1024)); else echo -1; fi; }
cg_remove() {
  [[ -n "$CG_DIR" ]] || return 0
  local i
  for ((i = 0; i < 20; i++)); do # the cgroup can be removed once its last task is reaped
    rmdir "$CG_DIR" 2>/dev/null && break
    sleep 0.1
  done
  if [[ -d "$CG_DIR" ]]; then
    log "warning: could not remove $CG_DIR; left inside: $(cd "$CG_DIR" && find . -mindepth 1 -type d | head -n 5 | tr '\n' ' ')"
    CG_LEFT+=("$CG_DIR")
  fi
  CG_DIR=""
}

# --- the started sandboxes and their cleanup ------------------------------------------------------
RUNDIR=""   # the current peer's: roots (the PIDs started), snap (their trees), err, result.json
LAUNCHER="" # the launcher (proctree.py launch), parent of the started sandboxes
STARTED=()  # PIDs of the sandboxes started for the current peer
kill_all() {
  local SNAP="$RUNDIR/snap"
  if ((${#STARTED[@]} == 0)) && [[ -n "$RUNDIR" && -s "$RUNDIR/roots" ]]; then
    mapfile -t STARTED <"$RUNDIR/roots"
  fi
  if ((${#STARTED[@]})); then
    python3 "$PROCTREE" snapshot "$RUNDIR/roots" "$SNAP" || true
    kill -KILL "${STARTED[@]}" 2>/dev/null || true
    local pid _ i
    for ((i = 0; i < 50; i++)); do # up to 5 s: SIGKILL whatever of the trees is still there
      while read -r pid _; do kill -KILL "$pid" 2>/dev/null || true; done < <(python3 "$PROCTREE" alive "$SNAP")
      [[ -z "$(python3 "$PROCTREE" alive "$SNAP")" ]] && break
      sleep 0.1
    done
    STARTED=()
  fi
  if [[ -n "$LAUNCHER" ]]; then # it exits once it has reaped the last of them
    local j
    for ((j = 0; j < 20; j++)); do
      kill -0 "$LAUNCHER" 2>/dev/null || break
      sleep 0.1
    done
    kill "$LAUNCHER" 2>/dev/null || true
    wait "$LAUNCHER" 2>/dev/null || true
    LAUNCHER=""
  fi
  RUNDIR=""
  cg_remove
}
cleanup() {
  kill_all
  rm -rf "$WORKDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$WORKDIR"

used_kb_once() { awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {print t-a}' /proc/meminfo; }
used_kb() { # median of 5 readings, 0.2 s apart
  local i
  for ((i = 0; i < 5; i++)); do
    used_kb_once
    sleep 0.2
  done | sort -n | sed -n 3p
}
sleep_count() { python3 "$PROCTREE" count-cmd sleep 600; }
load1() { cut -d' ' -f1 /proc/loadavg; }

cg_init
if [[ -n "$CG_HOME" ]]; then
  log "density: measuring each peer's sandboxes in a memory cgroup under $CG_HOME"
else
  log "density: no memory cgroup available (needs root and cgroup v1 memory or delegated v2): system-wide figure only"
fi

: >"$WORKDIR/results.tsv"
for name in "${RUN_PEERS[@]}"; do
  peer_prefix "$name"
  label="$(peer_label "$name" "sleep 600")"
  rundir="$WORKDIR/$name"
  RUNDIR="$rundir"
  mkdir -p "$rundir"
  baseline_sleeps="$(sleep_count)"
  load_before="$(load1)"
  cg_make "$name"
  before="$(used_kb)"
  log "density: $N x '$label'"

  cg_before="$(cg_kb)"
  cg_args=()
  [[ -z "$CG_DIR" ]] || cg_args=("$CG_DIR/cgroup.procs" "$CG_HOME/cgroup.procs")
  python3 "$PROCTREE" launch "$RUNDIR" "$N" "$TIMEOUT" "${cg_args[@]}" -- "${PREFIX[@]}" sleep 600 &
  LAUNCHER=$!
  for ((i = 0; i < (TIMEOUT + 30) * 10; i++)); do
    [[ -f "$RUNDIR/result.json" ]] && break
    kill -0 "$LAUNCHER" 2>/dev/null || break
    sleep 0.1
  done
  [[ -f "$RUNDIR/result.json" ]] || die "the launcher failed (proctree.py launch)"
  mapfile -t STARTED <"$RUNDIR/roots"
  sleep "$SETTLE"
  after="$(used_kb)"
  # The launcher (a python3) was not running for "before": take its own memory out of "after".
  launcher_kb="$(awk '/^(RssAnon|RssShmem):/ {s += $2} END {print s + 0}' "/proc/$LAUNCHER/status" 2>/dev/null || echo 0)"
  after=$((after - launcher_kb))
  cg_after="$(cg_kb)"
  in_cg=0
  [[ -z "$CG_DIR" ]] || in_cg="$(python3 "$PROCTREE" in-cgroup "$RUNDIR/snap" "${CG_REL%/}/${CG_DIR##*/}")"
  load_after="$(load1)"

  # Tear down: SIGTERM the started processes only, then see what survived them.
  kill -TERM "${STARTED[@]}" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive=0
    for pid in "${STARTED[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    ((alive == 0)) && break
    sleep 0.1
  done
  sleep 0.5
  left_after_term="$(python3 "$PROCTREE" alive "$RUNDIR/snap" | wc -l)"
  cg_left_before=${#CG_LEFT[@]}
  kill_all
  cg_left=$((${#CG_LEFT[@]} - cg_left_before))
  left_after_kill="$(python3 "$PROCTREE" alive "$rundir/snap" | wc -l)"
  stray_sleeps=$(($(sleep_count) - baseline_sleeps))

  {
    printf '%s\t' "$name" "$label" "$before" "$after" "$cg_before" "$cg_after" "$in_cg" \
      "$load_before" "$load_after" "$left_after_term" "$left_after_kill" "$stray_sleeps" "$cg_left"
    tr -d '\n' <"$rundir/result.json"
    echo
  } >>"$WORKDIR/results.tsv"
  if [[ -s "$rundir/err" ]]; then
    log "  stderr of '$label' (most frequent lines):"
    sort "$rundir/err" | uniq -c | sort -rn | head -n 5 >&2
  fi
  sleep 2 # let the namespaces' asynchronous teardown finish before the next peer's baseline
done

python3 - "$WORKDIR/results.tsv" "$N" "$TARGET_S" "$TARGET_KB" "$RESULTS/density.json" \
  "$(machine_line)" "$(versions_line)" "$(nproc)" >"$RESULTS/density.md" <<'PY'
import json, sys
path, n, target_s, target_kb, out, machine, versions, ncpu = sys.argv[1:]
n, target_s, target_kb, ncpu = int(n), float(target_s), int(target_kb), int(ncpu)
rows = []
for line in open(path):
    (peer, label, before, after, cg_before, cg_after, in_cg, load_b, load_a,
     left_term, left_kill, stray, cg_left, wait_json) = line.rstrip("\n").split("\t")
    w = json.loads(wait_json)
    cg_ok = int(cg_before) >= 0 and int(in_cg) == w["ready"] and w["ready"] > 0
    rows.append({
        "peer": peer, "label": label, "n": n, "ready": w["ready"], "dead": w["dead"],
        "timed_out": w["timed_out"],
        "launch_s": w["launched_at"] - w["t0"],
        "start_s": (w["ready_at"] - w["t0"]) if w["ready_at"] else None,
        "system_kb_per_sandbox": (int(after) - int(before)) / n,
        "cgroup_kb_per_sandbox": (int(cg_after) - int(cg_before)) / n if cg_ok else None,
        "sleeps_in_cgroup": int(in_cg),
        "load_before": float(load_b), "load_after": float(load_a),
        "procs_per_sandbox": w["procs_per_sandbox"],
        "left_after_sigterm": int(left_term), "left_after_sigkill": int(left_kill),
        "stray_sleeps": int(stray), "cgroup_not_removable": int(cg_left),
    })
json.dump({"machine": machine, "versions": versions, "results": rows}, open(out, "w"), indent=2)

def kb(r):  # the figure the verdict uses: the cgroup one when there is one
    return r["cgroup_kb_per_sandbox"] if r["cgroup_kb_per_sandbox"] is not None else r["system_kb_per_sandbox"]

print(f"### Density: {n} idle sandboxes (`sleep 600`)\n")
print(f"Machine: {machine}  ")
print(f"Versions: {versions}\n")
print("| command | all running after s | KB per sandbox (cgroup) | KB per sandbox (system) "
      "| processes per sandbox | left after SIGTERM to the started PIDs | left after cleanup |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    start = f"{r['start_s']:.2f}" if r["start_s"] is not None else \
        f"not all: {r['ready']}/{n} ready, {r['dead']} exited" + (" (timeout)" if r["timed_out"] else "")
    procs = f"{r['procs_per_sandbox']:g}" if r["procs_per_sandbox"] is not None else "–"
    cg = f"{r['cgroup_kb_per_sandbox']:.0f}" if r["cgroup_kb_per_sandbox"] is not None else \
        ("–" if r["sleeps_in_cgroup"] == 0 else f"n/a ({r['sleeps_in_cgroup']}/{r['ready']} inside)")
    print(f"| `{r['label']}` | {start} | {cg} | {r['system_kb_per_sandbox']:.0f} | {procs} "
          f"| {r['left_after_sigterm']} | {r['left_after_sigkill'] + max(r['stray_sleeps'], 0)} |")
print()
print("KB per sandbox: (cgroup) is the growth of a memory cgroup holding only the sandboxes, kernel "
      "memory included; (system) is the growth of MemTotal − MemAvailable, which anything else "
      "running on the machine disturbs. The start time includes launching them (posix_spawn from "
      f"one process, {n} times): " + ", ".join(f"{r['peer']} {r['launch_s']:.2f} s" for r in rows) + ".")
print()
for r in rows:
    if r["peer"] != "ward":
        continue
    ok_t = r["start_s"] is not None and r["start_s"] <= target_s
    ok_m = kb(r) <= target_kb
    st = f"only {r['ready']} running after the timeout" if r["start_s"] is None else \
        f"{n} running after **{r['start_s']:.2f} s**"
    print(f"ward: {st} (target ≤ {target_s:g} s: {'PASS' if ok_t else 'MISSED'}), "
          f"**{kb(r):.0f} KB** per sandbox (target ≤ {target_kb} KB: {'PASS' if ok_m else 'MISSED'})")
if not any(r["peer"] == "ward" for r in rows):
    print("ward was not measured (no usable ward binary).")
for r in rows:
    if r["start_s"] is None:
        print(f"\n**WARNING: {r['peer']}: only {r['ready']} of {n} sandboxes got running "
              f"({r['dead']} exited{', timed out' if r['timed_out'] else ''}).**")
if any(r["left_after_sigkill"] or r["stray_sleeps"] > 0 for r in rows):
    print("\n**WARNING: processes were left behind after cleanup.**")
for r in rows:
    if r["cgroup_not_removable"]:
        print(f"\n**WARNING: after {r['peer']}'s sandboxes were gone, the measuring cgroup could not be "
              "removed (a child cgroup or a task was left in it).**")
PY
busy_note >>"$RESULTS/density.md"
cat "$RESULTS/density.md"
if grep -q 'WARNING:' "$RESULTS/density.md"; then exit 1; fi
