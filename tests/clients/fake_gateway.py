"""A stand-in for ward's gateway on a Unix socket, for the CLI's side of a download: every
request gets one canned answer, what a compromised sandbox could make the real gateway send.

    fake_gateway.py SOCKET tar   a tar archive with a device node, a .envrc and an ordinary file
    fake_gateway.py SOCKET cut   a file whose body breaks off after 7 of its 1000 bytes
    fake_gateway.py SOCKET escape VICTIM
                                 a tar archive whose symlinks lead to VICTIM (absolute, and by
                                 climbing out) with members beneath them, and one that stays inside

Prints "ready" once it listens; runs until killed.
"""
import io
import os
import socket
import sys
import tarfile


def add_member(tar, name, data=b"", **fields):
    info = tarfile.TarInfo(name)
    for key, value in fields.items():
        setattr(info, key, value)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def archive():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name, data=b"", **fields):
            add_member(tar, name, data, **fields)

        add("./ok.txt", b"ok\n", mode=0o644)
        add("./.envrc", b"echo planted\n", mode=0o644)
        # /dev/null's numbers, so that a unpacking that makes it does no harm here.
        add("./disk", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    return buf.getvalue()


def escaping_archive(victim):
    """Symlinks out of the tree, each followed by a member beneath it: unpacked in order, the
    member would be written through the link, into VICTIM."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name, data=b"", **fields):
            add_member(tar, name, data, **fields)

        add("./sub", type=tarfile.DIRTYPE, mode=0o755)
        add("./sub/ok.txt", b"ok\n", mode=0o644)
        add("./inside", type=tarfile.SYMTYPE, linkname="sub/ok.txt")
        add("./abs", type=tarfile.SYMTYPE, linkname=victim)
        add("./abs/.bash_login", b"echo PWNED\n", mode=0o644)
        depth = victim.count("/") + 4  # enough ../ to reach / from wherever this unpacks
        add("./sub/up", type=tarfile.SYMTYPE, linkname="../" * depth + victim.lstrip("/"))
        add("./sub/up/climbed.txt", b"echo PWNED\n", mode=0o644)
        add("./dots", type=tarfile.SYMTYPE, linkname="sub/../..")
        add("./hard", type=tarfile.LNKTYPE, linkname="abs/.bash_login")
    return buf.getvalue()


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if mode in ("tar", "escape"):
        body = archive() if mode == "tar" else escaping_archive(sys.argv[3])
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nContent-Length: %d\r\n" % len(body)
    else:
        body = b"partial"
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n"
    answer = (head + "Connection: close\r\n\r\n").encode() + body
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    os.write(1, b"ready\n")  # one write: the test reads it whole, then closes its end
    while True:
        conn, _ = server.accept()
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        conn.sendall(answer)
        conn.close()


if __name__ == "__main__":
    main()
