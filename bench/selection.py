#!/usr/bin/env python3
"""Server-selection benchmark (issues 3 and 20): resolverd and every other resolver installed here,
each forwarding to the same three fake upstream servers (5, 40 and 150 ms, ±10 % jitter), asked one
cache-missing question every 20 ms. Phases: cold start, steady state, the fastest becoming slow
(300 ms), the new fastest (40 ms) falling silent for 4 s (past a 3 s timeout), and its return.
"wait" is the failover wait: for a question first sent to the silent server, how long until a live
server received it (from the fakes' arrival logs). "back after" is how long from the returned
server's first answered arrival until every later question went to it first. Prints one table;
loopback only.

Usage: bench/selection.py [--resolvers resolverd,unbound,...] [--steady 250] [--rounds 1]"""

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resolvers  # noqa: E402

FAKE = os.path.join(resolvers.ROOT, ".build/release/fake-dns")
DELAYS = [5, 40, 150]


class Fake:
    """A fake-dns process with stdin control and arrival logging."""

    def __init__(self, ip, port, delay):
        self.delay = delay
        self.address = (ip, port)
        self.arrivals = {}
        self.lock = threading.Lock()
        self.process = subprocess.Popen(
            [FAKE, "--listen", f"{ip}:{port}", "--wildcard-a", "192.0.2.1", "--log-arrivals", "--control",
             "--delay-ms", str(int(delay * 0.95)), "--jitter-ms", str(max(1, int(delay * 0.1)))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        first = self.process.stdout.readline()
        if not first.startswith("listening"):
            raise RuntimeError(f"fake-dns: {first}")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "arrival":
                with self.lock:
                    self.arrivals.setdefault(parts[1].lower(), []).append(int(parts[2]))

    def command(self, text):
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    def set_delay(self, ms):
        self.command(f"delay {int(ms * 0.95)}")
        self.command(f"jitter {max(1, int(ms * 0.1))}")

    def total(self):
        with self.lock:
            return sum(len(v) for v in self.arrivals.values())

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=5)


def ask(sock, port, qid, name, timeout=6.0):
    """One query; returns (latency seconds or None, rcode or None)."""
    sock.settimeout(timeout)
    start = time.monotonic()
    sock.sendto(resolvers.build_query(qid, name), ("127.0.0.1", port))
    while True:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            return None, None
        if len(data) >= 4 and struct.unpack(">H", data[:2])[0] == qid:
            return time.monotonic() - start, data[3] & 0x0F


class Run:
    def __init__(self, resolver, fakes):
        self.resolver = resolver
        self.fakes = fakes
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.counter = 0

    def phase(self, count):
        """count queries, one every 20 ms; returns [(name, latency, rcode)]."""
        samples = []
        for _ in range(count):
            self.counter += 1
            name = f"q{self.counter}.{self.resolver.name}.resolverd-bench."
            start = time.monotonic()
            latency, rcode = ask(self.sock, self.resolver.port, self.counter & 0xFFFF, name)
            samples.append((name, latency, rcode))
            rest = 0.020 - (time.monotonic() - start)
            if rest > 0:
                time.sleep(rest)
        time.sleep(0.05)  # let the last arrivals be logged
        return samples

    def first_sends(self, samples):
        result = []
        for name, _, _ in samples:
            times = []
            for index, fake in enumerate(self.fakes):
                with fake.lock:
                    times += [(t, index) for t in fake.arrivals.get(name.lower(), [])]
            if not times:
                result.append(set())
                continue
            first = min(t for t, _ in times)
            result.append({i for t, i in times if t - first <= 1_000_000})
        return result

    def share(self, samples, server):
        firsts = self.first_sends(samples)
        return sum(1 for f in firsts if server in f) / max(1, len(firsts))

    def settled_after(self, samples, server):
        firsts = self.first_sends(samples)
        misses = [i for i, f in enumerate(firsts) if server not in f]
        return (misses[-1] + 1) if misses else 0


def latencies_ms(samples):
    return [s[1] * 1000 for s in samples if s[1] is not None]


def percentile(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def failover_waits(run, samples, silent):
    """Per question first sent to the silent server: how long after that send a live server got
    it (from the fakes' arrival logs, so it is measured the same way for every resolver)."""
    waits = []
    for name, _, _ in samples:
        key = name.lower()
        per_server = []
        for fake in run.fakes:
            with fake.lock:
                per_server.append(sorted(fake.arrivals.get(key, [])))
        if not per_server[silent]:
            continue
        first = min(t for times in per_server for t in times)
        if per_server[silent][0] - first > 1_000_000:
            continue  # asked somewhere else first
        live = [times[0] for i, times in enumerate(per_server) if i != silent and times]
        if live and min(live) - first > 1_000_000:
            waits.append((min(live) - first) / 1e6)  # else the silent server was a parallel probe
    return waits


def recovery_ms(run, samples, server, returned_ns):
    """Milliseconds from the recovered server's first answered arrival to the first question from
    which every later one went to it first (None if it never took over)."""
    with run.fakes[server].lock:
        answered = [t for times in run.fakes[server].arrivals.values() for t in times if t > returned_ns]
    if not answered:
        return None
    first_answer = min(answered)
    firsts = run.first_sends(samples)
    misses = [i for i, f in enumerate(firsts) if server not in f]
    if not misses:
        return 0.0
    if misses[-1] + 1 >= len(samples):
        return None
    name = samples[misses[-1] + 1][0].lower()
    with run.fakes[server].lock:
        took_over = min(run.fakes[server].arrivals.get(name, [first_answer]))
    return max(0.0, (took_over - first_answer) / 1e6)


def bench(name, steady_count, base_port):
    """Issue 20's phases: cold start, steady state, the 5 ms server turning slow (300 ms), the new
    fastest (40 ms) falling silent past the 3 s timeout, and its return."""
    fakes = [Fake(f"127.0.0.{11 + i}", base_port + 10 + i, d) for i, d in enumerate(DELAYS)]
    resolver = resolvers.Resolver(name, base_port, [f.address for f in fakes][::-1])
    try:
        resolver.start()
        run = Run(resolver, fakes)
        cold = run.phase(40)
        before = sum(f.total() for f in fakes)
        steady = run.phase(steady_count)
        upstream = sum(f.total() for f in fakes) - before
        lat = latencies_ms(steady)
        row = {
            "resolver": name,
            "cold settle": run.settled_after(cold, 0),
            "mean ms": statistics.mean(lat) if lat else float("nan"),
            "p99 ms": percentile(lat, 0.99),
            "to fastest": run.share(steady, 0),
            "upstream/query": upstream / max(1, len(steady)),
        }
        fakes[0].set_delay(300)
        shifted = run.phase(60)
        row["shift settle"] = run.settled_after(shifted, 1)
        fakes[1].command("silent on")
        dead = run.phase(200)  # ~4 s: past the 3 s timeout
        dead_lat = [s[1] for s in dead if s[1] is not None]
        row["dead worst ms"] = max(dead_lat) * 1000 if dead_lat else float("nan")
        row["dead >1s"] = sum(1 for s in dead if s[1] is None or s[1] > 1.0)
        row["dead fail"] = sum(1 for s in dead if s[1] is None or s[2] not in (0, 3))
        waits = failover_waits(run, dead, 1)
        row["wait median ms"] = statistics.median(waits) if waits else float("nan")
        row["wait max ms"] = max(waits) if waits else float("nan")
        returned = time.monotonic_ns()
        fakes[1].command("silent off")
        back = run.phase(250)
        recovered = recovery_ms(run, back, 1, returned)
        row["back after ms"] = recovered if recovered is not None else "never"
        row["back share (last 50)"] = run.share(back[-50:], 1)
        return row
    finally:
        resolver.stop()
        for fake in fakes:
            fake.stop()


WORST = {"dead worst ms", "dead >1s", "dead fail", "wait max ms", "back after ms"}


def combine(rows):
    """One row from several rounds of one resolver: the median of each figure, the worst round's
    for the failure figures (WORST)."""
    result = {"resolver": rows[0]["resolver"], "rounds": len(rows)}
    for column in rows[0]:
        if column == "resolver":
            continue
        values = [r[column] for r in rows]
        numbers = [v for v in values if isinstance(v, (int, float))]
        if len(numbers) < len(values):
            result[column] = "never"  # a round where it never happened
        elif column in WORST:
            result[column] = max(numbers)
        else:
            result[column] = statistics.median(numbers)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolvers", default=",".join(resolvers.ALL))
    parser.add_argument("--steady", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=1, help="rounds, the resolvers' order reversed every other one")
    args = parser.parse_args()
    names = []
    for name in args.resolvers.split(","):
        if resolvers.Resolver(name, 0, []).installed():
            names.append(name)
        else:
            print(f"# {name}: not installed, skipped", file=sys.stderr)
    results = {name: [] for name in names}
    for round_index in range(args.rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for index, name in enumerate(order):
            print(f"# round {round_index + 1}: {name} …", file=sys.stderr, flush=True)
            try:
                row = bench(name, args.steady, 15300 + index * 100)
                results[name].append(row)
                # Each round's figures as they come, so that an interrupted run still tells.
                print(f"#   {name}: mean {row['mean ms']:.2f} ms, dead worst {row['dead worst ms']:.0f} ms, "
                      f"wait max {row['wait max ms']} ms", file=sys.stderr, flush=True)
            except Exception as error:  # one resolver failing must not hide the others' figures
                print(f"# {name}: {error}", file=sys.stderr)
    rows = [combine(results[name]) for name in names if results[name]]
    columns = ["resolver", "rounds", "cold settle", "mean ms", "p99 ms", "to fastest", "upstream/query", "shift settle",
               "dead worst ms", "dead >1s", "dead fail", "wait median ms", "wait max ms", "back after ms",
               "back share (last 50)"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        cells = []
        for column in columns:
            value = row[column]
            cells.append(f"{value:.2f}" if isinstance(value, float) else str(value))
        print("| " + " | ".join(cells) + " |")
    fastest = DELAYS[0]
    print(f"\nfastest server's round trip: {fastest} ms; resolverd mean / fastest = "
          + next((f"{r['mean ms'] / fastest:.2f}" for r in rows if r["resolver"] == "resolverd"), "n/a"))
    others = [r["mean ms"] for r in rows if r["resolver"] != "resolverd"]
    ours = next((r["mean ms"] for r in rows if r["resolver"] == "resolverd"), None)
    if ours is not None and others:
        print(f"resolverd steady mean / best other's: {ours / min(others):.3f}")
    # The failover limit: 1.5 × (the silent 40 ms server's RTO + the best live server's
    # round trip, 150 ms). Its RTO in resolverd is SRTT + 4·RTTVAR of 38 ms ± 4 ms answers, under
    # the 50 ms hedge floor, so 50 ms.
    limit = 1.5 * (50 + DELAYS[2])
    for r in rows:
        wait = r["wait max ms"]
        wait_text = f"{wait:.0f} ms" if isinstance(wait, float) else str(wait)
        print(f"{r['resolver']}: worst failover wait {wait_text} (limit {limit:.0f}), "
              f"worst answer while silent {r['dead worst ms']:.0f} ms, {r['dead >1s']} over 1 s")


if __name__ == "__main__":
    main()
