#!/usr/bin/env bash
# bench/fuzz-unpack.sh — fuzz the download unpacker (fuzz/unpack_fuzz.cc) with libFuzzer: ward's
# rules on each entry libarchive reads (names, member kinds, symlink and hard link targets, the
# walk that refuses what is in the way) and libarchive's disk writer under them, unpacking into a
# real directory that already holds a symlink out of it. libarchive itself is not instrumented
# (it is the Debian package's, fuzzed upstream); its entries come from mutated tar headers
# (ustar prefixes, GNU long names, pax records).
#
#   bench/fuzz-unpack.sh [SECONDS]     default 60
#
# Builds the target with clang (ASan + UBSan + libFuzzer) straight from the sources, linked with
# the system's libarchive (libarchive-dev), seeds its corpus with archives made by python3's
# tarfile (when there is a python3), runs it and prints the number of executions and whether
# anything was found. Exits non-zero on a finding (a crash, a file written outside the tree, a
# symlink planted that leads out of it, the symlink already there replaced); the reproducer is
# left in the artifacts directory printed at the end. The corpus is kept between runs in FUZZ_DIR
# (under build-*, which git ignores).
# Environment: CXX (default clang++), FUZZ_DIR (default <repo>/build-fuzz-unpack).
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
CXX="${CXX:-clang++}"
FUZZ_DIR="${FUZZ_DIR:-$ROOT/build-fuzz-unpack}"
NAME=unpack_fuzz

die() {
  printf 'fuzz-unpack.sh: error: %s\n' "$*" >&2
  exit 2
}
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || die "SECONDS must be a whole number, got '$SECONDS_TO_RUN'"
command -v "$CXX" >/dev/null || die "$CXX not found (install clang)"

mkdir -p "$FUZZ_DIR/bin" "$FUZZ_DIR/$NAME/corpus" "$FUZZ_DIR/$NAME/artifacts"
BIN="$FUZZ_DIR/bin/$NAME"
echo "==> building $BIN"
"$CXX" -std=c++20 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -O1 -g \
  -I"$ROOT/src" "$ROOT/fuzz/unpack_fuzz.cc" "$ROOT/src/cli/unpack.cc" -larchive -o "$BIN"

if command -v python3 >/dev/null; then
  python3 - "$FUZZ_DIR/$NAME/corpus" <<'PY'
import io, sys, tarfile
out = sys.argv[1]
def archive(name, fmt, members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for m in members:
            info = tarfile.TarInfo(m[0])
            info.type, data = m[1], m[2] if len(m) > 2 else b""
            if info.type == tarfile.SYMTYPE or info.type == tarfile.LNKTYPE:
                info.linkname, data = data.decode(), b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    for piece in (b"\x00", b"\x07"):
        open("%s/%s-%d" % (out, name, piece[0]), "wb").write(piece + buf.getvalue())
D, F, S, H = tarfile.DIRTYPE, tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE
archive("plain", tarfile.GNU_FORMAT, [("./d", D), ("./d/f", F, b"x\n"), ("./l", S, b"d/f")])
archive("long", tarfile.GNU_FORMAT, [("./" + "n" * 150 + "/f", F, b"y"), ("./h", H, b"./" + b"n" * 150 + b"/f")])
archive("pax", tarfile.PAX_FORMAT, [("./" + "p" * 120, F, b"z" * 600), ("./q", S, b"p" * 120)])
archive("ustar", tarfile.USTAR_FORMAT, [("a" * 90 + "/" + "b" * 90, F, b"w")])
archive("escape", tarfile.GNU_FORMAT, [("./abs", S, b"/tmp"), ("./abs/x", F, b"x"), ("./up", S, b"../.."),
        ("./up/x", F, b"x"), ("./old/x", F, b"x"), ("./old", F, b"x"), ("./dots", S, b"d/../.."),
        ("./h", H, b"old/x")])
PY
fi

LOG="$FUZZ_DIR/$NAME/fuzz.log"
export UNPACK_FUZZ_TMP="$FUZZ_DIR/$NAME/scratch"
mkdir -p "$UNPACK_FUZZ_TMP"
trap 'chmod -R u+rwx "$UNPACK_FUZZ_TMP" 2>/dev/null; rm -rf "$UNPACK_FUZZ_TMP"' EXIT
echo "==> fuzzing $NAME for $SECONDS_TO_RUN s"
if ! "$BIN" -max_total_time="$SECONDS_TO_RUN" -max_len=20000 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$FUZZ_DIR/$NAME/artifacts/" "$FUZZ_DIR/$NAME/corpus" >"$LOG" 2>&1; then
  tail -n 40 "$LOG"
  die "$NAME found a problem; reproducer in $FUZZ_DIR/$NAME/artifacts/"
fi
execs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$LOG" | awk '{print $2}' || true)"
[[ -n "$execs" ]] || execs="$(grep -Eo '#[0-9]+' "$LOG" | tail -n 1 | tr -d '#')"
echo "    $NAME: ${execs:-?} executions in $SECONDS_TO_RUN s, nothing found"
echo "==> no findings (work directory: $FUZZ_DIR)"
