#!/usr/bin/env bash
# bench/run-all.sh — every benchmark in sequence, and a dated summary in bench/results/.
#
#   bench/setup-peers.sh && bench/run-all.sh
#
# Runs bench/startup.sh, bench/memory.sh, bench/density.sh, bench/proxy.sh, bench/https.sh,
# bench/inference.sh, bench/gateway.sh and bench/mcp.sh (each one's own environment applies: WARD, SRT, PEERS,
# RUNS, N, ...; proxy.sh and https.sh need root and skip without it),
# keeps going when one fails, and writes
# bench/results/summary-YYYY-MM-DD.md (their tables, the machine, the commit) and
# bench/results/run-YYYY-MM-DD.log (their full output). Exits 1 if any of them failed.
# With UPDATE_DOCS=1, also replaces the results tables in docs/benchmarks.md (between the
# <!-- results:NAME --> markers) with this run's; `bench/run-all.sh --docs-only` does only that,
# from the results already in bench/results/.
# Run it on a quiet machine: a build running beside it shows up in every number.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# update_docs run-all|own: the results' header names bench/run-all.sh (a whole run) or each
# benchmark's own command (--docs-only, after benchmarks run one by one).
update_docs() {
  python3 - "$ROOT/docs/benchmarks.md" "$RESULTS" "$1" <<'PY'
import os, re, sys
doc, results, producer = sys.argv[1:]
text = open(doc).read()
root = ("startup", "memory", "density")  # the others need root
for name, f in (("startup", "startup-summary.md"), ("memory", "memory.md"), ("density", "density.md"),
                ("proxy", "proxy.md"), ("https", "https.md"), ("inference", "inference.md"),
                ("gateway", "gateway.md"), ("mcp", "mcp.md")):
    path = os.path.join(results, f)
    if not os.path.exists(path):
        continue
    body = open(path).read().strip()
    body = re.sub(r"^### .*\n+", "", body)  # the doc has its own heading
    command = "bench/run-all.sh" if producer == "run-all" else \
        ("" if name in root else "sudo ") + f"bench/{name}.sh"
    body = f"Latest results (`{command}`):\n\n" + body
    text = re.sub(rf"(<!-- results:{name} -->\n).*?(<!-- /results:{name} -->)",
                  lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)
open(doc, "w").write(text)
PY
  log "updated the results in docs/benchmarks.md"
}

if [[ "${1:-}" == --docs-only ]]; then
  update_docs own
  exit 0
fi

day="$(date -u +%F)"
summary="$RESULTS/summary-$day.md"
logfile="$RESULTS/run-$day.log"
: >"$logfile"

status=()
failed=0
for b in startup memory density proxy https inference gateway mcp; do
  log "=== $b ($(date -u +%T))"
  rm -f "$RESULTS/$b.md" "$RESULTS/$b-summary.md" # so that a failed run leaves no stale table
  rc=0
  "$BENCH_DIR/$b.sh" 2>&1 | tee -a "$logfile" || rc="${PIPESTATUS[0]}"
  status+=("$b: $([[ $rc == 0 ]] && echo ok || echo "exit $rc")")
  ((rc == 0)) || failed=1
done

{
  echo "# ward benchmarks, $day"
  echo
  echo "Machine: $(machine_line)  "
  echo "Commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')  "
  echo "Versions: $(versions_line)  "
  echo "Scripts: ${status[*]}"
  echo
  for f in startup-summary memory density proxy https inference gateway mcp; do
    if [[ -f "$RESULTS/$f.md" ]]; then
      sed 's/^### /## /' "$RESULTS/$f.md"
      echo
    fi
  done
  echo "Full output: run-$day.log; raw data: startup.json, memory.json, density.json, proxy.json, https.json, inference.json, gateway.json and mcp.json (and proxy.log, https.log, inference.log, gateway.log)."
} >"$summary"
log "summary: $summary"

[[ "${UPDATE_DOCS:-0}" == 0 ]] || update_docs run-all
exit "$failed"
