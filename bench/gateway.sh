#!/usr/bin/env bash
# bench/gateway.sh — `ward gateway` (long-lived sandboxes behind an API on a Unix socket): the
# round trip of a command in a running sandbox, create and delete, and COUNT idle sandboxes held
# by one gateway, in ONE run on the same machine.
#
#   sudo bench/gateway.sh         # about 2 minutes with the defaults on 2 vCPUs (COUNT=1000)
#
# One gateway (`ward gateway --state-dir STATE --stop-sandboxes-on-exit`, STATE a temporary
# directory, the socket STATE/gateway.sock) serves every measurement; nothing but that socket is
# used (no network). What runs, in order:
#   idle     the gateway's memory once it answers (GET /v1/status), no sandbox yet
#   exec     one sandbox `bench` (created with `ward sandbox create bench`, no main command), then
#            ONE `hyperfine -N --warmup WARMUP --runs RUNS` run of
#              ward sandbox exec bench -- true         (the whole CLI process; WARD_GATEWAY set)
#              curl --unix-socket SOCK -d '{"command":["true"]}' http://ward/v1/sandboxes/bench/exec
#              the peers, a fresh sandbox per command: ward run -- true, unshare, bwrap (PEERS,
#              bench/lib.sh's prefixes, as in startup.sh) and the lightest forms
#              `unshare -r true` and `bwrap --ro-bind / / true` (LIGHT=0 leaves them out)
#            and RUNS round trips of the same exec request from one process (a new connection
#            each, as the CLI makes; no process start in the figure), with the CPU the gateway,
#            the sandbox's supervisor and its init (with the commands it reaped) spent on them
#   create   CREATES rounds of: `ward sandbox create bench-c-I` (returns once it runs), `ward
#            sandbox delete bench-c-I`, then the same two as raw API requests (POST /v1/sandboxes,
#            DELETE /v1/sandboxes/NAME): wall time of each; then 3 sandboxes whose workspaces
#            hold BIG_FILES files (made from the host), each deleted while another connection
#            asks GET /v1/status 2 ms later: the wall time of both
#   density  `bench` deleted, then COUNT sandboxes created one after another through the API;
#            after SETTLE s the memory they cost: the growth of MemTotal − MemAvailable, of a
#            memory cgroup holding the gateway and everything it starts (root with cgroup v1
#            memory or a delegated v2 one; anon, file and kernel memory apart), the PSS of each
#            sandbox's supervisor + init (one address space: the init is a CLONE_VM child; counted
#            once) and the gateway's own RSS growth; its threads and descriptors; RUNS/4 exec
#            round trips with all COUNT held; then every one deleted through the API, timed, and
#            a check that nothing is left (no sandbox in the list, no process of the gateway's
#            tree but the gateway, the gateway's RSS afterwards); then the gateway is stopped
#            (SIGTERM) and no process of STATE may remain.
# When fewer than COUNT can be created, the first failure (status and message) is reported with
# the limits that usually decide it (open files, pids, memory); the rest runs with what there is.
#
# Targets (a miss is reported, not fatal): `ward sandbox exec NAME -- true` p50 <= 5 ms; create
# to running p50 <= 20 ms; <= 2 MB per idle sandbox; the gateway's idle RSS <= 30 MB. Exits 1
# when a sandbox could not be created, an exec failed, or anything was left behind.
#
# Environment: WARD (see bench/lib.sh), PEERS (default "ward true unshare bwrap"), LIGHT (1),
# RUNS (200), WARMUP (5), CREATES (50), COUNT (1000), SETTLE (2 s), TIMEOUT (600 s for the COUNT
# creates), BIG_FILES (20000). Writes bench/results/gateway.{md,json}; the gateway's log goes to
# gateway.log.
# Cleanup, on any exit (Ctrl-C included): every sandbox deleted through the API, the gateway
# stopped by PID (SIGTERM, then SIGKILL), any process of its tree still there SIGKILLed by PID,
# the temporary directories and the measuring cgroup removed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS="${RUNS:-200}"
WARMUP="${WARMUP:-5}"
CREATES="${CREATES:-50}"
COUNT="${COUNT:-1000}"
SETTLE="${SETTLE:-2}"
TIMEOUT="${TIMEOUT:-600}"
IDLE_S="${IDLE_S:-5}"
LIGHT="${LIGHT:-1}"
PEERS="${PEERS:-ward true unshare bwrap}"
PROCTREE="$BENCH_DIR/proctree.py"
for n in RUNS CREATES COUNT TIMEOUT IDLE_S; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a whole number above 0, not '${!n}'"
done
[[ "$WARMUP" =~ ^[0-9]+$ && "$SETTLE" =~ ^[0-9]+$ ]] || die "WARMUP and SETTLE must be whole numbers"
command -v hyperfine >/dev/null || die "hyperfine not installed (run bench/setup-peers.sh)"
command -v python3 >/dev/null || die "python3 not installed"
[[ -x "$WARD" ]] || die "no ward binary at '$WARD' (build it, or set WARD=path/to/ward)"

select_peers
make_workdir # the peers run from it
T="$(mktemp -d -t ward-gateway-bench.XXXXXX)"
STATE="$(mktemp -d "${STATE_PARENT:-${TMPDIR:-/tmp}}/ward-gateway-bench-state.XXXXXX")"
SOCK="$STATE/gateway.sock"
GW="$T/gw.py"
SNAP="$T/snap" # "pid starttime comm" of every process seen in the gateway's tree
GW_PID=""
CG_DIR=""
FINISHED=0

# --- the helper: the API over the Unix socket, timings, /proc readings ----------------------
cat >"$GW" <<'PY'
"""gateway.sh's helper. Subcommands:
  wait SOCK SECONDS                 until GET /v1/status answers 200
  exec SOCK NAME N OUT [PIDS...]    N timed exec round trips of `true`; CPU of PIDS over them
  cycle SOCK N WARD OUT             N rounds: CLI create, CLI delete, API create, API delete
  fill SOCK PREFIX COUNT TIMEOUT OUT   COUNT sequential API creates (stops at the first failure)
  drain SOCK [OUT]                  delete every sandbox of the gateway, timed
  list SOCK                         print "name status" of every sandbox
  mem GWPID OUT                     the gateway's memory and that of its tree
  idle GWPID SECONDS OUT            the gateway's CPU and context switches over SECONDS
  strays STATE [EXCLUDE_PID]        processes holding a file under STATE, their ward-init children
"""
import ctypes, json, os, socket, subprocess, sys, threading, time

BIG_FILES = int(os.environ.get("BIG_FILES", "20000"))


def dechunk(data):
    out, i = bytearray(), 0
    while True:
        j = data.index(b"\r\n", i)
        size = int(data[i:j].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[j + 2:j + 2 + size]
        i = j + 2 + size + 2


def request(sock, method, path, body=None, timeout=60.0):
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: ward\r\nConnection: close\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}\r\n\r\n"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall(head.encode() + data)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    raw = b"".join(chunks)
    top, _, rest = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        rest = dechunk(rest)
    return status, rest


def api_error(status, body):
    try:
        j = json.loads(body)
        return f"{status} {j.get('error', '')}: {j.get('message', '')}"
    except ValueError:
        return f"{status}: {body[:200]!r}"


def now_ms():
    return time.perf_counter_ns() / 1e6


def cmd_wait(sock, seconds):
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        try:
            if request(sock, "GET", "/v1/status", timeout=2)[0] == 200:
                return
        except (OSError, ValueError, IndexError):
            pass
        time.sleep(0.02)
    sys.exit(f"the gateway did not answer on {sock} within {seconds} s")


def cpu_ns(pid, children=False):
    """Run time of PID's threads (schedstat, ns); with children, plus its reaped children's
    utime + stime (clock ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    if children:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        total += (int(fields[13]) + int(fields[14])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return total


def cmd_exec(sock, name, n, out, *pids):
    n, pids = int(n), [int(p) for p in pids]
    body = {"command": ["true"]}
    times, errors = [], []
    before = [cpu_ns(p, i == len(pids) - 1) for i, p in enumerate(pids)]
    for _ in range(n):
        t0 = now_ms()
        status, data = request(sock, "POST", f"/v1/sandboxes/{name}/exec", body)
        times.append(now_ms() - t0)
        events = [json.loads(line) for line in data.splitlines() if line.strip()]
        last = events[-1] if events else {}
        if status != 200 or last.get("type") != "exit" or last.get("code") != 0:
            errors.append(api_error(status, data) if status != 200 else json.dumps(last))
    after = [cpu_ns(p, i == len(pids) - 1) for i, p in enumerate(pids)]
    json.dump({"times_ms": times, "errors": errors,
               "cpu_ns": [b - a for a, b in zip(before, after)]}, open(out, "w"))
    if errors:
        sys.exit(f"{len(errors)} of {n} execs failed, e.g. {errors[0]}")


def cmd_cycle(sock, n, ward, out):
    res = {"cli_create": [], "cli_delete": [], "api_create": [], "api_delete": []}
    errors = []

    def cli(*args):
        t0 = now_ms()
        p = subprocess.run([ward, "sandbox", *args, "--gateway", sock], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        dt = now_ms() - t0
        if p.returncode != 0:
            errors.append(f"ward sandbox {' '.join(args)}: exit {p.returncode}: "
                          f"{p.stderr.decode(errors='replace').strip()[:300]}")
        return dt

    def api(method, path, body=None, want=200):
        t0 = now_ms()
        status, data = request(sock, method, path, body)
        dt = now_ms() - t0
        if status != want:
            errors.append(f"{method} {path}: {api_error(status, data)}")
        return dt

    for i in range(int(n)):
        name = f"bench-c-{i}"
        res["cli_create"].append(cli("create", name))
        res["cli_delete"].append(cli("delete", name))
        res["api_create"].append(api("POST", "/v1/sandboxes", {"name": name}, 201))
        res["api_delete"].append(api("DELETE", f"/v1/sandboxes/{name}"))
        if errors:
            break
    # A sandbox whose workspace holds BIG_FILES files, deleted while another client asks for
    # GET /v1/status: the removal must hold up neither.
    res["big_delete"], res["status_during_delete"] = [], []
    for i in range(3 if not errors else 0):
        status, data = request(sock, "POST", "/v1/sandboxes", {"name": f"bench-big-{i}"})
        if status != 201:
            errors.append(f"POST /v1/sandboxes: {api_error(status, data)}")
            break
        work = json.loads(data)["workdir"]
        for d in range(BIG_FILES // 1000):
            os.mkdir(f"{work}/d{d}")
            for f in range(1000):
                os.close(os.open(f"{work}/d{d}/f{f}", os.O_CREAT | os.O_WRONLY, 0o644))
        took = {}

        def delete():
            t0 = now_ms()
            st, body = request(sock, "DELETE", f"/v1/sandboxes/bench-big-{i}", timeout=300)
            took["delete"] = now_ms() - t0
            if st != 200:
                errors.append(f"DELETE bench-big-{i}: {api_error(st, body)}")

        worker = threading.Thread(target=delete)
        worker.start()
        time.sleep(0.002)  # the DELETE is on its way
        t0 = now_ms()
        st, body = request(sock, "GET", "/v1/status")
        res["status_during_delete"].append(now_ms() - t0)
        worker.join()
        res["big_delete"].append(took.get("delete", 0.0))
    res["big_files"] = BIG_FILES
    res["errors"] = errors
    json.dump(res, open(out, "w"))
    if errors:
        sys.exit(errors[0])


def cmd_fill(sock, prefix, count, timeout, out):
    count, deadline = int(count), time.time() + float(timeout)
    res = {"times_ms": [], "init_pids": [], "error": None, "t0": time.time()}
    for i in range(count):
        if time.time() > deadline:
            res["error"] = f"TIMEOUT: {timeout} s passed with {i} created"
            break
        t0 = now_ms()
        try:
            status, data = request(sock, "POST", "/v1/sandboxes", {"name": f"{prefix}{i:05d}"})
        except OSError as e:
            res["error"] = f"the request failed: {e}"
            break
        dt = now_ms() - t0
        if status != 201:
            res["error"] = api_error(status, data)
            break
        res["times_ms"].append(dt)
        res["init_pids"].append(json.loads(data).get("init_pid"))
        if (i + 1) % 100 == 0:
            print(f"gateway:   {i + 1} created", file=sys.stderr, flush=True)
    res["t1"] = time.time()
    json.dump(res, open(out, "w"))


def list_sandboxes(sock):
    status, data = request(sock, "GET", "/v1/sandboxes")
    if status != 200:
        raise RuntimeError(api_error(status, data))
    return json.loads(data)["sandboxes"]


def cmd_drain(sock, out=None):
    times, errors = [], []
    t_start = time.time()
    for sb in list_sandboxes(sock):
        t0 = now_ms()
        status, data = request(sock, "DELETE", f"/v1/sandboxes/{sb['id']}", timeout=120)
        times.append(now_ms() - t0)
        if status != 200:
            errors.append(f"{sb['name']}: {api_error(status, data)}")
    res = {"times_ms": times, "errors": errors, "wall_s": time.time() - t_start,
           "left": len(list_sandboxes(sock))}
    if out:
        json.dump(res, open(out, "w"))
    if errors:
        sys.exit(f"{len(errors)} deletes failed, e.g. {errors[0]}")


def cmd_list(sock):
    for sb in list_sandboxes(sock):
        print(sb["name"], sb["status"])


def procs():
    """pid -> (ppid, comm) of every live process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                head, _, rest = f.read().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        if fields[0] not in ("Z", "X"):
            out[int(name)] = (int(fields[1]), head.partition("(")[2])
    return out


def kv(path):
    res = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                parts = v.split()
                if parts and parts[0].isdigit():
                    res[k.strip()] = int(parts[0])
    except OSError:
        pass
    return res


LIBC = ctypes.CDLL(None, use_errno=True)


def same_mm(a, b):
    """kcmp(KCMP_VM): do a and b share one address space? None when kcmp is not available."""
    r = LIBC.syscall(312, a, b, 1, 0, 0)  # SYS_kcmp on x86-64
    return None if r < 0 else r == 0


def cmd_mem(gwpid, out):
    gwpid = int(gwpid)
    ps = procs()
    children = {}
    for pid, (ppid, _) in ps.items():
        children.setdefault(ppid, []).append(pid)
    tree, stack = [], list(children.get(gwpid, ()))
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, ()))
    supervisors = [p for p in children.get(gwpid, ())]
    inits = [p for p in tree if ps[p][1] == "ward-init"]
    pss = pss_anon = rss = spaces = shared = 0
    kcmp_ok = True
    for pid in tree:
        r = kv(f"/proc/{pid}/smaps_rollup")
        if not r:
            continue  # a kernel-less process (gone)
        ppid = ps[pid][0]
        dup = None
        if ppid != gwpid and ppid in ps:
            dup = same_mm(pid, ppid)
            if dup is None:
                kcmp_ok = False
                dup = r == kv(f"/proc/{ppid}/smaps_rollup")
        if dup:
            shared += 1
            continue
        spaces += 1
        pss += r.get("Pss", 0)
        pss_anon += r.get("Pss_Anon", 0)
        rss += r.get("Rss", 0)
    st = kv(f"/proc/{gwpid}/status")
    gw_roll = kv(f"/proc/{gwpid}/smaps_rollup")
    res = {
        "gateway": {"rss_kb": st.get("VmRSS"), "rss_anon_kb": st.get("RssAnon"),
                    "rss_file_kb": st.get("RssFile"), "pss_kb": gw_roll.get("Pss"),
                    "pss_anon_kb": gw_roll.get("Pss_Anon"), "threads": st.get("Threads"),
                    "fds": len(os.listdir(f"/proc/{gwpid}/fd"))},
        "tree_procs": len(tree), "supervisors": len(supervisors), "inits": len(inits),
        "address_spaces": spaces, "sharing_parent_mm": shared, "kcmp": kcmp_ok,
        "tree_pss_kb": pss, "tree_pss_anon_kb": pss_anon, "tree_rss_kb": rss,
    }
    json.dump(res, open(out, "w"))


def cmd_idle(pid, seconds, out):
    """The gateway's CPU (all threads) and wake-ups (context switches) over SECONDS of no requests."""
    def ctx():
        n = 0
        for tid in os.listdir(f"/proc/{pid}/task"):
            st = kv(f"/proc/{pid}/task/{tid}/status")
            n += st.get("voluntary_ctxt_switches", 0) + st.get("nonvoluntary_ctxt_switches", 0)
        return n
    c0, x0, t0 = cpu_ns(pid), ctx(), time.time()
    time.sleep(float(seconds))
    c1, x1, t1 = cpu_ns(pid), ctx(), time.time()
    json.dump({"cpu_pct": (c1 - c0) / 1e7 / (t1 - t0), "wakeups_per_s": (x1 - x0) / (t1 - t0)},
              open(out, "w"))


def cmd_strays(state, exclude=""):
    state = os.path.realpath(state).rstrip("/") + "/"
    ps = procs()
    hits = set()
    for pid in ps:
        if str(pid) == exclude or pid == os.getpid():
            continue
        try:
            links = [os.readlink(f"/proc/{pid}/cwd")]
            links += [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        if any(link.startswith(state) for link in links):
            hits.add(pid)
    hits |= {pid for pid, (ppid, comm) in ps.items() if ppid in hits and comm == "ward-init"}
    for pid in sorted(hits):
        print(pid, ps[pid][1])


if __name__ == "__main__":
    cmd, *args = sys.argv[1:] or ["help"]
    {"wait": cmd_wait, "exec": cmd_exec, "cycle": cmd_cycle, "fill": cmd_fill,
     "drain": cmd_drain, "list": cmd_list, "mem": cmd_mem, "strays": cmd_strays,
     "idle": cmd_idle}.get(
        cmd, lambda *a: sys.exit(__doc__))(*args)
PY

# --- cleanup ----------------------------------------------------------------------------------
gw_alive() { [[ -n "$GW_PID" ]] && kill -0 "$GW_PID" 2>/dev/null; }
snapshot() { # add the gateway's current tree to $SNAP
  [[ -n "$GW_PID" ]] || return 0
  echo "$GW_PID" >"$T/roots"
  python3 "$PROCTREE" snapshot "$T/roots" "$SNAP" || true
}
stop_gateway() { # SIGTERM, up to 60 s (it stops what is left of its sandboxes), then SIGKILL
  gw_alive || return 0
  stop_pid "$GW_PID" 60
}
kill_leftovers() { # SIGKILL, by PID, what is left of the gateway's tree and of STATE's processes
  local pid _ i
  for ((i = 0; i < 20; i++)); do
    {
      python3 "$PROCTREE" alive "$SNAP"
      python3 "$GW" strays "$STATE"
    } | while read -r pid _; do kill -KILL "$pid" 2>/dev/null || true; done
    [[ -z "$(python3 "$PROCTREE" alive "$SNAP")$(python3 "$GW" strays "$STATE")" ]] && return 0
    sleep 0.1
  done
}
cleanup() {
  local i
  set +e
  if gw_alive; then
    snapshot
    timeout 600 python3 "$GW" drain "$SOCK" >/dev/null 2>&1 || log "gateway: cleanup: not every sandbox could be deleted through the API"
    stop_gateway
  fi
  kill_leftovers
  if [[ -n "$CG_DIR" ]]; then
    for ((i = 0; i < 50; i++)); do
      rmdir "$CG_DIR" 2>/dev/null && break
      sleep 0.1
    done
    [[ ! -d "$CG_DIR" ]] || log "warning: could not remove the cgroup $CG_DIR"
  fi
  [[ ! -f "$T/gateway.log" ]] || cp "$T/gateway.log" "$RESULTS/gateway.log"
  ((FINISHED)) || log "gateway: did not finish; the gateway's log is in $RESULTS/gateway.log"
  rm -rf "$WORKDIR" "$T" "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$WORKDIR"

now() { date +%s.%N; }
used_kb_once() { awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {print t-a}' /proc/meminfo; }
used_kb() { # median of 5 readings, 0.2 s apart
  local i
  for ((i = 0; i < 5; i++)); do
    used_kb_once
    sleep 0.2
  done | sort -n | sed -n 3p
}
cg_stat() { # cg_stat OUT: the measuring cgroup's usage and memory.stat, as JSON (or null)
  if [[ -z "$CG_DIR" ]]; then
    echo null >"$1"
    return 0
  fi
  python3 - "$CG_DIR" "$MEMCG_FILE" >"$1" <<'PY'
import json, os, sys
d, usage_file = sys.argv[1:]
stat = {}
for line in open(os.path.join(d, "memory.stat")):
    k, v = line.split()
    stat[k] = int(v)
def read(name):
    try:
        return int(open(os.path.join(d, name)).read())
    except OSError:
        return None
if usage_file == "memory.usage_in_bytes":  # v1: kernel memory is in usage, and apart in kmem
    res = {"usage": read(usage_file), "anon": stat.get("total_rss", stat.get("rss")),
           "file": stat.get("total_cache", stat.get("cache")),
           "kernel": read("memory.kmem.usage_in_bytes")}
else:
    kernel = stat.get("kernel")
    if kernel is None:
        kernel = sum(stat.get(k, 0) for k in ("kernel_stack", "pagetables", "percpu", "sock", "slab"))
    res = {"usage": read(usage_file), "anon": stat.get("anon"), "file": stat.get("file"),
           "kernel": kernel}
print(json.dumps(res))
PY
}

# --- the gateway ------------------------------------------------------------------------------
# The measuring cgroup: a fresh child of this script's memory cgroup; the gateway is moved in as
# soon as it runs, so that everything it starts is charged there.
if memory_cgroup && grep -qx "$$" "$MEMCG_DIR/cgroup.procs" 2>/dev/null; then
  CG_DIR="$MEMCG_DIR/ward-bench-gateway-$$"
  mkdir "$CG_DIR" 2>/dev/null && [[ -r "$CG_DIR/$MEMCG_FILE" ]] || CG_DIR=""
fi
[[ -n "$CG_DIR" ]] || log "gateway: no memory cgroup available (needs root and cgroup v1 memory or delegated v2): no cgroup figure"

"$WARD" gateway --state-dir "$STATE" --stop-sandboxes-on-exit </dev/null >"$T/gateway.log" 2>&1 &
GW_PID=$!
if [[ -n "$CG_DIR" ]] && ! echo "$GW_PID" >"$CG_DIR/cgroup.procs"; then
  log "gateway: could not move the gateway into $CG_DIR: no cgroup figure"
  rmdir "$CG_DIR" 2>/dev/null || true
  CG_DIR=""
fi
python3 "$GW" wait "$SOCK" 10 || die "the gateway did not start: $(tail -n 5 "$T/gateway.log")"
export WARD_GATEWAY="$SOCK"
log "gateway: pid $GW_PID, state in $STATE, ulimit -n $(ulimit -n) (hard $(ulimit -Hn)), pid_max $(cat /proc/sys/kernel/pid_max)"
sleep 1
python3 "$GW" mem "$GW_PID" "$T/mem-idle.json"
python3 "$GW" idle "$GW_PID" "$IDLE_S" "$T/idle-empty.json"

# --- 1. exec round trip -------------------------------------------------------------------------
"$WARD" sandbox create bench >/dev/null || die "ward sandbox create bench failed: $(tail -n 5 "$T/gateway.log")"
snapshot
"$WARD" sandbox exec bench -- true </dev/null || die "ward sandbox exec bench -- true failed"

args=(-n "ward sandbox exec bench -- true" "$(printf '%q ' "$WARD" sandbox exec bench -- true)")
labels=(exec)
if command -v curl >/dev/null; then
  body='{"command":["true"]}'
  args+=(-n "curl --unix-socket SOCK -d '$body' http://ward/v1/sandboxes/bench/exec"
    "$(printf '%q ' curl -sS --unix-socket "$SOCK" -o /dev/null -d "$body" http://ward/v1/sandboxes/bench/exec)")
  labels+=(curl)
else
  log "skip curl: not installed"
fi
for name in "${RUN_PEERS[@]}"; do
  peer_prefix "$name"
  args+=(-n "$(peer_label "$name" /bin/true)" "$(printf '%q ' "${PREFIX[@]}" /bin/true)")
  labels+=("$name")
done
if [[ "$LIGHT" != 0 ]]; then
  if command -v unshare >/dev/null && unshare -r true 2>/dev/null; then
    args+=(-n "unshare -r true" "unshare -r true")
    labels+=(unshare-r)
  else
    log "skip 'unshare -r true': not installed or fails here"
  fi
  if command -v bwrap >/dev/null && bwrap --ro-bind / / true 2>/dev/null; then
    args+=(-n "bwrap --ro-bind / / true" "bwrap --ro-bind / / true")
    labels+=(bwrap-ro)
  else
    log "skip 'bwrap --ro-bind / / true': not installed or fails here"
  fi
fi
LOAD_EXEC="$(cut -d' ' -f1 /proc/loadavg)"
log "gateway: hyperfine: ${#labels[@]} commands, $RUNS runs each"
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --style basic --export-json "$T/hyperfine.json" \
  "${args[@]}" >&2

# The same request from one process, and the CPU the gateway, the supervisor and the init
# (with the commands it reaped) spend on it.
INIT_PID="$(python3 - "$SOCK" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /v1/sandboxes/bench HTTP/1.1\r\nHost: ward\r\nConnection: close\r\n\r\n")
data = b""
while (b := s.recv(65536)):
    data += b
print(json.loads(data.partition(b"\r\n\r\n")[2])["init_pid"])
PY
)"
SUP_PID="$(awk '{print $4}' "/proc/$INIT_PID/stat")"
log "gateway: $RUNS exec round trips from one process (gateway $GW_PID, supervisor $SUP_PID, init $INIT_PID)"
python3 "$GW" exec "$SOCK" bench "$RUNS" "$T/exec-api.json" "$GW_PID" "$SUP_PID" "$INIT_PID" ||
  die "exec through the API failed"

# --- 2. create and delete -----------------------------------------------------------------------
log "gateway: $CREATES rounds of create + delete, CLI then API"
python3 "$GW" cycle "$SOCK" "$CREATES" "$WARD" "$T/cycle.json" || die "create/delete failed"

# --- 3. COUNT idle sandboxes ---------------------------------------------------------------------
"$WARD" sandbox delete bench >/dev/null || die "ward sandbox delete bench failed"
sleep "$SETTLE"
python3 "$GW" mem "$GW_PID" "$T/mem-before.json"
cg_stat "$T/cg-before.json"
USED_BEFORE="$(used_kb)"
LOAD_FILL="$(cut -d' ' -f1 /proc/loadavg)"
log "gateway: creating $COUNT sandboxes through the API (at most $TIMEOUT s)"
python3 "$GW" fill "$SOCK" bench-d- "$COUNT" "$TIMEOUT" "$T/fill.json"
snapshot
gw_alive || die "the gateway exited while creating sandboxes: $(tail -n 5 "$T/gateway.log")"
CREATED="$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["times_ms"]))' "$T/fill.json")"
FILL_ERROR="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["error"] or "")' "$T/fill.json")"
if [[ -n "$FILL_ERROR" ]]; then
  log "gateway: only $CREATED of $COUNT created: $FILL_ERROR"
  tail -n 20 "$T/gateway.log" >&2
fi
# What decides how many fit: the limits, as the gateway sees them, and what one sandbox takes.
{
  echo "gateway RLIMIT_NOFILE: $(awk '/Max open files/ {print $4 " (hard " $5 ")"}' "/proc/$GW_PID/limits")"
  echo "gateway RLIMIT_NPROC: $(awk '/Max processes/ {print $3 " (hard " $4 ")"}' "/proc/$GW_PID/limits")"
  echo "kernel.pid_max: $(cat /proc/sys/kernel/pid_max); kernel.threads-max: $(cat /proc/sys/kernel/threads-max)"
  echo "user.max_user_namespaces: $(cat /proc/sys/user/max_user_namespaces); user.max_net_namespaces: $(cat /proc/sys/user/max_net_namespaces); vm.max_map_count: $(cat /proc/sys/vm/max_map_count)"
  echo "pids cgroup limit: $(awk -F: '$2 ~ /(^|,)pids(,|$)/ {print $3}' "/proc/$GW_PID/cgroup" | while read -r p; do cat "/sys/fs/cgroup/pids$p/pids.max" 2>/dev/null || echo "?"; done)"
} >"$T/limits.txt"
sleep "$SETTLE"
USED_AFTER="$(used_kb)"
cg_stat "$T/cg-after.json"
python3 "$GW" mem "$GW_PID" "$T/mem-full.json"
log "gateway: its CPU over $IDLE_S s with $CREATED sandboxes held and no request"
python3 "$GW" idle "$GW_PID" "$IDLE_S" "$T/idle-full.json"
log "gateway: $((RUNS / 4)) exec round trips with $CREATED sandboxes held"
EXEC_FULL_OK=1
if ((CREATED > 0)); then
  python3 "$GW" exec "$SOCK" bench-d-00000 $((RUNS / 4)) "$T/exec-full.json" || EXEC_FULL_OK=0
fi
log "gateway: deleting them"
DRAIN_OK=1
python3 "$GW" drain "$SOCK" "$T/drain.json" || DRAIN_OK=0
sleep "$SETTLE"
python3 "$GW" mem "$GW_PID" "$T/mem-drained.json"
USED_DRAINED="$(used_kb)"
cg_stat "$T/cg-drained.json"
LIST_LEFT="$(python3 "$GW" list "$SOCK" | wc -l)"
t0="$(now)"
stop_gateway
STOP_S="$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.2f", b - a}')"
sleep 0.5
LEFT_PROCS="$({
  python3 "$PROCTREE" alive "$SNAP"
  python3 "$GW" strays "$STATE"
} | sort -u | wc -l)"
GW_PID=""

# --- results -------------------------------------------------------------------------------------
settings="RUNS=$RUNS WARMUP=$WARMUP CREATES=$CREATES COUNT=$COUNT SETTLE=$SETTLE IDLE_S=$IDLE_S"
STATE_FS="$(findmnt -no FSTYPE -T "$STATE" 2>/dev/null || echo "?")"
versions="$(versions_line); $(curl --version 2>/dev/null | head -n1 | awk '{print $1, $2}')"
python3 - "$T" "$RESULTS/gateway.json" "$(machine_line)" "$versions" "$settings" \
  "${labels[*]}" "$COUNT" "$CREATED" "$FILL_ERROR" "$USED_BEFORE" "$USED_AFTER" "$USED_DRAINED" \
  "$LIST_LEFT" "$LEFT_PROCS" "$EXEC_FULL_OK" "$DRAIN_OK" "$LOAD_EXEC" "$LOAD_FILL" "$STOP_S" "$STATE_FS" "$IDLE_S" \
  >"$RESULTS/gateway.md" <<'PY'
import json, os, statistics, sys
(T, out, machine, versions, settings, labels, count, created, fill_error, used_before,
 used_after, used_drained, list_left, left_procs, exec_full_ok, drain_ok, load_exec,
 load_fill, stop_s, state_fs, idle_s) = sys.argv[1:]
labels = labels.split()
count, created = int(count), int(created)
used_before, used_after, used_drained = int(used_before), int(used_after), int(used_drained)
list_left, left_procs = int(list_left), int(left_procs)


def load(name):
    path = os.path.join(T, name)
    return json.load(open(path)) if os.path.exists(path) else None


def pct(xs, q):  # nearest-rank percentile
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q / 100 * len(xs) + 0.5)) - 1))] if xs else None


def stats(ms):
    return {"n": len(ms), "p50": statistics.median(ms), "p90": pct(ms, 90), "mean": statistics.mean(ms),
            "stdev": statistics.pstdev(ms), "min": min(ms), "max": max(ms)} if ms else None


hf = load("hyperfine.json")["results"]
rows = {}
for label, r in zip(labels, hf):
    s = stats([t * 1e3 for t in r["times"]])
    s.update(command=r["command"], user_ms=r["user"] * 1e3, system_ms=r["system"] * 1e3)
    rows[label] = s
exec_api = load("exec-api.json")
api = stats(exec_api["times_ms"])
cycle = load("cycle.json")
fill = load("fill.json")
drain = load("drain.json")
exec_full = load("exec-full.json")
mem = {k: load(f"mem-{k}.json") for k in ("idle", "before", "full", "drained")}
idle_cpu = {k: load(f"idle-{k}.json") for k in ("empty", "full")}
cg = {k: load(f"cg-{k}.json") for k in ("before", "after", "drained")}
limits = open(os.path.join(T, "limits.txt")).read().strip().splitlines()

res = {"machine": machine, "versions": versions, "settings": settings, "exec": rows,
       "exec_api": {**api, "cpu_ns": exec_api["cpu_ns"], "errors": exec_api["errors"]},
       "cycle": {k: stats(v) for k, v in cycle.items() if k not in ("errors", "big_files")},
       "cycle_errors": cycle["errors"], "count": count, "created": created,
       "fill": {"stats": stats(fill["times_ms"]), "wall_s": fill["t1"] - fill["t0"],
                "error": fill_error or None,
                "first100": stats(fill["times_ms"][:100]), "last100": stats(fill["times_ms"][-100:])},
       "drain": drain and {"stats": stats(drain["times_ms"]), "wall_s": drain["wall_s"],
                           "errors": drain["errors"]},
       "exec_full": exec_full and stats(exec_full["times_ms"]),
       "mem": mem, "cgroup": cg, "used_kb": {"before": used_before, "after": used_after,
                                              "drained": used_drained},
       "left": {"in_list": list_left, "processes": left_procs}, "limits": limits,
       "load": {"exec": float(load_exec), "fill": float(load_fill)}, "idle_cpu": idle_cpu,
       "stop_s": float(stop_s), "state_fs": state_fs}
json.dump(res, open(out, "w"), indent=2)

f2 = lambda x: "–" if x is None else f"{x:.2f}"
p50 = lambda k: rows[k]["p50"] if k in rows else None
print(f"### The gateway: exec in a running sandbox, create, {count:,} idle sandboxes\n")
print(f"Machine: {machine}  ")
print(f"Versions: {versions}  ")
print(f"Command: `sudo bench/gateway.sh` ({settings}); one gateway serves every measurement; "
      f"its state directory is on {state_fs}.  ")
print(f"Load: the 1-minute load average was {float(load_exec):.2f} before the exec runs and "
      f"{float(load_fill):.2f} before the {count:,} creates (the benchmark's own processes count "
      "in it too).\n")

n = rows["exec"]["n"]
print(f"#### A command in a running sandbox against a fresh sandbox per command: "
      f"`true`, hyperfine -N, {n} runs each\n")
print("| command | p50 ms | p90 ms | mean ± σ ms | min ms | CPU user + sys ms | × `ward sandbox exec` |")
print("|---|---:|---:|---:|---:|---:|---:|")
names = {"exec": "ward sandbox exec bench -- true",
         "curl": "curl --unix-socket SOCK -d '{\"command\":[\"true\"]}' http://ward/v1/sandboxes/bench/exec"}
e50 = p50("exec")
for k, r in rows.items():
    label = names.get(k, r["command"])
    print(f"| `{label}` | {r['p50']:.2f} | {r['p90']:.2f} | {r['mean']:.2f} ± {r['stdev']:.2f} "
          f"| {r['min']:.2f} | {r['user_ms']:.1f} + {r['system_ms']:.1f} | {r['p50'] / e50:.2f} |")
print(f"| the same request from one process (no process start; a new connection each) "
      f"| {api['p50']:.2f} | {api['p90']:.2f} | {api['mean']:.2f} ± {api['stdev']:.2f} "
      f"| {api['min']:.2f} | – | {api['p50'] / e50:.2f} |")
print()
cpu = [c / len(exec_api["times_ms"]) / 1e3 for c in exec_api["cpu_ns"]]
print(f"CPU per exec (the in-process runs): gateway {cpu[0]:.0f} µs, the sandbox's supervisor "
      f"{cpu[1]:.0f} µs, its init with the command it started and reaped {cpu[2]:.0f} µs. "
      "Peers: bench/lib.sh's prefixes (as in section 1) and the lightest forms of unshare and "
      "bwrap; each starts a new sandbox for its command, the exec reuses one.\n")

print(f"#### Create and delete: {len(cycle['cli_create'])} rounds, the CLI then the API\n")
print("| operation | p50 ms | p90 ms | mean ms | min ms | max ms |")
print("|---|---:|---:|---:|---:|---:|")
cyc_names = {"cli_create": "`ward sandbox create NAME` (returns once it runs)",
             "cli_delete": "`ward sandbox delete NAME`",
             "api_create": "POST /v1/sandboxes `{\"name\": NAME}` (201 once it runs), from one process",
             "api_delete": "DELETE /v1/sandboxes/NAME, from one process"}
big = cycle.get("big_files", 0)
cyc_names["big_delete"] = f"DELETE /v1/sandboxes/NAME, {big:,} files in its managed workspace (3 rounds)"
cyc_names["status_during_delete"] = "GET /v1/status sent 2 ms after that DELETE, from another connection"
for k, label in cyc_names.items():
    s = stats(cycle.get(k, []))
    if s:
        print(f"| {label} | {s['p50']:.2f} | {s['p90']:.2f} | {s['mean']:.2f} | {s['min']:.2f} | {s['max']:.2f} |")
print()

print(f"#### {count:,} idle sandboxes held by one gateway\n")
full, idle, before, drained = mem["full"], mem["idle"], mem["before"], mem["drained"]
n_held = created
per = lambda kb: kb / n_held if n_held else None
sys_kb = per(used_after - used_before)
cg_kb = cg_anon = cg_file = cg_kernel = None
if cg["before"] and cg["after"] and n_held:
    d = lambda k: (cg["after"][k] - cg["before"][k]) / 1024 / n_held if cg["after"][k] is not None else None
    cg_kb, cg_anon, cg_file, cg_kernel = d("usage"), d("anon"), d("file"), d("kernel")
pss_kb = per(full["tree_pss_kb"])
gw_rss_kb = per(full["gateway"]["rss_kb"] - before["gateway"]["rss_kb"])
fs = res["fill"]["stats"]
table = [f"| sandboxes created and running | {created:,} of {count:,} |"]
if fs:
    f1, fl = res["fill"]["first100"], res["fill"]["last100"]
    table += [f"| time to create them, one after another through the API | {res['fill']['wall_s']:.1f} s |",
              f"| create, p50 / p90 (all), ms | {fs['p50']:.2f} / {fs['p90']:.2f} |",
              f"| create, p50 of the first 100 / of the last 100, ms | {f1['p50']:.2f} / {fl['p50']:.2f} |"]
if res["exec_full"]:
    s = res["exec_full"]
    table.append(f"| exec round trip (API, from one process) with all of them held, p50 / p90 ms "
                 f"| {s['p50']:.2f} / {s['p90']:.2f} |")
if n_held:
    table.append(f"| **system memory per sandbox** (MemTotal − MemAvailable, after − before) | **{sys_kb:,.0f} KB** |")
    if cg_kb is not None:
        table += [f"| **memory cgroup per sandbox** (the gateway and all it starts; kernel memory in) | **{cg_kb:,.0f} KB** |",
                  f"| …of which anon / file (page cache: state files, SQLite) / kernel, KB "
                  f"| {cg_anon:,.0f} / {cg_file:,.0f} / {cg_kernel:,.0f} |"]
    table += [f"| PSS per sandbox: its supervisor + init (one address space; the gateway's tree but the gateway) | {pss_kb:,.0f} KB |",
              f"| …of which anonymous | {per(full['tree_pss_anon_kb']):,.0f} KB |",
              f"| the gateway's RSS growth per sandbox | {gw_rss_kb:,.0f} KB |",
              f"| processes per sandbox (the gateway's tree ÷ sandboxes) | {full['tree_procs'] / n_held:.2f} |"]
g = lambda m: f"{m['gateway']['rss_kb'] / 1024:.1f} MiB ({m['gateway']['rss_anon_kb'] / 1024:.1f} anon)"
table += [f"| gateway RSS: idle, fresh / before the {count:,} / with them / after deleting them "
          f"| {g(idle)} / {g(before)} / {g(full)} / {g(drained)} |",
          f"| gateway threads / open descriptors: idle → with them "
          f"| {idle['gateway']['threads']} / {idle['gateway']['fds']} → {full['gateway']['threads']:,} / {full['gateway']['fds']:,} |"]
ie, ifu = idle_cpu["empty"], idle_cpu.get("full")
if ifu:
    table.append(f"| gateway CPU with no request over {idle_s} s: idle → with them "
                 f"| {ie['cpu_pct']:.2f}% ({ie['wakeups_per_s']:,.0f} wake-ups/s) → "
                 f"{ifu['cpu_pct']:.2f}% of a CPU ({ifu['wakeups_per_s']:,.0f} wake-ups/s) |")
if drain and drain["times_ms"]:
    ds = stats(drain["times_ms"])
    table.append(f"| delete all of them, one after another through the API "
                 f"| {drain['wall_s']:.1f} s (p50 {ds['p50']:.2f} ms, p90 {ds['p90']:.2f} ms) |")
table += [f"| left after deleting them: sandboxes listed / processes under the gateway | {list_left} / {drained['tree_procs']} |",
          f"| left after the gateway stopped: processes of its tree or holding files of its state directory | {left_procs} |",
          f"| system memory not returned after deleting them (MemTotal − MemAvailable, drained − before) "
          f"| {(used_drained - used_before) / 1024:,.0f} MiB |",
          f"| the gateway's exit after SIGTERM, no sandbox left | {float(stop_s):.2f} s |"]
print("| figure | value |")
print("|---|---:|")
print("\n".join(table))
print()
print("Memory: the **system** figure is the whole machine and moves with anything else running "
      "(other sessions' compilers here); the **cgroup** one holds only the gateway and what it "
      "starts (moved there before the first sandbox) and counts the kernel's memory for them "
      "(namespaces, page tables, sockets) and the page cache of the files they write. **PSS** "
      "divides shared pages among their users: the static ward binary's pages are shared by "
      "every supervisor. The gateway keeps one egress proxy (a thread) per running sandbox.\n")
if fill_error:
    print(f"**Only {created:,} of {count:,} sandboxes could be created**: {fill_error}. Limits: "
          + "; ".join(limits) + ".\n")

print("#### ward against the targets\n")
verdicts = []
def verdict(text, value, ok, target):
    verdicts.append(ok)
    print(f"- {text}: **{value}** — target {target}: {'PASS' if ok else 'MISSED'}")
verdict("`ward sandbox exec NAME -- true`, the whole CLI process, p50", f"{e50:.2f} ms", e50 <= 5, "≤ 5 ms")
s = stats(cycle["cli_create"])
verdict("`ward sandbox create NAME` to running, p50", f"{s['p50']:.2f} ms", s["p50"] <= 20, "≤ 20 ms")
mem_kb = cg_kb if cg_kb is not None else sys_kb
if mem_kb is not None:
    verdict(f"memory per idle sandbox ({'cgroup' if cg_kb is not None else 'system'}), {created:,} held",
            f"{mem_kb:,.0f} KB", mem_kb <= 2048, "≤ 2 MB")
idle_mb = idle["gateway"]["rss_kb"] / 1024
verdict("the gateway's idle RSS, no sandbox", f"{idle_mb:.1f} MiB", idle_mb <= 30, "≤ 30 MB")
ratios = []
for k, name in (("ward", "ward run"), ("bwrap", "bwrap --unshare-all"), ("bwrap-ro", "bwrap --ro-bind / /"),
                ("unshare", "unshare -Urnpf"), ("unshare-r", "unshare -r")):
    if k in rows:
        ratios.append(f"{e50 / rows[k]['p50']:.2f} × {name}")
print(f"- exec p50 against a fresh sandbox per command (same run): " + ", ".join(ratios) + " — no target")

warn = []
if created < count:
    warn.append(f"only {created} of {count} sandboxes were created ({fill_error})")
if exec_api["errors"] or exec_full_ok != "1":
    warn.append("an exec failed")
if drain_ok != "1" or list_left:
    warn.append(f"deleting failed ({list_left} sandboxes still listed)")
if drained["tree_procs"] or left_procs:
    warn.append(f"processes were left behind ({drained['tree_procs']} under the gateway after "
                f"deleting, {left_procs} after it stopped)")
for w in warn:
    print(f"\n**WARNING: {w}.**")
PY

FINISHED=1
busy_note >>"$RESULTS/gateway.md"
cat "$RESULTS/gateway.md"
if grep -q 'WARNING:' "$RESULTS/gateway.md"; then exit 1; fi
