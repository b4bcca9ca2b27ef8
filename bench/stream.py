#!/usr/bin/env python3
"""Stream back-pressure (issue 16): one TCP client pipelines N queries for a cached 2.4 KB answer
(30 TXT records) and reads nothing for a while; then it reads. Per resolver: the server's
resident memory growth while the answers wait unread, how much of the burst the server took,
whether it closed the connection, and how many answers the client got once it read. The same
fake upstream (fake-dns, loopback) serves every resolver. Loopback only; every process started
is stopped.

Usage: bench/stream.py [--count 40000] [--stall 8] [--resolvers resolverd,unbound,pdns-recursor]
       RESOLVERD_BUILD=debug bench/stream.py   (the debug build)"""

import argparse
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resolvers  # noqa: E402

FAKE = os.path.join(resolvers.ROOT, f".build/{resolvers.BUILD}/fake-dns")


def framed_query(qid, name, qtype):
    query = resolvers.build_query(qid & 0xFFFF, name, qtype)
    query = query[:11] + b"\x01" + query[12:]  # ARCOUNT 1: an OPT with a 1232-byte UDP size
    query += b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
    return struct.pack(">H", len(query)) + query


def start_fake(directory):
    zone = os.path.join(directory, "zone.txt")
    with open(zone, "w") as f:
        f.write("big.stream.test. 300 IN SOA ns.stream.test. admin.stream.test. 1 3600 600 86400 60\n")
        for index in range(1, 31):
            f.write(f'big.stream.test. 300 IN TXT "record {index} {"x" * 60}"\n')
    fake = subprocess.Popen([FAKE, "--listen", "127.0.0.1:0", "--zone-file", zone],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    line = fake.stdout.readline().split()
    address = next((word for word in line if word.count(".") == 3 and ":" in word), line[-1])
    host, port = address.rsplit(":", 1)
    return fake, (host, int(port))


def ask_tcp(port, payload, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        length = struct.unpack(">H", s.recv(2, socket.MSG_WAITALL))[0]
        return s.recv(length, socket.MSG_WAITALL)


def run(resolver, count, stall):
    ask_tcp(resolver.port, framed_query(1, "big.stream.test", 16))  # cached from now on
    before = resolver.rss_bytes()
    burst = b"".join(framed_query(i, "big.stream.test", 16) for i in range(count))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the client's window stays small
    s.connect(("127.0.0.1", resolver.port))
    s.setblocking(False)
    sent, peak, closed = 0, before, False
    end = time.monotonic() + stall
    while time.monotonic() < end:
        try:
            if sent < len(burst):
                sent += s.send(burst[sent:sent + 65536])
        except BlockingIOError:
            pass
        except OSError:
            closed = True
            break
        peak = max(peak, resolver.rss_bytes())
        time.sleep(0.01)
    # Now the client reads, until the server has nothing more for 3 s.
    received, pending, length_bytes = 0, 0, b""
    s.setblocking(True)
    s.settimeout(3.0)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                closed = True
                break
            view = memoryview(chunk)
            while view:
                if pending:
                    take = min(pending, len(view))
                    view, pending = view[take:], pending - take
                    received += pending == 0
                else:
                    need = 2 - len(length_bytes)
                    length_bytes += bytes(view[:need])
                    view = view[need:]
                    if len(length_bytes) == 2:
                        pending, length_bytes = struct.unpack(">H", length_bytes)[0], b""
    except (socket.timeout, OSError):
        pass
    s.close()
    return {"growth": peak - before, "sent": sent, "total": len(burst), "closed": closed, "answers": received}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=40_000)
    parser.add_argument("--stall", type=float, default=8.0)
    parser.add_argument("--resolvers", default="resolverd,unbound,pdns-recursor")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="bench-stream-")
    fake, upstream = start_fake(directory)
    rows = []
    try:
        for offset, name in enumerate(args.resolvers.split(",")):
            resolver = resolvers.Resolver(name, 25400 + offset, [upstream])
            if not resolver.installed():
                print(f"{name}: not installed, skipped")
                continue
            resolver.start()
            try:
                rows.append((name, run(resolver, args.count, args.stall)))
            finally:
                resolver.stop()
    finally:
        fake.terminate()
        fake.wait()
    print(f"{args.count:,} pipelined queries for a 2.4 KB cached answer, unread for {args.stall:g} s, then read")
    print(f"{'resolver':<15} {'RSS growth':>12} {'burst sent':>14} {'answers read':>13}  closed")
    for name, row in rows:
        print(f"{name:<15} {row['growth'] / 1048576:>9.1f} MiB {row['sent'] / 1024:>10.0f} KiB {row['answers']:>13,}  {row['closed']}")


if __name__ == "__main__":
    main()
