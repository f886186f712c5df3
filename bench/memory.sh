#!/usr/bin/env bash
# bench/memory.sh — peak resident memory of starting a sandboxed /bin/true, ward against its peers.
#
#   bench/setup-peers.sh && bench/memory.sh
#
# Each command runs RUNS times (default 10) under `/usr/bin/time -v`; the figure is the median of
# "Maximum resident set size": the peak RSS of the largest single process of the tree (getrusage
# RUSAGE_CHILDREN semantics: a process's maxrss covers the children it reaped), not a sum.
# Target: ward <= 4 MB (4096 KB). Writes bench/results/memory.{json,md}.
# Environment: WARD, SRT, PEERS (see bench/lib.sh), RUNS.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-10}"
TARGET_KB=4096
[[ -x /usr/bin/time ]] || die "/usr/bin/time not installed (run bench/setup-peers.sh: package 'time')"

select_peers
make_workdir
trap 'rm -rf "$WORKDIR"' EXIT
cd "$WORKDIR"

raw="$WORKDIR/raw.tsv" # peer \t label \t kb
: >"$raw"
for name in "${RUN_PEERS[@]}"; do
  peer_prefix "$name"
  label="$(peer_label "$name" /bin/true)"
  log "memory: $label ($RUNS runs)"
  for ((i = 0; i < RUNS; i++)); do
    if ! /usr/bin/time -v -o "$WORKDIR/time.txt" "${PREFIX[@]}" /bin/true </dev/null >/dev/null 2>"$WORKDIR/err.txt"; then
      die "'$label' failed: $(tail -n 3 "$WORKDIR/err.txt")"
    fi
    kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORKDIR/time.txt")"
    printf '%s\t%s\t%s\n' "$name" "$label" "$kb" >>"$raw"
  done
done

python3 - "$raw" "$TARGET_KB" "$RESULTS/memory.json" "$(machine_line)" "$(versions_line)" \
  >"$RESULTS/memory.md" <<'PY'
import json, statistics, sys
raw, target, out, machine, versions = sys.argv[1:]
target = int(target)
runs = {}
for line in open(raw):
    peer, label, kb = line.rstrip("\n").split("\t")
    runs.setdefault(peer, {"label": label, "kb": []})["kb"].append(int(kb))
for r in runs.values():
    r["median_kb"] = statistics.median(r["kb"])
json.dump({"machine": machine, "versions": versions, "target_kb": target, "results": runs},
          open(out, "w"), indent=2)
bw = runs.get("bwrap", {}).get("median_kb")
n = len(next(iter(runs.values()))["kb"])
print(f"### Peak RSS: a sandboxed /bin/true (/usr/bin/time -v, median of {n})\n")
print(f"Machine: {machine}  ")
print(f"Versions: {versions}\n")
print("| command | median peak RSS KB | min–max KB | × bwrap |")
print("|---|---:|---:|---:|")
for p, r in runs.items():
    ratio = f"{r['median_kb'] / bw:.2f}" if bw else "–"
    print(f"| `{r['label']}` | {r['median_kb']:.0f} | {min(r['kb'])}–{max(r['kb'])} | {ratio} |")
print()
if "ward" in runs:
    w = runs["ward"]["median_kb"]
    print(f"ward peak RSS: **{w:.0f} KB** — target ≤ {target} KB: "
          + ("PASS" if w <= target else "MISSED"))
else:
    print("ward was not measured (no usable ward binary).")
PY
busy_note >>"$RESULTS/memory.md"
cat "$RESULTS/memory.md"
