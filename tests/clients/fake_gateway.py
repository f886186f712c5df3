"""A stand-in for ward's gateway on a Unix socket, for the CLI's side of a download: every
request gets one canned answer, what a compromised sandbox could make the real gateway send.

    fake_gateway.py SOCKET tar   a tar archive with a device node, a .envrc and an ordinary file
    fake_gateway.py SOCKET cut   a file whose body breaks off after 7 of its 1000 bytes

Prints "ready" once it listens; runs until killed.
"""
import io
import os
import socket
import sys
import tarfile


def archive():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:

        def add(name, data=b"", **fields):
            info = tarfile.TarInfo(name)
            for key, value in fields.items():
                setattr(info, key, value)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("./ok.txt", b"ok\n", mode=0o644)
        add("./.envrc", b"echo planted\n", mode=0o644)
        # /dev/null's numbers, so that a unpacking that makes it does no harm here.
        add("./disk", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    return buf.getvalue()


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "tar":
        body = archive()
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
