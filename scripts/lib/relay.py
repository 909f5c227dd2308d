#!/usr/bin/env python3
"""Relays stdin/stdout to a TCP server: `relay.py HOST PORT`.

QEMU's `guestfwd=tcp:IP:PORT-cmd:relay.py 127.0.0.1 PORT` runs one relay per guest
connection, with the guest's stream on the relay's stdin and stdout. Bytes are copied
unchanged both ways; EOF on one side half-closes the other (stdin EOF -> shutdown(SHUT_WR)
to the server; server EOF -> close stdout), and the relay exits when both directions are done.
"""
import os
import select
import socket
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: relay.py HOST PORT", file=sys.stderr)
        return 2
    host, port = sys.argv[1], int(sys.argv[2])
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except OSError as e:
        print(f"relay: cannot connect to {host}:{port}: {e}", file=sys.stderr)
        return 1
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    up_open, down_open = True, True  # guest -> server, server -> guest
    try:
        while up_open or down_open:
            watch = ([fd_in] if up_open else []) + ([sock] if down_open else [])
            readable, _, _ = select.select(watch, [], [])
            if fd_in in readable:
                data = os.read(fd_in, 65536)
                if data:
                    sock.sendall(data)
                else:
                    up_open = False
                    try:
                        sock.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            if sock in readable:
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if data:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd_out, view):]
                else:
                    down_open = False
                    os.close(fd_out)
                    # The guest cannot send to a closed server: stop reading it.
                    up_open = False
    except (BrokenPipeError, ConnectionError) as e:
        print(f"relay: {e}", file=sys.stderr)
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
