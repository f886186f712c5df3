#!/usr/bin/env python3
"""bench/proctree.py — process-tree helpers for bench/density.sh (reads /proc only).

  proctree.py launch DIR N TIMEOUT [CG_ENTER CG_LEAVE] -- CMD...
      Start N copies of CMD (posix_spawn: a vfork, so the launcher's own cost stays small; stdin
      and stdout /dev/null, stderr appended to DIR/err), write their PIDs to DIR/roots, then poll
      until each has a process named `sleep` in its tree (the root itself or a descendant), or
      TIMEOUT seconds pass, keeping DIR/snap up to date with every process of those trees
      ("pid starttime comm" lines) so that the caller can kill them even if a root exits. Writes
      DIR/result.json: t0, launched_at, ready_at (epoch seconds), ready, dead, procs_per_sandbox
      (median tree size), timed_out. Then stays the parent of the N and reaps them, exiting when
      the last is gone. With CG_ENTER/CG_LEAVE (cgroup.procs files), the launcher moves itself
      into CG_ENTER's cgroup while spawning, so the N start there, and back to CG_LEAVE's.
  proctree.py snapshot ROOTS SNAPSHOT
      Add the current trees of ROOTS to SNAPSHOT.
  proctree.py alive SNAPSHOT
      Print the lines of SNAPSHOT whose process still exists (same pid and start time, not a zombie).
  proctree.py in-cgroup SNAPSHOT CGPATH
      Count the live processes of SNAPSHOT named `sleep` whose memory cgroup (v1 "memory" line,
      else the v2 "0::" line of /proc/PID/cgroup) is CGPATH or below it.
  proctree.py count-cmd ARG...
      Count the live processes whose command line is exactly ARG... (e.g. sleep 600).
"""
import json
import os
import statistics
import sys
import time


def read_procs():
    """pid -> (ppid, starttime, comm) for every process on the host."""
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read().decode(errors="replace")
        except OSError:
            continue
        head, _, rest = data.rpartition(")")
        comm = head.partition("(")[2]
        fields = rest.split()
        # fields[0] is state (field 3); ppid is field 4, starttime field 22.
        if fields[0] in ("Z", "X"):  # exited, waiting to be reaped: gone for our purposes
            continue
        procs[int(name)] = (int(fields[1]), int(fields[19]), comm)
    return procs


def trees(roots, procs):
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out = {}
    for root in roots:
        if root not in procs:
            continue
        seen, stack = [], [root]
        while stack:
            pid = stack.pop()
            seen.append(pid)
            stack.extend(children.get(pid, ()))
        out[root] = seen
    return out


def read_roots(path):
    with open(path) as f:
        return [int(line) for line in f if line.strip()]


def merge_snapshot(path, tree_map, procs):
    known = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                pid, start, comm = line.split(" ", 2)
                known[(int(pid), int(start))] = comm.rstrip("\n")
    for pids in tree_map.values():
        for pid in pids:
            _, start, comm = procs[pid]
            known[(pid, start)] = comm
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for (pid, start), comm in known.items():
            f.write(f"{pid} {start} {comm}\n")
    os.replace(tmp, path)


def cmd_launch(workdir, n, timeout, *rest):
    cg_enter = cg_leave = None
    if rest[0] != "--":
        cg_enter, cg_leave, rest = rest[0], rest[1], rest[2:]
    argv = list(rest[1:])
    n, timeout = int(n), float(timeout)
    roots_path, snapshot = f"{workdir}/roots", f"{workdir}/snap"
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, f"{workdir}/err", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644),
    ]
    env = dict(os.environ)
    path = argv[0]
    if "/" not in path:
        path = next((f"{d}/{path}" for d in env.get("PATH", "").split(":")
                     if os.access(f"{d}/{path}", os.X_OK)), path)
    if cg_enter:
        with open(cg_enter, "w") as f:
            f.write(str(os.getpid()))
    roots = []
    t0 = time.time()
    try:
        for _ in range(n):
            roots.append(os.posix_spawn(path, argv, env, file_actions=actions))
    finally:
        launched_at = time.time()
        if cg_leave:
            with open(cg_leave, "w") as f:
                f.write(str(os.getpid()))
        with open(roots_path + ".tmp", "w") as f:
            f.write("".join(f"{pid}\n" for pid in roots))
        os.replace(roots_path + ".tmp", roots_path)

    deadline = t0 + timeout
    result = {"t0": t0, "launched_at": launched_at, "ready": 0, "dead": 0, "ready_at": None,
              "procs_per_sandbox": None, "timed_out": False}
    last_merge = 0.0
    while True:
        now = time.time()
        procs = read_procs()
        tmap = trees(roots, procs)
        ready = [r for r, pids in tmap.items() if any(procs[p][2] == "sleep" for p in pids)]
        result["ready"], result["dead"] = len(ready), len(roots) - len(tmap)
        if len(ready) >= n:
            result["ready_at"] = now
            result["procs_per_sandbox"] = statistics.median(len(tmap[r]) for r in ready)
            merge_snapshot(snapshot, tmap, procs)
            break
        if now - last_merge > 0.5:
            merge_snapshot(snapshot, tmap, procs)
            last_merge = now
        if now > deadline or result["dead"] > len(roots) - n:
            result["timed_out"] = now > deadline
            merge_snapshot(snapshot, tmap, procs)
            break
        time.sleep(0.01)
    with open(f"{workdir}/result.json.tmp", "w") as f:
        json.dump(result, f)
    os.replace(f"{workdir}/result.json.tmp", f"{workdir}/result.json")
    # Stay their parent (as a shell running them in the background would) and reap them.
    sys.stdout.close()
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue


def cmd_snapshot(roots_path, snapshot):
    procs = read_procs()
    merge_snapshot(snapshot, trees(read_roots(roots_path), procs), procs)


def cmd_alive(snapshot):
    if not os.path.exists(snapshot):
        return
    procs = read_procs()
    with open(snapshot) as f:
        for line in f:
            pid, start, _ = line.split(" ", 2)
            p = procs.get(int(pid))
            if p and p[1] == int(start):
                sys.stdout.write(line)


def memory_cgroup(pid):
    v1 = v2 = None
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                v1 = path
            elif controllers == "":
                v2 = path
    return v1 if v1 is not None else v2


def cmd_in_cgroup(snapshot, cgpath):
    n = 0
    procs = read_procs()
    with open(snapshot) as f:
        for line in f:
            pid, start, _ = line.split(" ", 2)
            p = procs.get(int(pid))
            if not p or p[1] != int(start) or p[2] != "sleep":
                continue
            try:
                path = memory_cgroup(int(pid))
            except OSError:
                continue
            n += path == cgpath or path.startswith(cgpath.rstrip("/") + "/")
    print(n)


def cmd_count_cmd(*argv):
    want = ("\0".join(argv) + "\0").encode()
    n = 0
    for pid in read_procs():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                n += f.read() == want
        except OSError:
            pass
    print(n)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:] or ["help"]
    {"launch": cmd_launch, "snapshot": cmd_snapshot, "alive": cmd_alive,
     "count-cmd": cmd_count_cmd, "in-cgroup": cmd_in_cgroup}.get(
        cmd, lambda *a: sys.exit(__doc__))(*args)
