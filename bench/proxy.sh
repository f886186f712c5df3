#!/usr/bin/env bash
# bench/proxy.sh — ward's egress proxy against no proxy, squid, tinyproxy and sandbox-runtime's
# proxy, in ONE run on the same machine; with PROXY_SUITE=https (what bench/https.sh runs), ward's
# HTTPS interception against its own opaque tunnel, mitmproxy and no proxy. Root only (it makes a
# network namespace).
#
#   sudo bench/setup-peers.sh && sudo bench/proxy.sh     # and: sudo bench/https.sh
#
# The upstreams live in a network namespace that this script creates (a veth pair, 10.232.0.1 on
# the host side, 10.232.0.2 inside, MTU 65535 like loopback, no default route): ward's SSRF guard
# refuses loopback upstreams whatever the policy says, so they cannot be on 127.0.0.1. Inside it:
#   nginx (one process, `master_process off`, one worker): :8080 HTTP and :8443 HTTPS (TLS 1.3, an
#   ECDSA P-256 certificate for 10.232.0.2 from a throw-away test CA, session tickets on), a
#   17-byte page;
#   a Python server: :9000 streams a 64 MiB file (sendfile, again and again) after a request line;
#   :9001 and up accept connections and send nothing (the idle-tunnel targets, one per idle run).
# squid (no cache), tinyproxy and mitmdump run on 127.0.0.1 with configurations in a temporary
# directory. Every path is measured from where an agent would be: ward's from inside a `ward run`
# sandbox (its only way out is ward's proxy at 127.0.0.1:3128), sandbox-runtime's from inside
# `srt`, the others from the host. All traffic stays on loopback or inside that namespace.
#
# The peers: direct (no proxy); ward (the policy lists the upstreams as L4 endpoints: CONNECT is an
# opaque tunnel); ward-l7 (:8443 is an L7 endpoint, `protocol: rest, access: read-only`: ward
# intercepts, terminating the client's TLS with a leaf from its CA and verifying the upstream's
# against the test CA, --upstream-ca); squid; tinyproxy; srt; mitmproxy (`mitmdump` in regular
# proxy mode, HTTP/1.1, its upstream verified against the test CA). Every HTTPS client verifies
# the server it is shown (ward-loadgen --cafile): the test CA; ward-l7's clients ward's bundle,
# /etc/ward/tls/ca-bundle.pem in the sandbox; mitmproxy's clients mitmproxy's CA.
#
# What runs (each RUNS times, default 3, peers interleaved; the tables give the median):
#   http     wrk -t2 -c20 -d${DURATION}s, GET http://10.232.0.2:8080/ through each proxy (a Lua
#            script puts the absolute URL in the request line; wrk cannot speak to a proxy itself)
#   http1    the same with -t1 -c1 -d${LAT_DURATION}s: the latency a proxy adds when nothing queues
#   tls      ward-loadgen connect-tls, 20 workers, TLS_DURATION s: keep-alive (one tunnel per
#            worker), a new tunnel + full handshake per request, and a new tunnel + resumed
#            handshake per request (--resume)
#   tls1     the same three with one worker for LAT_DURATION s: the latency added when nothing
#            queues
#   bulk     ward-loadgen bulk --bytes BULK_BYTES through one tunnel; the proxy's CPU time
#            (utime + stime of its process, /proc/PID/stat) over the transfer
#   idle     IDLE_COUNT tunnels opened and held; before and while they are held: ward's RSS and
#            descriptors (/proc/PID), the growth of a memory cgroup holding the openers (for ward:
#            ward and its sandbox) and the machine's MemAvailable; the same without a proxy gives
#            the clients' share. The tunnels are opened by IDLE_PROCS processes (one by default),
#            one after another.
#   mint     build/bench/ward-tls-bench (Google Benchmark, MINT_REPS repetitions): minting a leaf
#            for a new host, a cached leaf, ward's two-sided TLS 1.3 handshake in memory
# The suites: PROXY_SUITE=proxy (the default) runs http http1 tls bulk idle for direct ward squid
# tinyproxy srt and writes bench/results/proxy.{md,json,log}; PROXY_SUITE=https runs tls tls1 mint
# for direct ward ward-l7 mitmproxy and writes bench/results/https.{md,json,log}. A run that does
# not finish leaves SUITE-partial.log.
# For the proxies, CPU per request is their process's utime + stime over the run / requests.
# ward is started in the background; its sandbox touches a marker in the workdir when ready and
# writes the workload's status into a FIFO the script blocks on, so ward's CPU and memory are read
# exactly around the load and no polling of the script's competes with it.
#
# Targets (for ward; a miss is reported, not fatal). proxy: HTTP ≥ 2× squid's requests/s and p50 ≤
# direct + 0.3 ms; HTTPS new tunnel per request ≥ 1.5× squid, keep-alive ≥ 0.9× direct; bulk
# ≥ 1 GB/s on at most one core; ≤ 64 KiB per idle tunnel and 10,000 idle tunnels within 1 GB.
# https: keep-alive intercepted ≥ 0.7× direct and ≥ 5× mitmproxy's requests/s; a new connection +
# full handshake per request (one worker) at most 1.5 ms of p50 over direct; minting a leaf ≤ 5 ms.
# Exits 1 when a ward run failed (errors, an incomplete transfer, tunnels that did not open).
# Takes about 6½ minutes (proxy) or 4 (https) with the defaults on 2 vCPUs.
#
# Environment: WARD, SRT (see bench/lib.sh), LOADGEN (default build/bench/ward-loadgen), TLS_BENCH
# (default build/bench/ward-tls-bench), PROXY_SUITE (proxy), PROXY_TESTS (the suite's tests),
# PROXY_PEERS (the suite's peers; not PEERS, whose names are the sandbox peers of the other
# scripts), LAT_PEERS and BULK_PEERS (each default "direct ward squid"), TLS_PEERS (proxy: "direct
# ward squid", https: its peers; tls1 runs the same), RUNS (3), DURATION (10), LAT_DURATION (2),
# TLS_DURATION (3), BULK_BYTES (2G), IDLE_COUNT (10000), IDLE_PROCS (1), IDLE_HOLD_S (settle
# before sampling, 1), MINT_REPS (5), BENCH_NET (default 10.232.0: the /24 of the namespace).
# Cleanup: a trap stops every process this script started (by PID) and deletes the namespace, the
# veth and ward's temporary state directory (its CA), on any exit (Ctrl-C included). After a
# SIGKILL: `ip netns del ward-proxy-bench-PID`.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROXY_SUITE="${PROXY_SUITE:-proxy}"
case "$PROXY_SUITE" in
  proxy)
    SUITE_TESTS="http http1 tls bulk idle" SUITE_PEERS="direct ward squid tinyproxy srt"
    SUITE_TLS="direct ward squid"
    ;;
  https)
    SUITE_TESTS="tls tls1 mint" SUITE_PEERS="direct ward ward-l7 mitmproxy"
    SUITE_TLS="$SUITE_PEERS"
    ;;
  *) die "PROXY_SUITE must be proxy or https, not '$PROXY_SUITE'" ;;
esac
RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
LAT_DURATION="${LAT_DURATION:-2}"
TLS_DURATION="${TLS_DURATION:-3}"
BULK_BYTES="${BULK_BYTES:-2G}"
IDLE_COUNT="${IDLE_COUNT:-10000}"
IDLE_PROCS="${IDLE_PROCS:-1}"
IDLE_HOLD_S="${IDLE_HOLD_S:-1}"
MINT_REPS="${MINT_REPS:-5}"
BENCH_NET="${BENCH_NET:-10.232.0}"
LOADGEN="${LOADGEN:-$ROOT/build/bench/ward-loadgen}"
TLS_BENCH="${TLS_BENCH:-$ROOT/build/bench/ward-tls-bench}"
read -r -a TESTS <<<"${PROXY_TESTS:-$SUITE_TESTS}"
read -r -a WANT_PEERS <<<"${PROXY_PEERS:-$SUITE_PEERS}"
read -r -a WANT_TLS <<<"${TLS_PEERS:-$SUITE_TLS}"
read -r -a WANT_BULK <<<"${BULK_PEERS:-direct ward squid}"
read -r -a WANT_LAT <<<"${LAT_PEERS:-direct ward squid}"
HOST_IP="$BENCH_NET.1"
UP_IP="$BENCH_NET.2"
NS="ward-proxy-bench-$$"
VETH_HOST="wpb$$h"
VETH_NS="wpb$$n"
WARD_PORT=3128 # ward's egress listener inside every sandbox
ALL_TESTS="http http1 tls tls1 bulk idle mint"
for t in "${TESTS[@]}"; do
  [[ " $ALL_TESTS " == *" $t "* ]] || die "unknown test '$t' (names: $ALL_TESTS)"
done
has_test() { [[ " ${TESTS[*]} " == *" $1 "* ]]; }

if ((EUID != 0)); then
  log "$PROXY_SUITE: skipped: needs root (a network namespace for the upstreams; run it with sudo)"
  exit 0
fi
tools=(ip nginx openssl python3)
if has_test http || has_test http1; then tools+=(wrk); fi
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || die "$tool not installed (run bench/setup-peers.sh)"
done
[[ -x "$LOADGEN" ]] || die "no ward-loadgen at '$LOADGEN' (build it: cmake --build build --target ward-loadgen)"
[[ "$LOADGEN" == /* ]] || LOADGEN="$(cd "$(dirname "$LOADGEN")" && pwd)/$(basename "$LOADGEN")"
if [[ -n "$(ip -4 route show "$BENCH_NET.0/24" 2>/dev/null)" ]]; then
  die "$BENCH_NET.0/24 is already routed here (a leftover namespace? see 'ip netns list'); set BENCH_NET"
fi

# --- which peers can run ---------------------------------------------------------------------
PEERS_OK=()
declare -A SKIP=() # peer → why it was not measured
for p in "${WANT_PEERS[@]}"; do
  case "$p" in
    direct) PEERS_OK+=(direct) ;;
    ward | srt)
      if reason="$(peer_check "$p")"; then PEERS_OK+=("$p"); else SKIP[$p]="$reason"; fi
      ;;
    ward-l7)
      if reason="$(peer_check ward)"; then PEERS_OK+=("$p"); else SKIP[$p]="$reason"; fi
      ;;
    squid | tinyproxy)
      if command -v "$p" >/dev/null; then PEERS_OK+=("$p"); else SKIP[$p]="$p not installed (run bench/setup-peers.sh)"; fi
      ;;
    mitmproxy)
      if command -v mitmdump >/dev/null; then PEERS_OK+=("$p"); else SKIP[$p]="mitmdump not installed (run bench/setup-peers.sh)"; fi
      ;;
    *) die "unknown peer '$p' (names: direct ward ward-l7 squid tinyproxy srt mitmproxy)" ;;
  esac
done
for p in "${!SKIP[@]}"; do log "skip $p: ${SKIP[$p]}"; done
has_peer() { [[ " ${PEERS_OK[*]} " == *" $1 "* ]]; }
subset() { # subset NAME...: those of PEERS_OK, in PEERS_OK's order
  local p w sel=()
  for p in "${PEERS_OK[@]}"; do for w in "$@"; do [[ "$p" == "$w" ]] && sel+=("$p"); done; done
  echo "${sel[*]}"
}
# plain_subset NAME...: the same without the peers measured with HTTPS only, ward-l7 (its policy
# has no other endpoint) and mitmproxy (here for its interception).
plain_subset() {
  local p sel=()
  for p in $(subset "$@"); do [[ "$p" == ward-l7 || "$p" == mitmproxy ]] || sel+=("$p"); done
  echo "${sel[*]}"
}
read -r -a HTTP_RUN <<<"$(plain_subset "${PEERS_OK[@]}")"
read -r -a TLS_RUN <<<"$(subset "${WANT_TLS[@]/srt/}")"
read -r -a BULK_RUN <<<"$(plain_subset "${WANT_BULK[@]/srt/}")"
read -r -a LAT_RUN <<<"$(plain_subset "${WANT_LAT[@]}")"
NOTES=() # what the results should say was left out, and why
if has_peer srt; then
  NOTES+=("sandbox-runtime's CONNECT tunnels (HTTPS, bulk, idle): its proxy answers 407 unless every request carries the session's Proxy-Authorization (HTTP_PROXY=http://USER:TOKEN@localhost:PORT inside its sandbox), which ward-loadgen cannot send; wrk's HTTP runs send it from the Lua script")
fi

# --- descriptors: ward holds two per tunnel --------------------------------------------------
IDLE_NOMINAL=$IDLE_COUNT # the count the verdict is about (see below)
need_fds=$((2 * IDLE_COUNT + 64))
hard="$(ulimit -Hn)"
if has_test idle && [[ "$hard" != unlimited ]] && ((hard < need_fds)) && ! ulimit -Hn "$need_fds" 2>/dev/null; then
  IDLE_COUNT=$(((hard - 64) / 2 / 100 * 100))
  NOTES+=("IDLE_COUNT lowered from $IDLE_NOMINAL to $IDLE_COUNT: ward holds two descriptors per tunnel, and the hard limit on open files here is $hard (raising it needs CAP_SYS_RESOURCE, which this root does not have); the figure for $IDLE_NOMINAL tunnels is the one measured per tunnel × $IDLE_NOMINAL")
  log "$PROXY_SUITE: ${NOTES[-1]}"
fi
ulimit -Sn "$(ulimit -Hn)"

# --- temporary files, started processes and their cleanup ------------------------------------
make_workdir                                # ward's and srt's working directory (markers, outputs)
T="$(mktemp -d -t ward-proxy-bench.XXXXXX)" # configurations, scripts, the 64 MiB file
chmod 755 "$T"
# ward's state directory (its CA), apart from T, which the sandbox reads
WARD_STATE="$(mktemp -d -t ward-proxy-bench-state.XXXXXX)"
LOGFILE="$T/$PROXY_SUITE.log"                # copied to bench/results/SUITE.log at the end
PARTIAL="$RESULTS/$PROXY_SUITE-partial.log" # what there is of it when the run does not finish
FINISHED=0
: >"$LOGFILE"
STARTED=()  # "name:pid" of the servers and proxies
WARD_BG=""  # a ward running in the background
OTHER_BG="" # the host-side idle openers
cleanup() {
  local e f
  [[ -z "$WARD_BG" ]] || stop_pid "$WARD_BG"
  [[ -z "$OTHER_BG" ]] || stop_pid "$OTHER_BG"
  for e in "${STARTED[@]}"; do stop_pid "${e#*:}"; done
  if declare -F cg_remove >/dev/null; then cg_remove; fi
  ip netns del "$NS" 2>/dev/null || true # takes the veth pair with it
  ip link del "$VETH_HOST" 2>/dev/null || true
  if ((!FINISHED)) && [[ -s "$LOGFILE" ]]; then
    {
      cat "$LOGFILE"
      for f in nginx-error.log squid/cache.log tinyproxy/tinyproxy.log mitmproxy.log ward.err; do
        [[ -s "$T/$f" ]] && printf '### %s\n%s\n' "$f" "$(tail -n 50 "$T/$f")"
      done
    } >"$PARTIAL" 2>/dev/null || true
    log "$PROXY_SUITE: did not finish; its log so far is in $PARTIAL"
  fi
  rm -rf "$WORKDIR" "$T" "$WARD_STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$WORKDIR"

ticks_per_s="$(getconf CLK_TCK)"
cpu_ticks() { { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null || true; } | awk 'NF {print $12 + $13}'; } # utime+stime
now() { date +%s.%N; }
wait_port() { # wait_port HOST PORT SECONDS
  local i
  for ((i = 0; i < $3 * 20; i++)); do
    timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}
alive_or_die() { kill -0 "$2" 2>/dev/null || die "$1 exited at start (see $PARTIAL)"; }
mem_available_kb() { # median of 5 readings, 0.1 s apart
  local i
  for ((i = 0; i < 5; i++)); do
    awk '/^MemAvailable:/ {print $2}' /proc/meminfo
    sleep 0.1
  done | sort -n | sed -n 3p
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# --- the namespace and its servers -----------------------------------------------------------
log "$PROXY_SUITE: namespace $NS ($UP_IP), veth $VETH_HOST ($HOST_IP)"
ip netns add "$NS"
ip link add "$VETH_HOST" type veth peer name "$VETH_NS" netns "$NS"
ip addr add "$HOST_IP/24" dev "$VETH_HOST"
ip link set "$VETH_HOST" mtu 65535 up
ip -n "$NS" addr add "$UP_IP/24" dev "$VETH_NS"
ip -n "$NS" link set "$VETH_NS" mtu 65535 up
ip -n "$NS" link set lo up

# A throw-away test CA and nginx's certificate from it (the clients and the intercepting proxies
# verify the upstream against it): ECDSA P-256, for the address the clients name.
ossl() { openssl "$@" 2>>"$T/openssl.err" || die "openssl $1: $(tail -n 3 "$T/openssl.err")"; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=ward bench test CA" -addext basicConstraints=critical,CA:TRUE \
  -addext keyUsage=critical,keyCertSign,cRLSign -keyout "$T/ca-key.pem" -out "$T/ca.pem"
ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=bench.test \
  -keyout "$T/key.pem" -out "$T/cert.csr"
printf 'subjectAltName=IP:%s,DNS:bench.test\nextendedKeyUsage=serverAuth\n' "$UP_IP" >"$T/cert.ext"
ossl x509 -req -in "$T/cert.csr" -CA "$T/ca.pem" -CAkey "$T/ca-key.pem" -days 2 \
  -extfile "$T/cert.ext" -out "$T/cert.pem"
cat >"$T/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  ssl_certificate $T/cert.pem;
  ssl_certificate_key $T/key.pem;
  ssl_protocols TLSv1.3;
  ssl_session_cache shared:bench:10m;
  ssl_session_tickets on;
  server {
    listen $UP_IP:8080 backlog=4096;
    listen $UP_IP:8443 ssl backlog=4096;
    location / { return 200 "hello from nginx\n"; }
  }
}
EOF
ip netns exec "$NS" nginx -c "$T/nginx.conf" -e "$T/nginx-error.log" >>"$LOGFILE" 2>&1 &
STARTED+=("nginx:$!")
NGINX_PID=$!

cat >"$T/upstream.py" <<'PY'
# :BULK streams BLOB (sendfile, over and over) after a request head; each of the IDLE ports (a
# comma-separated list) accepts and stays silent.
import os, selectors, socket, sys, threading
addr, bulk_port, blob, ready = sys.argv[1], int(sys.argv[2]), sys.argv[4], sys.argv[5]
idle_ports = [int(p) for p in sys.argv[3].split(",")]
size = os.path.getsize(blob)

def listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4096)
    return s

def stream(conn):
    try:
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            b = conn.recv(4096)
            if not b:
                return
            head += b
        fd = os.open(blob, os.O_RDONLY)
        try:
            while True:
                off = 0
                while off < size:
                    off += os.sendfile(conn.fileno(), fd, off, size - off)
        finally:
            os.close(fd)
    except OSError:
        pass
    finally:
        conn.close()

def bulk(s):
    while True:
        conn, _ = s.accept()
        threading.Thread(target=stream, args=(conn,), daemon=True).start()

b = listener(bulk_port)
threading.Thread(target=bulk, args=(b,), daemon=True).start()
sel = selectors.DefaultSelector()
idle = set()
for port in idle_ports:
    i = listener(port)
    i.setblocking(False)
    sel.register(i, selectors.EVENT_READ)
    idle.add(i)
open(ready, "w").close()
while True:
    for key, _ in sel.select():
        if key.fileobj in idle:
            while True:
                try:
                    conn, _ = key.fileobj.accept()
                except BlockingIOError:
                    break
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
        else:
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
PY
# A fresh idle port for every idle run: a closed tunnel leaves its client side in TIME_WAIT for a
# minute, and 10,000 of them to one address and port would use up the ephemeral ports for it.
IDLE_PORTS=()
for ((i = 0; i < 2 * RUNS; i++)); do IDLE_PORTS+=($((9001 + i))); done
if has_test bulk || has_test idle; then
  head -c 64M /dev/urandom >"$T/blob"
  ip netns exec "$NS" python3 "$T/upstream.py" "$UP_IP" 9000 "$(IFS=,; echo "${IDLE_PORTS[*]}")" "$T/blob" "$T/upstream.ready" \
    >>"$LOGFILE" 2>&1 &
  STARTED+=("upstream:$!")
  UPSTREAM_PID=$!
  wait_port "$UP_IP" 9000 10 || die "the upstream server did not start (see $PARTIAL)"
  alive_or_die "the upstream server" "$UPSTREAM_PID"
fi
wait_port "$UP_IP" 8080 10 || die "nginx did not start (see $PARTIAL)"
wait_port "$UP_IP" 8443 10 || die "nginx did not start on :8443"
alive_or_die nginx "$NGINX_PID"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A PROXY_ADDR=([ward]="127.0.0.1:$WARD_PORT" [ward-l7]="127.0.0.1:$WARD_PORT")
declare -A PROXY_PID=()

if has_peer squid; then
  port="$(free_port)"
  mkdir -m 1777 "$T/squid"
  cat >"$T/squid.conf" <<EOF
http_port 127.0.0.1:$port
pid_filename none
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log $T/squid/cache.log
coredump_dir $T/squid
logfile_rotate 0
pinger_enable off
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
acl bench_ports port 8080 8443 9000-9999
http_access deny !bench_ports
http_access allow localhost
http_access deny all
forwarded_for delete
EOF
  squid -N -f "$T/squid.conf" >>"$LOGFILE" 2>&1 &
  STARTED+=("squid:$!")
  PROXY_PID[squid]=$!
  PROXY_ADDR[squid]="127.0.0.1:$port"
  wait_port 127.0.0.1 "$port" 20 || die "squid did not start (see $PARTIAL)"
fi
if has_peer tinyproxy; then
  port="$(free_port)"
  mkdir -m 1777 "$T/tinyproxy"
  user=""
  if id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null; then user=$'User nobody\nGroup nogroup'; fi
  cat >"$T/tinyproxy.conf" <<EOF
$user
Port $port
Listen 127.0.0.1
Timeout 600
MaxClients 1000
LogLevel Critical
LogFile "$T/tinyproxy/tinyproxy.log"
Allow 127.0.0.1
ConnectPort 8443
ConnectPort 9000
DisableViaHeader Yes
EOF
  tinyproxy -d -c "$T/tinyproxy.conf" >>"$LOGFILE" 2>&1 &
  STARTED+=("tinyproxy:$!")
  PROXY_PID[tinyproxy]=$!
  PROXY_ADDR[tinyproxy]="127.0.0.1:$port"
  wait_port 127.0.0.1 "$port" 20 || die "tinyproxy did not start (see $PARTIAL)"
fi
if has_peer mitmproxy; then
  # Regular proxy mode (it intercepts every CONNECT), HTTP/1.1, the upstream verified against the
  # test CA, no flow output; it makes its CA in confdir at start.
  port="$(free_port)"
  mitmdump --listen-host 127.0.0.1 --listen-port "$port" --set confdir="$T/mitmproxy" \
    --set ssl_verify_upstream_trusted_ca="$T/ca.pem" --set http2=false --set flow_detail=0 \
    --set termlog_verbosity=warn >"$T/mitmproxy.log" 2>&1 &
  STARTED+=("mitmproxy:$!")
  PROXY_PID[mitmproxy]=$!
  PROXY_ADDR[mitmproxy]="127.0.0.1:$port"
  wait_port 127.0.0.1 "$port" 60 || die "mitmdump did not start (see $PARTIAL)"
  [[ -s "$T/mitmproxy/mitmproxy-ca-cert.pem" ]] || die "mitmdump made no CA in $T/mitmproxy"
fi
# What each peer's HTTPS client trusts: the server it is shown is nginx, or the intercepting proxy.
declare -A CLIENT_CA=([ward-l7]=/etc/ward/tls/ca-bundle.pem [mitmproxy]="$T/mitmproxy/mitmproxy-ca-cert.pem")
client_ca() { echo "${CLIENT_CA[$1]:-$T/ca.pem}"; }

# --- what the clients run --------------------------------------------------------------------
wrk_done='done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKJSON {\"requests\":%d,\"duration_us\":%d,\"connect_errors\":%d,\"read_errors\":%d,\"write_errors\":%d,\"status_errors\":%d,\"timeouts\":%d,\"p50_us\":%d,\"p90_us\":%d,\"p99_us\":%d,\"mean_us\":%.1f,\"max_us\":%d}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end'
printf '%s\n' "$wrk_done" >"$T/direct.lua"
cat >"$T/proxy.lua" <<EOF
-- Through a proxy: the absolute URL in the request line (wrk connects to the proxy's address).
wrk.path = "http://$UP_IP:8080/"
-- sandbox-runtime's proxy wants its session's credentials (Proxy-Authorization) on every request.
local auth = os.getenv("WRK_PROXY_AUTH")
if auth and auth ~= "" then wrk.headers["Proxy-Authorization"] = auth end
$wrk_done
EOF

# idle.sh LOADGEN COUNT PROCS TARGET [--proxy ADDR]: COUNT tunnels from PROCS processes started one
# after another (each once the previous one holds its share), held until a file "release" appears
# in the current directory; "idle.open" says they are all open. Runs on the host or in a sandbox.
cat >"$T/idle.sh" <<'EOF'
lg=$1 count=$2 procs=$3 target=$4
shift 4
per=$(((count + procs - 1) / procs))
left=$count i=0 pids=""
while [ "$left" -gt 0 ]; do
  n=$per
  [ "$n" -gt "$left" ] && n=$left
  "$lg" idle --target "$target" --count "$n" --hold 3600 --timeout 60 "$@" >"idle.$i.json" 2>"idle.$i.err" &
  pid=$!
  pids="$pids $pid"
  until grep -q holding "idle.$i.err" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  left=$((left - n)) i=$((i + 1))
done
touch idle.open
while [ ! -e release ]; do sleep 0.05; done
kill $pids 2>/dev/null
wait
EOF

# ward's policies: every upstream an L4 endpoint (CONNECT is an opaque tunnel), and for ward-l7
# :8443 an L7 endpoint (ward intercepts, then lets GETs through: access read-only).
ward_policy() { # ward_policy ENDPOINT...
  printf 'version: 1\nfilesystem_policy:\n  include_workdir: true\n'
  printf '  read_only: [/usr, /lib, /lib64, /bin, /etc, %s, %s]\n' "$T" "$(dirname "$LOADGEN")"
  printf 'network_policies:\n  bench:\n    endpoints:\n'
  printf '      - %s\n' "$@"
  printf '    binaries: [{path: "/**"}]\n'
}
ips="allowed_ips: [$BENCH_NET.0/24]"
ward_policy "{host: $UP_IP, port: 8080, $ips}" "{host: $UP_IP, port: 8443, $ips}" \
  "{host: $UP_IP, ports: [9000, $(IFS=,; echo "${IDLE_PORTS[*]}")], $ips}" >"$T/ward.yaml"
ward_policy "{host: $UP_IP, port: 8443, protocol: rest, access: read-only, enforcement: enforce, $ips}" \
  >"$T/ward-l7.yaml"
cat >"$T/srt.json" <<EOF
{
  "network": { "allowedDomains": ["$UP_IP"], "deniedDomains": [] },
  "filesystem": { "denyRead": [], "allowWrite": [], "denyWrite": [] }
}
EOF

# --- running one measurement -----------------------------------------------------------------
# Each run appends one JSON line to $T/runs.jsonl: the test, the peer, the run number, the exit
# status, the proxy's CPU ticks over the run (null when not measured), the wall time, extra
# fields, and "raw": the client's own JSON (wrk's through the Lua script, ward-loadgen's).
RUNS_JSONL="$T/runs.jsonl"
: >"$RUNS_JSONL"
WARD_POLICY="$T/ward.yaml" # the policy of the next in_ward
WARD_EXTRA=()              # extra `ward run` options for the next in_ward
IN_WARD_PREFIX=()          # and a command that execs ward (to start it in a cgroup)
IN_WARD_HOOK=""
record() { # record TEST PEER RUN RC TICKS WALL OUTFILE [EXTRA_JSON_FIELDS]
  local raw
  raw="$(grep -m1 -o '{.*}' <(sed -n 's/^WRKJSON //p; /^{"mode"/p' "$7" 2>/dev/null) || true)"
  [[ -n "$raw" ]] || raw=null
  printf '{"test":"%s","peer":"%s","run":%s,"rc":%s,"cpu_ticks":%s,"wall_s":%s%s,"raw":%s}\n' \
    "$1" "$2" "$3" "$4" "${5:-null}" "$6" "${8:+,$8}" "$raw" >>"$RUNS_JSONL"
  {
    printf '### %s %s run %s: rc %s, proxy CPU ticks %s, %.2f s\n' "$1" "$2" "$3" "$4" "${5:-n/a}" "$6"
    cat "$7" 2>/dev/null
  } >>"$LOGFILE"
}
wait_file() { # wait_file FILE SECONDS PID [PER_SECOND]: until FILE exists, polling 50 (or
  local i n=${4:-50} dt # PER_SECOND) times a second; fails if PID ends or the time runs out
  dt="$(awk -v n="$n" 'BEGIN {print 1 / n}')"
  for ((i = 0; i < $2 * n; i++)); do
    [[ -e "$1" ]] && return 0
    pid_running "$3" || { [[ -e "$1" ]] && return 0 || return 1; }
    sleep "$dt"
  done
  return 1
}
# in_ward OUT SECONDS CMD...: runs CMD inside a ward sandbox (policy WARD_POLICY, workdir
# $WORKDIR, ward's state in WARD_STATE) with its stdout and stderr to OUT. Sets WARD_TICKS (ward's
# own CPU while CMD ran), WARD_WALL, WARD_RC (CMD's status, or 125 when it never ran). While CMD
# runs, this shell blocks on a FIFO that the sandbox writes CMD's status to: no polling competes
# with the measurement.
in_ward() {
  local out="$1" limit="$2" a b t0 fifo watcher
  shift 2
  rm -f "$WORKDIR"/{ready,go,quit,out,done.fifo}
  mkfifo "$WORKDIR/done.fifo"
  exec {fifo}<>"$WORKDIR/done.fifo" # read-write: opening it does not wait for the writer
  # shellcheck disable=SC2016 # expanded by the sandbox's shell
  local inner='touch ready; while [ ! -e go ]; do sleep 0.02; done; "$@" >out 2>&1; echo $? >done.fifo; while [ ! -e quit ]; do sleep 0.02; done'
  "${IN_WARD_PREFIX[@]}" "$WARD" run --state-dir "$WARD_STATE" --upstream-ca "$T/ca.pem" \
    "${WARD_EXTRA[@]}" -p "$WARD_POLICY" -- /bin/sh -c "$inner" sh "$@" \
    >"$T/ward.out" 2>"$T/ward.err" &
  WARD_BG=$!
  # Should ward end first, this ends the wait (it looks once a second).
  (
    while pid_running "$WARD_BG"; do sleep 1; done
    echo 125 >"$WORKDIR/done.fifo"
  ) &
  watcher=$!
  WARD_TICKS=null WARD_WALL=0 WARD_RC=125
  if wait_file "$WORKDIR/ready" 30 "$WARD_BG"; then
    [[ -z "$IN_WARD_HOOK" ]] || "$IN_WARD_HOOK" before
    a="$(cpu_ticks "$WARD_BG")"
    t0="$(now)"
    touch "$WORKDIR/go"
    [[ -z "$IN_WARD_HOOK" ]] || "$IN_WARD_HOOK" during
    if read -r -t "$limit" -u "$fifo" WARD_RC; then
      b="$(cpu_ticks "$WARD_BG")"
      WARD_WALL="$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')"
      [[ -z "$a" || -z "$b" ]] || WARD_TICKS=$((b - a))
    fi
    touch "$WORKDIR/quit"
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    pid_running "$WARD_BG" || break
    sleep 0.05
  done
  stop_pid "$WARD_BG"
  WARD_BG=""
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  exec {fifo}<&-
  cp "$WORKDIR/out" "$out" 2>/dev/null || : >"$out"
  if [[ -s "$T/ward.err" ]]; then
    {
      echo "(ward's stderr)"
      cat "$T/ward.err"
    } >>"$out"
  fi
}
# on_host OUT SECONDS PEER CMD...: runs CMD here; TICKS is the proxy PEER's CPU over it, if known.
on_host() {
  local out="$1" limit="$2" peer="$3" a="" b="" t0
  shift 3
  local pid="${PROXY_PID[$peer]:-}"
  [[ -z "$pid" ]] || a="$(cpu_ticks "$pid")"
  t0="$(now)"
  HOST_RC=0
  timeout "$limit" "$@" >"$out" 2>&1 || HOST_RC=$?
  HOST_WALL="$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')"
  [[ -z "$pid" ]] || b="$(cpu_ticks "$pid")"
  HOST_TICKS=null
  [[ -z "$a" || -z "$b" ]] || HOST_TICKS=$((b - a))
}
# client PEER OUT SECONDS KIND ARGS...: KIND is wrk (ARGS: wrk options without script and URL) or
# a ward-loadgen mode (ARGS: its options without --proxy and, for connect-tls, --cafile); runs it
# from where PEER's clients are. Sets RC, TICKS, WALL.
client() {
  local peer="$1" out="$2" limit="$3" kind="$4"
  shift 4
  local cmd=()
  if [[ "$kind" == wrk ]]; then
    if [[ "$peer" == direct ]]; then
      cmd=(wrk "$@" -s "$T/direct.lua" "http://$UP_IP:8080/")
    else
      cmd=(wrk "$@" -s "$T/proxy.lua" "http://${PROXY_ADDR[$peer]:-}")
    fi
  else
    cmd=("$LOADGEN" "$kind" "$@")
    [[ "$peer" == direct ]] || cmd+=(--proxy "${PROXY_ADDR[$peer]}")
    [[ "$kind" != connect-tls ]] || cmd+=(--cafile "$(client_ca "$peer")")
  fi
  case "$peer" in
    ward | ward-l7)
      [[ "$peer" == ward ]] || WARD_POLICY="$T/ward-l7.yaml"
      in_ward "$out" "$limit" "${cmd[@]}"
      WARD_POLICY="$T/ward.yaml"
      RC=$WARD_RC TICKS=$WARD_TICKS WALL=$WARD_WALL
      ;;
    srt)
      # The proxy inside srt's sandbox is HTTP_PROXY=http://USER:TOKEN@localhost:PORT.
      local script
      # shellcheck disable=SC2016 # both single-quoted parts are expanded inside srt's sandbox
      script='p="${HTTP_PROXY#http://}"; export WRK_PROXY_AUTH="Basic $(printf %s "${p%@*}" | base64 -w0)"; exec wrk'
      # shellcheck disable=SC2016
      script+=" $(printf '%q ' "${cmd[@]:1:${#cmd[@]}-2}")"' "http://${p##*@}"'
      on_host "$out" "$limit" srt "$SRT" --settings "$T/srt.json" -c "$script"
      RC=$HOST_RC TICKS=null WALL=$HOST_WALL
      ;;
    *)
      on_host "$out" "$limit" "$peer" "${cmd[@]}"
      RC=$HOST_RC TICKS=$HOST_TICKS WALL=$HOST_WALL
      ;;
  esac
}
round_log() { # and the 1-minute load average at the start of every round, for the results
  local load
  load="$(cut -d' ' -f1 /proc/loadavg)"
  echo "$load" >>"$T/loads"
  log "$PROXY_SUITE: $1 ($(date -u +%T), load $load)"
}

# --- 1. HTTP forward -------------------------------------------------------------------------
for ((r = 1; r <= RUNS; r++)); do
  has_test http || break
  round_log "http: wrk -t2 -c20 -d${DURATION}s, run $r/$RUNS: ${HTTP_RUN[*]}"
  for p in "${HTTP_RUN[@]}"; do
    client "$p" "$T/o" $((DURATION + 60)) wrk -t2 -c20 -d"${DURATION}s"
    record http "$p" "$r" "$RC" "$TICKS" "$WALL" "$T/o"
  done
done
for ((r = 1; r <= RUNS; r++)); do
  has_test http1 || break
  round_log "http1: wrk -t1 -c1 -d${LAT_DURATION}s, run $r/$RUNS: ${LAT_RUN[*]}"
  for p in "${LAT_RUN[@]}"; do
    client "$p" "$T/o" $((LAT_DURATION + 60)) wrk -t1 -c1 -d"${LAT_DURATION}s"
    record http1 "$p" "$r" "$RC" "$TICKS" "$WALL" "$T/o"
  done
done

# --- 2. HTTPS through CONNECT ----------------------------------------------------------------
# tls: 20 workers for TLS_DURATION s; tls1: one worker for LAT_DURATION s (nothing queues).
for test in tls tls1; do
  has_test "$test" || continue
  if [[ "$test" == tls ]]; then workers=20 secs=$TLS_DURATION; else workers=1 secs=$LAT_DURATION; fi
  tls_args=(--target "$UP_IP:8443" --concurrency "$workers" --duration "$secs")
  for mode in keepalive new resumed; do
    case "$mode" in
      keepalive) mode_args=() ;;
      new) mode_args=(--new-tunnel) ;;
      resumed) mode_args=(--new-tunnel --resume) ;;
    esac
    for ((r = 1; r <= RUNS; r++)); do
      round_log "$test-$mode: ward-loadgen connect-tls --concurrency $workers ${mode_args[*]}, run $r/$RUNS: ${TLS_RUN[*]}"
      for p in "${TLS_RUN[@]}"; do
        client "$p" "$T/o" $((secs + 60)) connect-tls "${tls_args[@]}" "${mode_args[@]}"
        record "$test-$mode" "$p" "$r" "$RC" "$TICKS" "$WALL" "$T/o"
      done
    done
  done
done

# --- 3. Bulk ---------------------------------------------------------------------------------
for ((r = 1; r <= RUNS; r++)); do
  has_test bulk || break
  round_log "bulk: $BULK_BYTES through one tunnel, run $r/$RUNS: ${BULK_RUN[*]}"
  for p in "${BULK_RUN[@]}"; do
    client "$p" "$T/o" 300 bulk --target "$UP_IP:9000" --bytes "$BULK_BYTES" --timeout 30
    record bulk "$p" "$r" "$RC" "$TICKS" "$WALL" "$T/o"
  done
done

# --- 4. Idle tunnels -------------------------------------------------------------------------
# Besides MemAvailable (everything on the machine, disturbed by anything else that runs), the
# openers (and, for ward, ward with its sandbox) run in a fresh memory cgroup when this script can
# make one (root with cgroup v1 memory, or v2 with memory delegated): its growth counts their
# memory and the kernel memory they are charged for (sockets, /proc entries), and nothing else.
CG_HOME="" CG_FILE="" CG_DIR="" CG_MADE=()
cg_init() {
  if memory_cgroup; then CG_HOME="$MEMCG_DIR" CG_FILE="$MEMCG_FILE"; fi
  return 0
}
cg_make() { # cg_make NAME: sets CG_DIR to a fresh child cgroup, or to "" when there is none
  CG_DIR=""
  [[ -n "$CG_HOME" ]] || return 0
  local dir="$CG_HOME/ward-bench-proxy-$$-$1"
  if mkdir "$dir" 2>/dev/null && [[ -r "$dir/$CG_FILE" ]]; then
    CG_DIR="$dir"
    CG_MADE+=("$dir")
  fi
  return 0
}
cg_kb() { if [[ -n "$CG_DIR" ]]; then echo $(($(<"$CG_DIR/$CG_FILE") / 1024)); fi; }
cg_remove() { # every cgroup made, once its processes are gone
  local dir i
  for dir in "${CG_MADE[@]}"; do
    for ((i = 0; i < 20; i++)); do
      rmdir "$dir" 2>/dev/null && break
      [[ -d "$dir" ]] || break
      sleep 0.1
    done
  done
  CG_MADE=()
}
# A prefix that moves itself into CG_DIR and execs the rest (same PID: $! stays the command's).
# shellcheck disable=SC2016 # expanded by that sh
cg_prefix() { if [[ -n "$CG_DIR" ]]; then CG_PREFIX=(/bin/sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG_DIR"); else CG_PREFIX=(); fi; }
cg_init
[[ -n "$CG_HOME" ]] || ! has_test idle || NOTES+=("the memory cgroup figure of the idle tunnels: this script cannot make a memory cgroup here (it needs root and cgroup v1 memory, or v2 with memory delegated)")
idle_hook() { # the in_ward hook: ward's memory before the tunnels and while they are held
  case "$1" in
    before)
      sleep "$IDLE_HOLD_S"
      IDLE_MEM0="$(mem_available_kb)" IDLE_RSS0="$(rss_kb "$WARD_BG")" IDLE_FD0="$(fd_count "$WARD_BG")"
      IDLE_CG0="$(cg_kb)"
      ;;
    during)
      IDLE_MEM1="" IDLE_RSS1="" IDLE_FD1="" IDLE_CG1=""
      if wait_file "$WORKDIR/idle.open" 600 "$WARD_BG" 10; then
        sleep "$IDLE_HOLD_S"
        IDLE_MEM1="$(mem_available_kb)" IDLE_RSS1="$(rss_kb "$WARD_BG")" IDLE_FD1="$(fd_count "$WARD_BG")"
        IDLE_CG1="$(cg_kb)"
      fi
      touch "$WORKDIR/release"
      ;;
  esac
}
idle_established() { # the tunnels the openers in DIR reported open
  cat "$1"/idle.*.err 2>/dev/null | awk '/tunnels open after/ {n += $3} END {print n + 0}'
}
idle_errors() { { cat "$1"/idle.*.err 2>/dev/null || true; } | { grep -v 'tunnels open after' || true; } | sort | uniq -c | head -n 5; }
idle_peers=()
for p in direct ward; do has_peer "$p" && idle_peers+=("$p"); done
idle_next=0
for ((r = 1; r <= RUNS; r++)); do
  has_test idle || break
  round_log "idle: $IDLE_COUNT tunnels from $IDLE_PROCS processes, run $r/$RUNS: ${idle_peers[*]}"
  for p in "${idle_peers[@]}"; do
    rm -f "$WORKDIR"/idle.* "$WORKDIR/release"
    idle_target="$UP_IP:${IDLE_PORTS[idle_next++ % ${#IDLE_PORTS[@]}]}"
    cg_make "$p-$r"
    cg_prefix
    IDLE_CG0="" IDLE_CG1=""
    if [[ "$p" == ward ]]; then
      WARD_EXTRA=(--max-connections $((IDLE_COUNT + 1000)))
      IN_WARD_PREFIX=("${CG_PREFIX[@]}")
      IN_WARD_HOOK=idle_hook
      in_ward "$T/o" 900 /bin/sh "$T/idle.sh" "$LOADGEN" "$IDLE_COUNT" "$IDLE_PROCS" "$idle_target" \
        --proxy "${PROXY_ADDR[ward]}"
      WARD_EXTRA=() IN_WARD_PREFIX=() IN_WARD_HOOK=""
      rc=$WARD_RC ticks=$WARD_TICKS wall=$WARD_WALL
      extra="\"rss_before_kb\":${IDLE_RSS0:-null},\"rss_held_kb\":${IDLE_RSS1:-null},\"fds_before\":${IDLE_FD0:-null},\"fds_held\":${IDLE_FD1:-null}"
    else
      sleep "$IDLE_HOLD_S"
      IDLE_MEM0="$(mem_available_kb)" IDLE_CG0="$(cg_kb)"
      t0="$(now)"
      "${CG_PREFIX[@]}" /bin/sh "$T/idle.sh" "$LOADGEN" "$IDLE_COUNT" "$IDLE_PROCS" "$idle_target" >"$T/o" 2>&1 &
      OTHER_BG=$!
      IDLE_MEM1=""
      if wait_file "$WORKDIR/idle.open" 600 "$OTHER_BG" 10; then
        sleep "$IDLE_HOLD_S"
        IDLE_MEM1="$(mem_available_kb)" IDLE_CG1="$(cg_kb)"
      fi
      touch "$WORKDIR/release"
      rc=0
      wait "$OTHER_BG" || rc=$?
      OTHER_BG=""
      ticks=null wall="$(awk -v a="$t0" -v b="$(now)" 'BEGIN {printf "%.3f", b - a}')"
      extra=""
    fi
    est="$(idle_established "$WORKDIR")"
    idle_errors "$WORKDIR" >>"$T/o"
    extra="\"count\":$IDLE_COUNT,\"procs\":$IDLE_PROCS,\"established\":$est,\"mem_available_before_kb\":${IDLE_MEM0:-null},\"mem_available_held_kb\":${IDLE_MEM1:-null},\"cgroup_before_kb\":${IDLE_CG0:-null},\"cgroup_held_kb\":${IDLE_CG1:-null}${extra:+,$extra}"
    record idle "$p" "$r" "$rc" "$ticks" "$wall" "$T/o" "$extra"
    sleep 1 # the closed tunnels' sockets are freed
    cg_remove
  done
done

# --- 5. Minting leaves ----------------------------------------------------------------------
# ward-tls-bench runs in one process with no proxy to interleave; its own repetitions give the
# median. The JSON's "benchmarks" go into the runs as one line of test "mint".
if has_test mint; then
  if [[ -x "$TLS_BENCH" ]]; then
    round_log "mint: ward-tls-bench, $MINT_REPS repetitions"
    rc=0
    timeout 600 "$TLS_BENCH" --benchmark_filter='Mint|CachedLeaf|Handshake' \
      --benchmark_repetitions="$MINT_REPS" --benchmark_format=json >"$T/mint.json" 2>"$T/mint.err" || rc=$?
    {
      echo "### mint: $TLS_BENCH, rc $rc"
      cat "$T/mint.err" "$T/mint.json"
    } >>"$LOGFILE"
    raw="$(python3 -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["benchmarks"]))' \
      "$T/mint.json" 2>/dev/null || echo null)"
    printf '{"test":"mint","peer":"ward","run":1,"rc":%s,"cpu_ticks":null,"wall_s":0,"raw":%s}\n' \
      "$rc" "$raw" >>"$RUNS_JSONL"
  else
    NOTES+=("minting a leaf: no ward-tls-bench at '$TLS_BENCH' (build it: cmake --build build --target ward-tls-bench)")
  fi
fi

# --- results ---------------------------------------------------------------------------------
versions() {
  local v=("ward $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo -)$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')")
  v+=("$(nginx -v 2>&1 | sed 's/.*version: //' || true)")
  if has_peer squid; then v+=("$(squid -v 2>/dev/null | sed -n '1s/ Cache: Version//p' || true)"); fi
  if has_peer tinyproxy; then v+=("$(tinyproxy -v 2>&1 | sed -n 1p || true)"); fi
  if has_peer srt; then v+=("srt $("$SRT" --version 2>/dev/null | sed -n 1p || true)"); fi
  if has_peer mitmproxy; then v+=("mitmproxy $(mitmdump --version 2>/dev/null | awk '/^Mitmproxy:/ {print $2}' || true)"); fi
  if has_test http || has_test http1; then v+=("$({ wrk -v 2>&1 || true; } | awk 'NR == 1 {print $1, $2}')"); fi
  v+=("$(openssl version | awk '{print $1, $2}' || true)")
  local IFS=';'
  printf '%s\n' "${v[*]}" | sed 's/;/; /g'
}
settings="RUNS=$RUNS"
if has_test http; then settings+=" DURATION=$DURATION"; fi
if has_test http1 || has_test tls1; then settings+=" LAT_DURATION=$LAT_DURATION"; fi
if has_test tls; then settings+=" TLS_DURATION=$TLS_DURATION"; fi
if has_test bulk; then settings+=" BULK_BYTES=$BULK_BYTES"; fi
if has_test idle; then settings+=" IDLE_COUNT=$IDLE_NOMINAL IDLE_PROCS=$IDLE_PROCS"; fi
if has_test mint; then settings+=" MINT_REPS=$MINT_REPS"; fi
command="sudo bench/$PROXY_SUITE.sh"
if [[ -n "${PROXY_TESTS:-}" ]]; then command="sudo PROXY_TESTS=\"${TESTS[*]}\" bench/$PROXY_SUITE.sh"; fi
skips=""
for p in "${!SKIP[@]}"; do skips+="$p: ${SKIP[$p]}"$'\n'; done
for n in "${NOTES[@]}"; do skips+="$n"$'\n'; done
python3 - "$RUNS_JSONL" "$RESULTS/$PROXY_SUITE.json" "$(machine_line)" "$(versions)" "$ticks_per_s" \
  "$T/loads" "$settings" "$skips" "$DURATION" "$LAT_DURATION" "$TLS_DURATION" "$BULK_BYTES" \
  "$IDLE_NOMINAL" "$PROXY_SUITE" "$command" >"$RESULTS/$PROXY_SUITE.md" <<'PY'
import json, statistics, sys
(path, out, machine, versions, hz, loads, settings, skips, duration, lat_duration, tls_duration,
 bulk_bytes, nominal, suite, command) = sys.argv[1:]
loads = [float(x) for x in open(loads).read().split()]
hz, nominal = int(hz), int(nominal)
runs = [json.loads(l) for l in open(path) if l.strip()]
order = ["direct", "ward", "ward-l7", "squid", "tinyproxy", "srt", "mitmproxy"]
label = {"direct": "direct (no proxy)", "ward": "ward, from inside `ward run`",
         "ward-l7": "ward intercepting (L7 endpoint), from inside `ward run`",
         "squid": "squid", "tinyproxy": "tinyproxy",
         "srt": "sandbox-runtime, from inside `srt`", "mitmproxy": "mitmproxy (mitmdump)"}
if suite == "https":
    label["ward"] = "ward opaque tunnel (L4 endpoint), from inside `ward run`"
med = statistics.median

def metrics(r):
    raw, t = r["raw"], r["test"]
    m = {"ok": r["rc"] == 0 and raw is not None}
    if raw is None:
        return m
    if t.startswith("http"):
        secs = raw["duration_us"] / 1e6
        m.update(rps=raw["requests"] / secs, requests=raw["requests"],
                 p50=raw["p50_us"] / 1000, p99=raw["p99_us"] / 1000,
                 errors=raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
                 status=raw["status_errors"])
    elif t.startswith("tls"):
        m.update(rps=raw["rps"], requests=raw["requests"], p50=raw["latency_ms"]["p50"],
                 p99=raw["latency_ms"]["p99"], errors=sum(raw["errors"].values()), status=0,
                 resumed=raw.get("tls_resumed", 0))
    elif t == "mint":
        m["benchmarks"] = mint_benchmarks(raw)
    elif t == "bulk":
        m.update(bps=raw["bytes_per_s"], secs=raw["duration_s"], complete=raw["complete"],
                 errors=0 if raw["complete"] else 1, requests=0)
        m["ok"] = m["ok"] and raw["complete"]
    if r["cpu_ticks"] is not None and m.get("requests"):
        m["cpu_us_per_req"] = r["cpu_ticks"] / hz * 1e6 / m["requests"]
    if r["cpu_ticks"] is not None and t == "bulk":
        m["cpu_s"] = r["cpu_ticks"] / hz
        m["cores"] = m["cpu_s"] / m["secs"]
    return m

def mint_benchmarks(raw):
    """ward-tls-bench's repetitions: {name: [real time µs of each]}."""
    per_us = {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}
    out = {}
    for b in raw:
        if b.get("run_type") == "iteration":
            out.setdefault(b["run_name"], []).append(b["real_time"] * per_us[b["time_unit"]])
    return out

def idle_metrics(r):
    m = {"ok": r["rc"] == 0 and r["established"] == r["count"], "established": r["established"]}
    n = r["established"] or 1
    if r["mem_available_before_kb"] is not None and r["mem_available_held_kb"] is not None:
        m["sys_kib"] = (r["mem_available_before_kb"] - r["mem_available_held_kb"]) / n
    if r.get("cgroup_before_kb") is not None and r.get("cgroup_held_kb") is not None:
        m["cg_kib"] = (r["cgroup_held_kb"] - r["cgroup_before_kb"]) / n
    if r.get("rss_before_kb") is not None and r.get("rss_held_kb") is not None:
        m["rss_kib"] = (r["rss_held_kb"] - r["rss_before_kb"]) / n
        m["fds"] = (r["fds_held"] - r["fds_before"]) / n
    return m

table = {}  # (test, peer) -> list of metric dicts
for r in runs:
    m = idle_metrics(r) if r["test"] == "idle" else metrics(r)
    r["metrics"] = m
    table.setdefault((r["test"], r["peer"]), []).append(m)

def agg(test, peer, key):
    vals = [m[key] for m in table.get((test, peer), []) if m.get("ok") and m.get(key) is not None]
    return (med(vals), min(vals), max(vals), len(vals)) if vals else None

def v(test, peer, key):
    a = agg(test, peer, key)
    return a[0] if a else None

def fmt(x, nd=0):
    return "–" if x is None else f"{x:,.{nd}f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"

def failed_runs(test, peer):
    ms = table.get((test, peer), [])
    return sum(1 for m in ms if not m.get("ok")), len(ms)

def peers_of(test):
    return [p for p in order if (test, p) in table]

def note_failed(test, peer):
    bad, n = failed_runs(test, peer)
    return f" ({bad} of {n} runs failed)" if bad else ""

def errs(test, peer):
    ms = [m for m in table.get((test, peer), []) if m.get("ok")]
    e = sum(m.get("errors", 0) for m in ms)
    s = sum(m.get("status", 0) for m in ms)
    out = []
    if e: out.append(f"{e:,} socket")
    if s: out.append(f"{s:,} non-2xx")
    return ", ".join(out) if out else "0"

verdicts = []
def verdict(name, value, ok, target):
    verdicts.append({"figure": name, "value": value, "target": target,
                     "pass": None if ok is None else bool(ok)})
    state = "not measured" if ok is None else ("PASS" if ok else "MISSED")
    return f"- {name}: **{value}** — target {target}: {state}"

n_runs = max(len(v_) for v_ in table.values()) if table else 0
if suite == "https":
    print("### HTTPS interception: ward against its opaque tunnel, mitmproxy and no proxy\n")
else:
    print("### Egress proxy: ward against squid, tinyproxy, sandbox-runtime and no proxy\n")
print(f"Machine: {machine}  ")
print(f"Versions: {versions}  ")
print(f"Command: `{command}` ({settings}); every figure is the median of {n_runs} runs, "
      "the peers interleaved in each round.  ")
if loads:
    print(f"Load: the 1-minute load average was {min(loads):.2f}–{max(loads):.2f} at the start of the "
          f"{len(loads)} rounds (the benchmark's own processes count in it too).")
print()
lines = []

# HTTP
d50 = v("http", "direct", "p50"); sq = v("http", "squid", "rps")
d1 = v("http1", "direct", "p50")
if any(t.startswith("http") for t, _ in table):
    print(f"#### HTTP forward: `wrk -t2 -c20 -d{duration}s`, GET of a 17-byte page through each proxy\n")
    print("| path | req/s | min–max | p50 ms | p99 ms | p50 over direct ms | proxy CPU µs/req | errors | × squid | × direct |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in peers_of("http"):
        a = agg("http", p, "rps")
        p50 = v("http", p, "p50")
        add = f"{p50 - d50:+.2f}" if p50 is not None and d50 is not None and p != "direct" else "–"
        rng = f"{a[1]:,.0f}–{a[2]:,.0f}" if a else "–"
        print(f"| {label[p]}{note_failed('http', p)} | {fmt(a[0] if a else None)} | {rng} | {fmt(p50, 2)} "
              f"| {fmt(v('http', p, 'p99'), 2)} | {add} | {fmt(v('http', p, 'cpu_us_per_req'), 1)} "
              f"| {errs('http', p)} | {ratio(a[0] if a else None, sq)} | {ratio(a[0] if a else None, v('http', 'direct', 'rps'))} |")
    print("\nProxy CPU: utime + stime of the proxy's process over the run ÷ requests (ward: the ward process, "
          "whose proxy thread does the work; the sandbox's own processes are not in it)."
          + (" tinyproxy closes the connection after every response, which wrk counts as a socket "
             "(read) error; the requests themselves succeed." if ("http", "tinyproxy") in table else ""))
    print(f"\nOne connection, nothing queued (`wrk -t1 -c1 -d{lat_duration}s`), p50 ms: " + ", ".join(
        f"{p} {fmt(v('http1', p, 'p50'), 3)}" + (f" ({v('http1', p, 'p50') - d1:+.3f})" if p != "direct" and d1 is not None and v('http1', p, 'p50') is not None else "")
        for p in peers_of("http1")) + " (in parentheses: added over direct).\n")
    w, wp = v("http", "ward", "rps"), v("http", "ward", "p50")
    lines.append(verdict("HTTP forward, ward ÷ squid requests/s", ratio(w, sq),
                         None if w is None or not sq else w / sq >= 2, "≥ 2"))
    lines.append(verdict("HTTP forward, ward's p50 over direct under `-c20`",
                         "–" if wp is None or d50 is None else f"{wp - d50:+.2f} ms",
                         None if wp is None or d50 is None else wp - d50 <= 0.3, "≤ 0.3 ms"))
    w1 = v("http1", "ward", "p50")
    lines.append(verdict("HTTP forward, ward's p50 over direct with one connection (`-c1`)",
                         "–" if w1 is None or d1 is None else f"{w1 - d1:+.3f} ms",
                         None if w1 is None or d1 is None else w1 - d1 <= 0.3, "≤ 0.3 ms"))

# TLS
def tls_modes(test):
    return [f"{test}-keepalive", f"{test}-new", f"{test}-resumed"]

def tls_peers(test):
    return [p for p in order if any((m, p) in table for m in tls_modes(test))]

def per_mode(test, p, fn):
    return " / ".join(fn(m, p) for m in tls_modes(test))

def tls_errors(test, p):
    return ", ".join(f"{m.split('-')[1]}: {errs(m, p)}" for m in tls_modes(test) if errs(m, p) != "0") or "0"

def tls_failed(test, p):
    return "".join(note_failed(m, p) for m in tls_modes(test))

cpu_note = ("Proxy CPU: utime + stime of the proxy's process over the run ÷ requests (ward: the ward "
            "process, whose proxy thread does the work; the sandbox's own processes are not in it).")
if tls_peers("tls"):
    peers = tls_peers("tls")
    refs = [r for r in ("squid", "mitmproxy") if r in peers]
    print(f"#### HTTPS through CONNECT: `ward-loadgen connect-tls --concurrency 20 --duration {tls_duration}`, "
          "TLS 1.3 to nginx (ECDSA P-256)\n")
    print("| path | keep-alive req/s | p50 ms | new tunnel + full handshake req/s | p50 ms "
          "| new tunnel + resumed handshake req/s | p50 ms | proxy CPU µs/req (keep-alive / new / resumed) | errors | "
          + "".join(f"× {r} (keep-alive / new / resumed) | " for r in refs)
          + "× direct (keep-alive / new / resumed) |")
    print("|---|" + "---:|" * (9 + len(refs)))
    for p in peers:
        cells = []
        for m in tls_modes("tls"):
            cells += [fmt(v(m, p, "rps")), fmt(v(m, p, "p50"), 2)]
        cpu = per_mode("tls", p, lambda m, p: fmt(v(m, p, "cpu_us_per_req"), 0))
        xs = [per_mode("tls", p, lambda m, p: ratio(v(m, p, "rps"), v(m, r, "rps"))) for r in refs + ["direct"]]
        print(f"| {label[p]}{tls_failed('tls', p)} | " + " | ".join(cells)
              + f" | {cpu} | {tls_errors('tls', p)} | " + " | ".join(xs) + " |")
    if not any(t.startswith("http") for t, _ in table):
        print("\n" + cpu_note)
    cn, cr = v("tls-new", "direct", "rps"), v("tls-resumed", "direct", "rps")
    sn, sr = v("tls-new", "squid", "rps"), v("tls-resumed", "squid", "rps")
    if cn and sn and cr and sr:
        print(f"\nNo proxy can beat no proxy: direct ÷ squid is {cn / sn:.2f} with full handshakes and "
              f"{cr / sr:.2f} with resumed ones, the most any proxy could score against the ≥ 1.5 target "
              "on this machine (the TLS handshakes of client and server share its CPUs with the proxy).")
    print()
    if suite == "proxy":
        for m, name, tgt, ref, thr in (
                ("tls-new", "HTTPS, new tunnel + full handshake per request, ward ÷ squid", "≥ 1.5", "squid", 1.5),
                ("tls-resumed", "HTTPS, new tunnel + resumed handshake per request, ward ÷ squid", "≥ 1.5", "squid", 1.5),
                ("tls-keepalive", "HTTPS keep-alive, ward ÷ direct", "≥ 0.9", "direct", 0.9)):
            a, b = v(m, "ward", "rps"), v(m, ref, "rps")
            lines.append(verdict(name, ratio(a, b), None if a is None or not b else a / b >= thr, tgt))

def over_direct(m, p, key="p50"):
    a, d = v(m, p, key), v(m, "direct", key)
    return "–" if a is None or d is None or p == "direct" else f"{a - d:+.2f}"

if tls_peers("tls1"):
    print(f"#### HTTPS latency, one worker, nothing queued: `ward-loadgen connect-tls --concurrency 1 "
          f"--duration {lat_duration}`\n")
    print("| path | keep-alive p50 ms | over direct | new tunnel + full handshake p50 ms | over direct "
          "| new tunnel + resumed handshake p50 ms | over direct | p99 ms (keep-alive / new / resumed) "
          "| proxy CPU µs/req (keep-alive / new / resumed) | errors |")
    print("|---|" + "---:|" * 9)
    for p in tls_peers("tls1"):
        cells = []
        for m in tls_modes("tls1"):
            cells += [fmt(v(m, p, "p50"), 2), over_direct(m, p)]
        p99 = per_mode("tls1", p, lambda m, p: fmt(v(m, p, "p99"), 2))
        cpu = per_mode("tls1", p, lambda m, p: fmt(v(m, p, "cpu_us_per_req"), 0))
        print(f"| {label[p]}{tls_failed('tls1', p)} | " + " | ".join(cells)
              + f" | {p99} | {cpu} | {tls_errors('tls1', p)} |")
    print("\nA request's latency here includes, with a new tunnel, the TCP connection to the proxy (or "
          "the server), the CONNECT and the client's TLS handshake; an intercepting proxy also connects "
          "and shakes hands with the server before it answers the CONNECT.\n")

# Minting
mint = [m for m in table.get(("mint", "ward"), []) if m.get("ok")]
mint_us = mint[0]["benchmarks"] if mint else {}
if ("mint", "ward") in table:
    what = {"BM_MintLeaf": "minting a leaf for a new host (CA signature, LRU insert)",
            "BM_CachedLeaf": "a cached leaf (LRU lookup)",
            "BM_FullHandshake": "a full TLS 1.3 handshake in memory, ward's server side (cached leaf) "
                                "against ward's upstream side",
            "BM_ResumedHandshake": "the same, resumed (ward's upstream session cache)"}
    print("#### ward_tls in-process: `build/bench/ward-tls-bench --benchmark_filter='Mint|CachedLeaf|Handshake'`\n")
    print("| benchmark | what | median µs | min–max µs | repetitions |")
    print("|---|---|---:|---:|---:|")
    for name, xs in mint_us.items():
        print(f"| {name} | {what.get(name, '')} | {fmt(med(xs), 2)} | {min(xs):,.2f}–{max(xs):,.2f} | {len(xs)} |")
    if not mint_us:
        print("| (ward-tls-bench failed: see the log) | | – | – | 0 |")
    print()

if suite == "https" or ("tls-keepalive", "ward-l7") in table:
    ka, kd, km = v("tls-keepalive", "ward-l7", "rps"), v("tls-keepalive", "direct", "rps"), v("tls-keepalive", "mitmproxy", "rps")
    lines.append(verdict("HTTPS keep-alive, intercepting ward ÷ direct requests/s", ratio(ka, kd),
                         None if ka is None or not kd else ka / kd >= 0.7, "≥ 0.7"))
    lines.append(verdict("HTTPS keep-alive, intercepting ward ÷ mitmproxy requests/s", ratio(ka, km),
                         None if ka is None or not km else ka / km >= 5, "≥ 5"))
    n1, d1n = v("tls1-new", "ward-l7", "p50"), v("tls1-new", "direct", "p50")
    lines.append(verdict("New connection + full handshake per request (one worker, cached leaf), "
                         "intercepting ward's p50 over direct",
                         "–" if n1 is None or d1n is None else f"{n1 - d1n:+.2f} ms",
                         None if n1 is None or d1n is None else n1 - d1n <= 1.5, "≤ 1.5 ms"))
    mu = med(mint_us["BM_MintLeaf"]) if "BM_MintLeaf" in mint_us else None
    lines.append(verdict("Minting a leaf for a new host (ward-tls-bench, median)",
                         "–" if mu is None else f"{mu / 1000:.2f} ms", None if mu is None else mu <= 5000,
                         "≤ 5 ms"))
    cpu = [(m, v(m, "ward-l7", "cpu_us_per_req"), v(m, "ward", "cpu_us_per_req"))
           for m in ("tls-keepalive", "tls-new", "tls-resumed")]
    lines.append("- ward's CPU per intercepted request (20 workers): "
                 + ", ".join(f"{m.split('-')[1]} **{fmt(a, 0)} µs** (opaque tunnel: {fmt(b, 0)} µs)" for m, a, b in cpu)
                 + " — no target")

# Bulk
if any(t == "bulk" for t, _ in table):
    print(f"#### Bulk: `ward-loadgen bulk --bytes {bulk_bytes}` through one tunnel\n")
    print("| path | GB/s | MiB/s | min–max GB/s | proxy CPU s | proxy cores (CPU s ÷ transfer s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for p in peers_of("bulk"):
        a = agg("bulk", p, "bps")
        print(f"| {label[p]}{note_failed('bulk', p)} | {fmt(a[0] / 1e9 if a else None, 2)} "
              f"| {fmt(a[0] / 2**20 if a else None)} | "
              + (f"{a[1] / 1e9:.2f}–{a[2] / 1e9:.2f}" if a else "–")
              + f" | {fmt(v('bulk', p, 'cpu_s'), 2)} | {fmt(v('bulk', p, 'cores'), 2)} |")
    print()
    b, c = v("bulk", "ward", "bps"), v("bulk", "ward", "cores")
    lines.append(verdict("Bulk through ward's tunnel", "–" if b is None else f"{b / 1e9:.2f} GB/s",
                         None if b is None else b >= 1e9, "≥ 1 GB/s"))
    lines.append(verdict("…on ward's CPU", "–" if c is None else f"{c:.2f} cores",
                         None if c is None else c <= 1.0, "≤ 1 core"))

# Idle
if any(t == "idle" for t, _ in table):
    cnt = next(r["count"] for r in runs if r["test"] == "idle")
    procs = next(r["procs"] for r in runs if r["test"] == "idle")
    have_cg = any(m.get("cg_kib") is not None for (t, _), ms in table.items() if t == "idle" for m in ms)
    openers = "one process" if procs == 1 else f"{procs} processes"
    print(f"#### Idle tunnels: {cnt:,} opened by {openers} one after another, then held\n")
    print("| path | tunnels open | ward RSS KiB per tunnel | ward descriptors per tunnel "
          "| memory cgroup KiB per tunnel | system KiB per tunnel (MemAvailable) | each run (MemAvailable) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in peers_of("idle"):
        ests = [m["established"] for m in table[("idle", p)]]
        each = " / ".join(fmt(m.get("sys_kib"), 1) for m in table[("idle", p)])
        print(f"| {label[p]}{note_failed('idle', p)} | {'/'.join(f'{e:,}' for e in ests)} "
              f"| {fmt(v('idle', p, 'rss_kib'), 1)} | {fmt(v('idle', p, 'fds'), 2)} "
              f"| {fmt(v('idle', p, 'cg_kib'), 1)} | {fmt(v('idle', p, 'sys_kib'), 1)} | {each} |")
    ws, ds = v("idle", "ward", "sys_kib"), v("idle", "direct", "sys_kib")
    sys_share = ws - ds if ws is not None and ds is not None else None
    sys_vals = [m.get("sys_kib") for p in peers_of("idle") for m in table[("idle", p)]]
    disturbed = any(x is not None and x < 0 for x in sys_vals) or (sys_share is not None and sys_share < 0)
    if disturbed:
        ws = sys_share = None
    wc, dc = v("idle", "ward", "cg_kib"), v("idle", "direct", "cg_kib")
    cg_share = wc - dc if wc is not None and dc is not None else None
    print("\nThe **memory cgroup** holds the openers (for ward, ward and its whole sandbox, the openers "
          "included) and nothing else: its growth is their memory and the kernel memory charged to them "
          "(sockets, /proc entries), whatever else runs on the machine. **MemAvailable** is the whole "
          "machine: the server's side too, and anything else that allocates or frees meanwhile. The "
          "direct run has only the clients (and the server), so ward run − direct run is ward's share"
          + (f": **{cg_share:.1f} KiB per tunnel** (cgroup)" if cg_share is not None else "")
          + (f", {sys_share:.1f} KiB (MemAvailable)" if sys_share is not None else "") + ".")
    if disturbed:
        print("\n**MemAvailable was disturbed**: other processes freed memory while tunnels were held "
              "(a negative growth), so this run's MemAvailable figures say nothing.")
    print()
    rss = v("idle", "ward", "rss_kib")
    share, how = (cg_share, "memory cgroup") if cg_share is not None else (sys_share, "MemAvailable")
    lines.append(verdict("Idle tunnel, ward's RSS", "–" if rss is None else f"{rss:.1f} KiB",
                         None if rss is None else rss <= 64, "≤ 64 KiB"))
    lines.append(verdict(f"Idle tunnel, ward's share with the kernel's (ward run − direct run, {how})",
                         "–" if share is None else f"{share:.1f} KiB",
                         None if share is None else share <= 64, "≤ 64 KiB"))
    scaled = "" if nominal == cnt else f" ({cnt:,} measured, × {nominal / cnt:.3f})"
    tot = share * nominal / 1024 if share is not None else None
    whole = (f" (the whole machine grew by {ws * nominal / 1024:,.0f} MiB, clients and server included)"
             if ws is not None else "")
    lines.append(verdict(f"{nominal:,} idle tunnels held, ward's share{scaled}",
                         "–" if tot is None else f"{tot:,.0f} MiB", None if tot is None else
                         (tot <= 1024 and v('idle', 'ward', 'established') == cnt), "≤ 1 GB") + whole)

print("#### ward against the targets\n")
print("\n".join(lines))
if skips.strip():
    print("\nNot measured, or measured differently:")
    for s_ in skips.strip().split("\n"):
        print(f"- {s_}.")
bad = [f"{t} {p}" for (t, p), ms in table.items() if p.startswith("ward") and any(not m.get("ok") for m in ms)]
if bad:
    print(f"\n**WARNING: ward runs failed: {', '.join(bad)} (see bench/results/{suite}.log).**")
json.dump({"machine": machine, "versions": versions, "settings": settings, "runs": runs,
           "verdicts": verdicts}, open(out, "w"), indent=2)
PY
busy_note >>"$RESULTS/$PROXY_SUITE.md"
cp "$LOGFILE" "$RESULTS/$PROXY_SUITE.log"
rm -f "$PARTIAL"
FINISHED=1
cat "$RESULTS/$PROXY_SUITE.md"
log "$PROXY_SUITE: finished in $((SECONDS / 60)) min $((SECONDS % 60)) s"
if grep -q 'WARNING:' "$RESULTS/$PROXY_SUITE.md"; then exit 1; fi
