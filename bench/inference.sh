#!/usr/bin/env bash
# bench/inference.sh — what https://inference.local (issue 5) adds to a model call: the same client
# calling the same model backend directly from the host, and from inside `ward run` through
# inference.local, in ONE run on the same machine.
#
#   bench/inference.sh            # about 1½ minutes with the defaults on 2 vCPUs; root not needed
#
# The backend is tests/upstream/model_backend.py (the fake OpenAI/Anthropic backend of the tests)
# on 127.0.0.1, over TLS (an ECDSA P-256 certificate for 127.0.0.1 from a throw-away test CA),
# with --api-key (requests without its key get 401) and --chunk-ms CHUNK_MS (a streamed answer's
# events CHUNK_MS apart). Backends are the operator's configuration, outside ward's SSRF guard, so
# loopback serves. ward gets a routes file with one route to it (protocol openai_chat_completions,
# model bench-model, the key inline), its upstream CA (--upstream-ca), a temporary state directory
# (its CA) and a policy with no network policy at all: inference.local is served outside it.
#
# The client is ward-loadgen connect-tls, POST /v1/chat/completions, one kept-alive connection per
# worker, verifying the certificate it is shown (--cafile):
#   direct  on the host, to 127.0.0.1:PORT, trusting the test CA, sending the backend's key;
#   ward    inside the sandbox, CONNECT inference.local:443 through ward's proxy (127.0.0.1:3128,
#           HTTPS_PROXY there), trusting /etc/ward/tls/ca-bundle.pem, sending the placeholder key
#           of OPENAI_API_KEY (ward drops it and puts the route's key in). ward reads the body,
#           puts the route's model in (the same name as the client's: both get the same answer),
#           and keeps its connection to the backend from call to call.
# Both bodies are the same JSON: a system message and a user message of CALL_KIB KiB of text.
#
# What runs (each RUNS times, default 3, direct then ward in each round; tables give medians):
#   call-NK  one call at a time for LAT_DURATION s, not streamed, N KiB of prompt (each of
#            CALL_KIB): latency p50/p90/p99 per call; the figure is ward's p50 − direct's
#   stream   one stream at a time for STREAM_DURATION s ("stream": true, stream_options.
#            include_usage, a 1 KiB prompt, --events): the gaps between consecutive events'
#            arrivals within a stream (the backend sends one every CHUNK_MS ms), and the time from
#            the request to the first event; the figure is ward's gap p50 − direct's
#   many     STREAMS streams at once (--concurrency STREAMS --requests STREAMS --events: each on
#            its own new connection, set up concurrently): errors, the time until the last one
#            ended, and the streams' latencies and gaps under that load
# For ward, the CPU time of the ward process (whose proxy thread does the work; the sandbox's
# processes are not in it) over each measurement: the sum of its threads' run time
# (/proc/PID/task/*/schedstat, ns), per call or stream. One `ward run` a round runs every
# measurement in turn: its sandbox waits for a go file before each, and writes the client's exit
# status into a FIFO this script blocks on, so ward's CPU is read exactly around each load and no
# polling competes with it.
#
# Targets (issue 5; a miss is reported, not fatal): a non-streaming call's p50 at most 1 ms over
# direct; a stream's inter-event gap p50 at most 0.2 ms over direct; STREAMS concurrent streams
# without an error. Exits 1 when a ward measurement failed to run (ward or the client could not
# start, a timeout); errors counted by the client are in the tables and the verdicts.
#
# Environment: WARD (see bench/lib.sh), LOADGEN (default build/bench/ward-loadgen), BACKEND
# (default tests/upstream/model_backend.py), RUNS (3), LAT_DURATION (3), STREAM_DURATION (6),
# CHUNK_MS (20), STREAMS (200), CALL_KIB ("1 64": the prompt sizes of the call measurements),
# INFERENCE_TESTS (default "call stream many"; "call" stands for every CALL_KIB size).
# Writes bench/results/inference.{md,json,log}; a run that does not finish leaves
# inference-partial.log. Cleanup: a trap stops the processes this script started (by PID) and
# deletes its temporary directories, on any exit (Ctrl-C included).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-3}"
LAT_DURATION="${LAT_DURATION:-3}"
STREAM_DURATION="${STREAM_DURATION:-6}"
CHUNK_MS="${CHUNK_MS:-20}"
STREAMS="${STREAMS:-200}"
read -r -a CALL_SIZES <<<"${CALL_KIB:-1 64}"
LOADGEN="${LOADGEN:-$ROOT/build/bench/ward-loadgen}"
BACKEND="${BACKEND:-$ROOT/tests/upstream/model_backend.py}"
read -r -a WANT <<<"${INFERENCE_TESTS:-call stream many}"
KEY=bench-key # the backend's key (a throw-away): in the routes file, and sent by direct clients

TESTS=()
for t in "${WANT[@]}"; do
  case "$t" in
    call) for k in "${CALL_SIZES[@]}"; do TESTS+=("call-${k}k"); done ;;
    stream | many) TESTS+=("$t") ;;
    *) die "unknown test '$t' (names: call stream many)" ;;
  esac
done
for k in "${CALL_SIZES[@]}"; do
  [[ "$k" =~ ^[1-9][0-9]*$ ]] || die "CALL_KIB: '$k' is not a whole number of KiB"
done
for n in RUNS LAT_DURATION STREAM_DURATION CHUNK_MS STREAMS; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a whole number above 0, not '${!n}'"
done
for tool in python3 openssl; do command -v "$tool" >/dev/null || die "$tool not installed"; done
[[ -x "$WARD" ]] || die "no ward binary at '$WARD' (build it, or set WARD=path/to/ward)"
[[ -x "$LOADGEN" ]] || die "no ward-loadgen at '$LOADGEN' (ninja -C build ward-loadgen, or set LOADGEN)"
[[ -r "$BACKEND" ]] || die "no model backend at '$BACKEND' (set BACKEND)"
[[ "$LOADGEN" == /* ]] || LOADGEN="$(cd "$(dirname "$LOADGEN")" && pwd)/$(basename "$LOADGEN")"

# --- temporary files, started processes and their cleanup ------------------------------------
make_workdir                                    # the sandbox's working directory (markers, outputs)
T="$(mktemp -d -t ward-inference-bench.XXXXXX)" # CA, certificate, bodies, routes, policy; read by the sandbox
chmod 755 "$T"
WARD_STATE="$(mktemp -d -t ward-inference-bench-state.XXXXXX)" # ward's CA, apart from T
LOGFILE="$T/inference.log"
PARTIAL="$RESULTS/inference-partial.log"
FINISHED=0
: >"$LOGFILE"
BACKEND_PID=""
WARD_BG=""
cleanup() {
  [[ -z "$WARD_BG" ]] || stop_pid "$WARD_BG"
  [[ -z "$BACKEND_PID" ]] || stop_pid "$BACKEND_PID"
  if ((!FINISHED)) && [[ -s "$LOGFILE" ]]; then
    {
      cat "$LOGFILE"
      for f in backend.err ward.err; do
        [[ -s "$T/$f" ]] && printf '### %s\n%s\n' "$f" "$(tail -n 50 "$T/$f")"
      done
    } >"$PARTIAL" 2>/dev/null || true
    log "inference: did not finish; its log so far is in $PARTIAL"
  fi
  rm -rf "$WORKDIR" "$T" "$WARD_STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$WORKDIR"

now() { date +%s.%N; }
cpu_ns() { { cat /proc/"$1"/task/*/schedstat 2>/dev/null || true; } | awk '{s += $1} END {if (NR) printf "%.0f\n", s}'; }

# --- the backend -----------------------------------------------------------------------------
ossl() { openssl "$@" 2>>"$T/openssl.err" || die "openssl $1: $(tail -n 3 "$T/openssl.err")"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=ward bench test CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign -keyout "$T/ca-key.pem" -out "$T/ca.pem"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=model.test \
  -keyout "$T/key.pem" -out "$T/cert.csr"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$T/cert.ext"
ossl x509 -req -in "$T/cert.csr" -CA "$T/ca.pem" -CAkey "$T/ca-key.pem" -days 2 \
  -extfile "$T/cert.ext" -out "$T/cert.pem"
python3 "$BACKEND" --addr 127.0.0.1 --port 0 --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
  --api-key "$KEY" --chunk-ms "$CHUNK_MS" --ready "$T/backend.ready" >"$T/backend.err" 2>&1 &
BACKEND_PID=$!
for ((i = 0; i < 200; i++)); do
  [[ -s "$T/backend.ready" ]] && break
  kill -0 "$BACKEND_PID" 2>/dev/null || die "the model backend exited: $(tail -n 3 "$T/backend.err")"
  sleep 0.05
done
[[ -s "$T/backend.ready" ]] || die "the model backend did not start within 10 s"
PORT="$(cut -d' ' -f2 "$T/backend.ready")"
log "inference: model backend on 127.0.0.1:$PORT (TLS), an event every $CHUNK_MS ms when streaming"

# The request bodies: a system message, and a user message of KIB KiB of words.
body() { # body FILE KIB [STREAM]
  python3 - "$@" <<'PY'
import json, sys
path, kib, stream = sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3
words = ("Summarise the change below and list the files it touches. " * (kib * 1024 // 59 + 1))
body = {"model": "bench-model", "max_tokens": 256,
        "messages": [{"role": "system", "content": "You are a coding agent."},
                     {"role": "user", "content": words[:kib * 1024]}]}
if stream:
    body.update(stream=True, stream_options={"include_usage": True})
open(path, "w").write(json.dumps(body))
PY
}
for k in "${CALL_SIZES[@]}"; do body "$T/call-${k}k.json" "$k"; done
body "$T/stream.json" 1 stream
cp "$T/stream.json" "$T/many.json"

cat >"$T/routes.yaml" <<EOF
routes:
  - name: bench
    endpoint: https://127.0.0.1:$PORT/v1
    model: bench-model
    protocols: [openai_chat_completions]
    api_key: $KEY
EOF
cat >"$T/policy.yaml" <<EOF
version: 1
filesystem_policy:
  include_workdir: true
  read_only: [/usr, /lib, /lib64, /bin, /etc, $T, $(dirname "$LOADGEN")]
network_policies: {}
EOF

# client_args TEST PEER: the ward-loadgen arguments of one measurement.
client_args() {
  local test="$1" peer="$2"
  ARGS=(connect-tls --path /v1/chat/completions --body-file "$T/$test.json" --timeout 60)
  case "$test" in
    call-*) ARGS+=(--concurrency 1 --duration "$LAT_DURATION") ;;
    stream) ARGS+=(--concurrency 1 --duration "$STREAM_DURATION" --events) ;;
    many) ARGS+=(--concurrency "$STREAMS" --requests "$STREAMS" --events) ;;
  esac
  if [[ "$peer" == direct ]]; then
    ARGS+=(--target "127.0.0.1:$PORT" --cafile "$T/ca.pem" --header "Authorization: Bearer $KEY")
  else
    ARGS+=(--proxy 127.0.0.1:3128 --target inference.local:443 --cafile /etc/ward/tls/ca-bundle.pem
      --header "Authorization: Bearer ward-inference-local") # OPENAI_API_KEY in the sandbox
  fi
}
limit_of() { # seconds a measurement may take before it counts as failed
  case "$1" in
    call-*) echo $((LAT_DURATION + 60)) ;;
    stream) echo $((STREAM_DURATION + 60)) ;;
    many) echo 120 ;;
  esac
}

# --- running the measurements ----------------------------------------------------------------
# Each measurement appends one JSON line to $T/runs.jsonl: test, peer, run, the client's exit
# status, ward's CPU ns over it (null for direct), the wall time, and "raw": ward-loadgen's JSON.
RUNS_JSONL="$T/runs.jsonl"
: >"$RUNS_JSONL"
record() { # record TEST PEER RUN RC CPU_NS WALL OUT ERR
  local raw
  raw="$(grep -m1 '^{"mode"' "$7" 2>/dev/null || true)"
  printf '{"test":"%s","peer":"%s","run":%s,"rc":%s,"cpu_ns":%s,"wall_s":%s,"raw":%s}\n' \
    "$1" "$2" "$3" "$4" "${5:-null}" "$6" "${raw:-null}" >>"$RUNS_JSONL"
  {
    printf '### %s %s run %s: rc %s, ward CPU ns %s, %s s\n' "$1" "$2" "$3" "$4" "${5:-n/a}" "$6"
    cat "$7" "$8" 2>/dev/null
  } >>"$LOGFILE"
}

direct_round() { # direct_round RUN
  local t rc t0
  for t in "${TESTS[@]}"; do
    client_args "$t" direct
    t0="$(now)"
    rc=0
    timeout "$(limit_of "$t")" "$LOADGEN" "${ARGS[@]}" >"$T/out" 2>"$T/err" || rc=$?
    record "$t" direct "$1" "$rc" "" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')" \
      "$T/out" "$T/err"
  done
}

# Inside the sandbox: runs D/phase.0, D/phase.1, ... one after another; before each it creates
# D/ready.N and waits for D/go.N; each one's output goes to D/out.N and D/err.N, its exit status
# into the FIFO D/done. Then it waits for D/quit (ward's CPU is read after the last one too).
cat >"$T/phases.sh" <<'EOF'
d=$1 i=0
while [ -e "$d/phase.$i" ]; do
  : >"$d/ready.$i"
  while [ ! -e "$d/go.$i" ]; do sleep 0.01; done
  /bin/bash "$d/phase.$i" >"$d/out.$i" 2>"$d/err.$i"
  echo $? >"$d/done"
  i=$((i + 1))
done
while [ ! -e "$d/quit" ]; do sleep 0.02; done
EOF

# wait_ward_file FILE SECONDS: until FILE exists (polling 50 times a second) while ward runs.
wait_ward_file() {
  local i
  for ((i = 0; i < $2 * 50; i++)); do
    [[ -e "$1" ]] && return 0
    kill -0 "$WARD_BG" 2>/dev/null || return 1
    sleep 0.02
  done
  return 1
}

ward_round() { # ward_round RUN: one `ward run`, every measurement in it
  local d="$WORKDIR/phases" i t fd rc a b t0 wall cpu watcher
  rm -rf "$d"
  mkdir "$d"
  mkfifo "$d/done"
  for i in "${!TESTS[@]}"; do
    client_args "${TESTS[$i]}" ward
    printf 'exec %q' "$LOADGEN" >"$d/phase.$i"
    printf ' %q' "${ARGS[@]}" >>"$d/phase.$i"
  done
  exec {fd}<>"$d/done" # read-write: opening it does not wait for a writer
  "$WARD" run --state-dir "$WARD_STATE" --upstream-ca "$T/ca.pem" --inference "$T/routes.yaml" \
    -p "$T/policy.yaml" -- /bin/sh "$T/phases.sh" "$d" >"$T/ward.out" 2>"$T/ward.err" &
  WARD_BG=$!
  # Should ward end before the sandbox reports, this ends the wait (it looks once a second).
  (
    while kill -0 "$WARD_BG" 2>/dev/null; do sleep 1; done
    echo 125 >"$d/done"
  ) &
  watcher=$!
  for i in "${!TESTS[@]}"; do
    t="${TESTS[$i]}"
    rc=125 a="" b="" wall=0
    if wait_ward_file "$d/ready.$i" 30; then
      a="$(cpu_ns "$WARD_BG")"
      t0="$(now)"
      touch "$d/go.$i"
      read -r -t "$(limit_of "$t")" -u "$fd" rc || rc=125
      [[ "$rc" =~ ^[0-9]+$ ]] || rc=125
      b="$(cpu_ns "$WARD_BG")"
      wall="$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')"
    fi
    [[ -n "$a" && -n "$b" ]] && cpu=$((b - a)) || cpu=""
    record "$t" ward "$1" "$rc" "$cpu" "$wall" "$d/out.$i" "$d/err.$i"
    ((rc == 0)) || break
  done
  touch "$d/quit"
  for ((i = 0; i < 100; i++)); do
    kill -0 "$WARD_BG" 2>/dev/null || break
    sleep 0.05
  done
  stop_pid "$WARD_BG"
  WARD_BG=""
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  exec {fd}<&-
  if [[ -s "$T/ward.err" ]]; then
    printf "### ward's stderr, run %s\n" "$1" >>"$LOGFILE"
    cat "$T/ward.err" >>"$LOGFILE"
  fi
}

LOADS=()
for ((r = 1; r <= RUNS; r++)); do
  LOADS+=("$(cut -d' ' -f1 /proc/loadavg)")
  log "inference: run $r/$RUNS ($(date -u +%T), load ${LOADS[-1]}): ${TESTS[*]}, direct then ward"
  direct_round "$r"
  ward_round "$r"
done

# --- results ---------------------------------------------------------------------------------
settings="RUNS=$RUNS LAT_DURATION=$LAT_DURATION STREAM_DURATION=$STREAM_DURATION CHUNK_MS=$CHUNK_MS STREAMS=$STREAMS CALL_KIB=\"${CALL_SIZES[*]}\""
versions="ward $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)'); $(python3 --version); $(openssl version | awk '{print $1, $2}')"
python3 - "$RUNS_JSONL" "$RESULTS/inference.json" "$(machine_line)" "$versions" "$settings" \
  "${LOADS[*]}" "$CHUNK_MS" "$STREAMS" "$LAT_DURATION" "$STREAM_DURATION" >"$RESULTS/inference.md" <<'PY'
import json, statistics, sys
(path, out, machine, versions, settings, loads, chunk_ms, streams, lat_duration,
 stream_duration) = sys.argv[1:]
loads = [float(x) for x in loads.split()]
chunk_ms, streams = int(chunk_ms), int(streams)
runs = [json.loads(l) for l in open(path) if l.strip()]
med = statistics.median
label = {"direct": "direct, from the host", "ward": "ward, from inside `ward run` via https://inference.local"}

def metrics(r):
    raw = r["raw"]
    m = {"ok": r["rc"] == 0 and raw is not None}
    if raw is None:
        return m
    lat = raw["latency_ms"]
    m.update(calls=raw["requests"], duration=raw["duration_s"],
             errors={k: n for k, n in raw["errors"].items() if n},
             p50=lat["p50"], p90=lat["p90"], p99=lat["p99"], max=lat["max"])
    if "events" in raw:
        m.update(events=raw["events"], gap50=raw["event_gap_ms"]["p50"],
                 gap99=raw["event_gap_ms"]["p99"], gapmean=raw["event_gap_ms"]["mean"],
                 first50=raw["first_event_ms"]["p50"], first99=raw["first_event_ms"]["p99"])
    if r["cpu_ns"] is not None and raw["requests"]:
        m["cpu_us"] = r["cpu_ns"] / 1e3 / raw["requests"]
        if raw.get("events"):
            m["cpu_us_event"] = r["cpu_ns"] / 1e3 / raw["events"]
    return m

table = {}
for r in runs:
    r["metrics"] = metrics(r)
    table.setdefault((r["test"], r["peer"]), []).append(r["metrics"])

def v(test, peer, key):
    vals = [m[key] for m in table.get((test, peer), []) if m.get("ok") and m.get(key) is not None]
    return med(vals) if vals else None

def us(ms):  # a figure in ms as µs
    return "–" if ms is None else f"{ms * 1000:,.0f}"

def over(test, key, peer="ward"):  # ward − direct, µs
    a, d = v(test, peer, key), v(test, "direct", key)
    return None if a is None or d is None else (a - d) * 1000

def signed(x):
    return "–" if x is None else f"{x:+,.0f}"

def fmt(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}"

def errors(test, peer):
    ms = table.get((test, peer), [])
    failed = sum(1 for m in ms if not m.get("ok"))
    kinds = {}
    for m in ms:
        for k, n in m.get("errors", {}).items():
            kinds[k] = kinds.get(k, 0) + n
    parts = [f"{n:,} {k}" for k, n in sorted(kinds.items())]
    if failed:
        parts.append(f"{failed} of {len(ms)} runs failed")
    return ", ".join(parts) if parts else "0"

def total(test, peer, key):
    return sum(m.get(key) or 0 for m in table.get((test, peer), []) if m.get("ok"))

peers = ["direct", "ward"]
def order(t):  # calls by prompt size, then stream, then many
    return (0, int(t[5:-1])) if t.startswith("call-") else (1 if t == "stream" else 2, 0)
tests = sorted({t for t, _ in table}, key=order)
n_runs = max(len(ms) for ms in table.values()) if table else 0
print("### inference.local: a model call through ward against the same call made directly\n")
print(f"Machine: {machine}  ")
print(f"Versions: {versions}  ")
print(f"Command: `bench/inference.sh` ({settings}); every figure is the median of {n_runs} runs, "
      "direct then ward in each round.  ")
if loads:
    print(f"Load: the 1-minute load average was {min(loads):.2f}–{max(loads):.2f} at the start of the "
          f"{len(loads)} rounds (the benchmark's own processes count in it too).")
print()
lines, verdicts = [], []

def verdict(name, value, ok, target):
    verdicts.append({"figure": name, "value": value, "target": target,
                     "pass": None if ok is None else bool(ok)})
    state = "not measured" if ok is None else ("PASS" if ok else "MISSED")
    lines.append(f"- {name}: **{value}** — target {target}: {state}")

calls = [t for t in tests if t.startswith("call-")]
if calls:
    print(f"#### One call at a time, not streamed: `ward-loadgen connect-tls --concurrency 1 "
          f"--duration {lat_duration}`, POST /v1/chat/completions\n")
    print("| prompt | path | calls | p50 µs | p50 over direct µs | p90 µs | p99 µs | ward CPU µs/call | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for t in calls:
        for p in peers:
            if (t, p) not in table:
                continue
            print(f"| {t[5:-1]} KiB | {label[p]} | {fmt(v(t, p, 'calls'))} | {us(v(t, p, 'p50'))} "
                  f"| {signed(over(t, 'p50')) if p == 'ward' else '–'} | {us(v(t, p, 'p90'))} "
                  f"| {us(v(t, p, 'p99'))} | {fmt(v(t, p, 'cpu_us'))} | {errors(t, p)} |")
    print("\nLatency: from writing the request to reading the response's last byte, over a kept-alive "
          "connection (its set-up is not counted). ward CPU: the ward process's run time over the "
          "measurement ÷ calls.\n")
    for t in calls:
        x = over(t, "p50")
        verdict(f"Added latency per non-streaming call, {t[5:-1]} KiB prompt (p50, ward − direct)",
                "–" if x is None else f"{x:+,.0f} µs", None if x is None else x <= 1000, "≤ 1 ms")

if "stream" in tests:
    t = "stream"
    print(f"#### One stream at a time: `--concurrency 1 --duration {stream_duration} --events`, "
          f"\"stream\": true, an event every {chunk_ms} ms from the backend\n")
    print("| path | streams | events | gap p50 µs | gap p50 over direct µs | gap mean over direct µs "
          "| gap p99 µs | first event p50 µs | first event over direct µs | ward CPU µs/stream (/event) | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in peers:
        if (t, p) not in table:
            continue
        w = p == "ward"
        cpu = f"{fmt(v(t, p, 'cpu_us'))} ({fmt(v(t, p, 'cpu_us_event'))})" if w else "–"
        print(f"| {label[p]} | {fmt(v(t, p, 'calls'))} | {fmt(v(t, p, 'events'))} | {us(v(t, p, 'gap50'))} "
              f"| {signed(over(t, 'gap50')) if w else '–'} | {signed(over(t, 'gapmean')) if w else '–'} "
              f"| {us(v(t, p, 'gap99'))} | {us(v(t, p, 'first50'))} "
              f"| {signed(over(t, 'first50')) if w else '–'} | {cpu} | {errors(t, p)} |")
    print("\nGap: between the arrivals of two consecutive events of one stream (read by read, as a client "
          f"sees them; the backend sleeps {chunk_ms} ms between its writes). First event: from writing "
          "the request to reading the end of the first event.\n")
    x = over(t, "gap50")
    verdict("Added inter-event latency while streaming (gap p50, ward − direct)",
            "–" if x is None else f"{x:+,.0f} µs", None if x is None else x <= 200, "≤ 0.2 ms")

if "many" in tests:
    t = "many"
    print(f"#### {streams} streams at once: `--concurrency {streams} --requests {streams} --events`, "
          "each on a new connection\n")
    print("| path | streams done (all runs) | errors (all runs) | time until the last ended ms | stream p50 / p99 ms "
          "| first event p50 / p99 ms | gap p50 / p99 ms | ward CPU µs/stream |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for p in peers:
        if (t, p) not in table:
            continue
        print(f"| {label[p]} | {total(t, p, 'calls'):,} of {streams * len(table[(t, p)]):,} | {errors(t, p)} "
              f"| {fmt((v(t, p, 'duration') or 0) * 1000) if v(t, p, 'duration') is not None else '–'} "
              f"| {fmt(v(t, p, 'p50'), 1)} / {fmt(v(t, p, 'p99'), 1)} "
              f"| {fmt(v(t, p, 'first50'), 2)} / {fmt(v(t, p, 'first99'), 2)} "
              f"| {fmt(v(t, p, 'gap50'), 2)} / {fmt(v(t, p, 'gap99'), 2)} "
              f"| {fmt(v(t, p, 'cpu_us')) if p == 'ward' else '–'} |")
    print("\nEach stream's latency and first event include its connection's set-up (TCP, for ward the "
          "CONNECT, the TLS handshake; ward also connects to the backend and shakes hands with it); "
          "the time is from the start to the end of the last stream.\n")
    ms = table.get((t, "ward"), [])
    n_err = sum(sum(m.get("errors", {}).values()) for m in ms)
    done = total(t, "ward", "calls")
    ok = bool(ms) and all(m.get("ok") for m in ms) and n_err == 0 and done == streams * len(ms)
    verdict(f"{streams} concurrent streams through ward", f"{n_err:,} errors, {done:,} of "
            f"{streams * len(ms):,} streams done in {len(ms)} runs", None if not ms else ok, "no error")

def what(t):
    if t.startswith("call-"):
        return f"per call ({t[5:-1]} KiB prompt)"
    return "per stream, one at a time" if t == "stream" else f"per stream, {streams} at once"
lines.append("- ward's CPU: " + ", ".join(f"{what(t)} **{fmt(v(t, 'ward', 'cpu_us'))} µs**"
                                         for t in tests) + " — no target")
print("#### ward against the targets\n")
print("\n".join(lines))
framing = [t for t in tests if "framing" in errors(t, "ward")]
if framing:
    print(f"\n**ward's responses had bytes after their end** ({', '.join(framing)}: `framing` errors): "
          "the client counts each such response, then drops its connection rather than read the stray "
          "bytes as the next response, so each later call on that path paid a new connection (and ward "
          "a new one to the backend).")
bad = [t for t in tests if any(not m.get("ok") for m in table.get((t, "ward"), []))
       or len(table.get((t, "ward"), [])) < len(table.get((t, "direct"), []))]
if bad:
    print(f"\n**WARNING: ward runs failed: {', '.join(bad)} (see bench/results/inference.log).**")
json.dump({"machine": machine, "versions": versions, "settings": settings, "runs": runs,
           "verdicts": verdicts}, open(out, "w"), indent=2)
PY
busy_note >>"$RESULTS/inference.md"
cp "$LOGFILE" "$RESULTS/inference.log"
rm -f "$PARTIAL"
FINISHED=1
cat "$RESULTS/inference.md"
log "inference: finished in $((SECONDS / 60)) min $((SECONDS % 60)) s"
if grep -q 'WARNING:' "$RESULTS/inference.md"; then exit 1; fi
