#!/usr/bin/env bash
# bench/startup.sh — time to start a sandboxed /bin/true: ward against its peers, in ONE hyperfine run.
#
#   bench/setup-peers.sh && bench/startup.sh
#
# Peers that are not installed (or cannot run here) are skipped with the reason. Writes
# bench/results/startup.{json,md} (hyperfine's exports) and bench/results/startup-summary.md.
# Prints each median and the ratio ward/bwrap: target <= 0.5, limit <= 0.7. Exits 1 when ward was
# measured and is over the limit.
# Environment: WARD, SRT, PEERS (see bench/lib.sh), RUNS (default 50), WARMUP (default 3),
# RT=1 to run hyperfine (and so every command) at real-time priority (chrt -f 10, root only): on a
# machine that something else keeps busy this removes most CPU contention, not all of it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-50}"
WARMUP="${WARMUP:-3}"
TARGET=0.5
LIMIT=0.7
command -v hyperfine >/dev/null || die "hyperfine not installed (run bench/setup-peers.sh)"
command -v python3 >/dev/null || die "python3 not installed"

select_peers
make_workdir
trap 'rm -rf "$WORKDIR"' EXIT
cd "$WORKDIR"

args=()
for name in "${RUN_PEERS[@]}"; do
  peer_prefix "$name"
  args+=(-n "$(peer_label "$name" /bin/true)" "$(printf '%q ' "${PREFIX[@]}" /bin/true)")
done

rt=()
[[ "${RT:-0}" == 0 ]] || rt=(chrt -f 10)
log "hyperfine: ${#RUN_PEERS[@]} commands, $RUNS runs each, from $WORKDIR${rt[*]:+, under ${rt[*]}}"
"${rt[@]}" hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic \
  --export-json "$RESULTS/startup.json" --export-markdown "$RESULTS/startup.md" \
  "${args[@]}" >&2

# Summary: medians, ratios to bwrap, verdict.
python3 - "$RESULTS/startup.json" "$TARGET" "$LIMIT" "$(machine_line)" "$(versions_line)" \
  "${RUN_PEERS[@]}" >"$RESULTS/startup-summary.md" <<'PY'
import json, os, statistics, sys
path, target, limit, machine, versions, *peers = sys.argv[1:]
target, limit = float(target), float(limit)
res = json.load(open(path))["results"]
rows = dict(zip(peers, res))
med = {p: statistics.median(r["times"]) * 1e3 for p, r in rows.items()}
bw = med.get("bwrap")
rt = " at real-time priority (RT=1)" if os.environ.get("RT", "0") != "0" else ""
print(f"### Start-up: a sandboxed /bin/true (hyperfine -N, {len(res[0]['times'])} runs{rt})\n")
print(f"Machine: {machine}  ")
print(f"Versions: {versions}\n")
print("| command | median ms | mean ± σ ms | min ms | CPU user + sys ms | × bwrap |")
print("|---|---:|---:|---:|---:|---:|")
for p, r in rows.items():
    ratio = f"{med[p] / bw:.2f}" if bw else "–"
    print(f"| `{r['command']}` | {med[p]:.2f} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} "
          f"| {r['min']*1e3:.2f} | {r['user']*1e3:.1f} + {r['system']*1e3:.1f} | {ratio} |")
print()
print("CPU: hyperfine's mean user and system time of the whole process tree; it bounds how many "
      "sandboxes a second the machine can start, and other load disturbs it less than wall time.\n")
if "ward" in med and bw:
    q = med["ward"] / bw
    verdict = ("PASS (target met)" if q <= target else
               "PASS (under the limit, target missed)" if q <= limit else "FAIL (over the limit)")
    print(f"ward/bwrap median ratio: **{q:.2f}** — target ≤ {target}, limit ≤ {limit}: {verdict}")
elif "ward" not in med:
    print("ward was not measured (no usable ward binary).")
else:
    print("bwrap was not measured: no ratio.")
PY

busy_note >>"$RESULTS/startup-summary.md"
cat "$RESULTS/startup-summary.md"
if grep -q 'FAIL (over the limit)' "$RESULTS/startup-summary.md"; then exit 1; fi
