#!/usr/bin/env bash
# bench/https.sh — ward's HTTPS interception against its own opaque CONNECT tunnel, mitmproxy and
# no proxy, in ONE run on the same machine (issue 4's figures). Root only.
#
#   sudo bench/setup-peers.sh && sudo bench/https.sh
#
# This is bench/proxy.sh's HTTPS suite (PROXY_SUITE=https): the same network namespace, nginx
# (TLS 1.3, ECDSA P-256, a certificate for 10.232.0.2 from a throw-away test CA) and machinery;
# read proxy.sh's header for how each peer runs. The peers, all measured with ward-loadgen
# connect-tls, every client verifying the certificate it is shown (--cafile):
#   direct     no proxy, trusting the test CA
#   ward       from inside `ward run`; :8443 is an L4 endpoint: CONNECT is an opaque tunnel
#   ward-l7    from inside `ward run`; :8443 is an L7 endpoint ({protocol: rest, access: read-only,
#              enforcement: enforce}): ward verifies nginx against the test CA (--upstream-ca),
#              answers 200, terminates the client's TLS with a leaf from its CA (state in a
#              temporary --state-dir) and forwards each GET after the L7 decision; the client
#              trusts /etc/ward/tls/ca-bundle.pem
#   mitmproxy  mitmdump in regular proxy mode, HTTP/1.1, quiet, nginx verified against the test
#              CA (ssl_verify_upstream_trusted_ca); the client trusts mitmproxy's CA
# What runs, each RUNS (3) times with the peers interleaved: keep-alive, a new tunnel + full
# handshake per request, and a new tunnel + resumed handshake per request, with 20 workers for
# TLS_DURATION (3) s and with one worker for LAT_DURATION (2) s; then build/bench/ward-tls-bench
# (--benchmark_filter='Mint|CachedLeaf|Handshake', MINT_REPS (5) repetitions).
# Writes bench/results/https.{md,json,log}. Targets (a miss is reported, not fatal): keep-alive
# intercepted ≥ 0.7× direct and ≥ 5× mitmproxy's requests/s; a new connection + full handshake
# per request (one worker, cached leaf) at most 1.5 ms of p50 over direct; minting a leaf ≤ 5 ms.
# Exits 1 when a ward run failed. Takes about 4 minutes on 2 vCPUs (6 with RUNS=5).
# Environment: as bench/proxy.sh (WARD, LOADGEN, TLS_BENCH, PROXY_PEERS, RUNS, TLS_DURATION,
# LAT_DURATION, MINT_REPS, BENCH_NET, ...).
set -euo pipefail
PROXY_SUITE=https exec "$(dirname "${BASH_SOURCE[0]}")/proxy.sh" "$@"
