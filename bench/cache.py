#!/usr/bin/env python3
"""Cache-hit benchmark (issue 4): resolverd (1 event loop) and Unbound (1 thread), each pinned to
CPU 0, answering 10,000 names already cached, with dnsperf on CPU 1. Per round and resolver:
QPS and lost queries under load (dnsperf -c 8 -q 500), CPU microseconds per answered query (the
server's utime+stime over the run / answers), and latency with one query outstanding. Rounds
alternate the resolvers; the table gives medians. With --memory N: RSS growth for N distinct
names cached, in bytes per entry. Loopback only; every process started is stopped.

Usage: bench/cache.py [--rounds 3] [--seconds 10] [--names 10000] [--resolvers resolverd,unbound]
       bench/cache.py --memory 1000000"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resolvers  # noqa: E402

FAKE = os.path.join(resolvers.ROOT, ".build/release/fake-dns")
SERVER_CPU, LOAD_CPU = 0, 1


def names_file(directory, count, prefix):
    path = os.path.join(directory, f"{prefix}-{count}.txt")
    with open(path, "w") as f:
        for index in range(count):
            f.write(f"h{index}.{prefix}.resolverd-bench. A\n")
    return path


def dnsperf(port, data, *args):
    """Runs dnsperf on the load CPU and returns its figures."""
    command = ["taskset", "-c", str(LOAD_CPU), "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", data] + list(args)
    output = subprocess.run(command, capture_output=True, text=True, timeout=600).stdout

    def number(pattern, default=0.0):
        match = re.search(pattern, output)
        return float(match.group(1)) if match else default

    return {
        "sent": number(r"Queries sent:\s+(\d+)"),
        "completed": number(r"Queries completed:\s+(\d+)"),
        "lost": number(r"Queries lost:\s+(\d+)"),
        "qps": number(r"Queries per second:\s+([\d.]+)"),
        "latency_us": number(r"Average Latency \(s\):\s+([\d.]+)") * 1e6,
        "noerror": number(r"NOERROR (\d+)"),
        "output": output,
    }


def start_fake():
    fake = subprocess.Popen(
        ["taskset", "-c", str(LOAD_CPU), FAKE, "--listen", "127.0.0.1:0", "--wildcard-a", "192.0.2.1"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    line = fake.stdout.readline()
    match = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not match:
        fake.kill()
        raise RuntimeError(f"fake-dns did not start: {line!r}")
    return fake, ("127.0.0.1", int(match.group(1)))


def warm(port, data, count):
    """Asks every name once (rate-limited so the upstream keeps up) and checks they were answered."""
    result = dnsperf(port, data, "-n", "1", "-c", "4", "-q", "200", "-Q", "20000", "-t", "5")
    if result["completed"] < count * 0.99:
        print(f"# warm-up answered {result['completed']:.0f} of {count}", file=sys.stderr)
    return result


def hits(name, port, upstream, data, count, seconds, rounds_out):
    server = resolvers.Resolver(name, port, [upstream], cpu=SERVER_CPU).start()
    try:
        warm(port, data, count)
        cpu_before = server.cpu_seconds()
        load = dnsperf(port, data, "-c", "8", "-q", "500", "-l", str(seconds))
        cpu = server.cpu_seconds() - cpu_before
        single = dnsperf(port, data, "-c", "1", "-q", "1", "-l", str(max(2, seconds // 2)))
        rounds_out.append({
            "qps": load["qps"], "lost": load["lost"], "sent": load["sent"],
            "cpu_us": cpu * 1e6 / max(1.0, load["completed"]),
            "latency_us": single["latency_us"], "rss_mb": server.rss_bytes() / 1e6,
        })
    finally:
        server.stop()


def memory(name, port, upstream, data, count):
    server = resolvers.Resolver(name, port, [upstream], cpu=SERVER_CPU, cache_bytes=2 << 30).start()
    try:
        time.sleep(0.5)  # let start-up allocations settle before the baseline
        before = server.rss_bytes()
        result = warm(port, data, count)
        after = server.rss_bytes()
        answered = result["completed"]
        return {"answered": answered, "rss_before_mb": before / 1e6, "rss_after_mb": after / 1e6,
                "bytes_per_entry": (after - before) / max(1.0, answered)}
    finally:
        server.stop()


def fill(name, port, upstream, data, count):
    """Misses: every one of `count` distinct names asked once, as fast as the resolver answers
    (8 clients, 90 queries outstanding in all — under resolverd's default cap of 100 pending
    queries per client address, past which it answers SERVFAIL at once; no rate limit): wall
    time, answers, NOERROR answers, and the resolver's CPU per miss (its query in, the upstream
    exchange, the answer stored and sent)."""
    server = resolvers.Resolver(name, port, [upstream], cpu=SERVER_CPU, cache_bytes=2 << 30).start()
    try:
        cpu_before = server.cpu_seconds()
        started = time.monotonic()
        result = dnsperf(port, data, "-n", "1", "-c", "8", "-q", "90", "-t", "5")
        wall = time.monotonic() - started
        cpu = server.cpu_seconds() - cpu_before
        return {"answered": result["completed"], "noerror": result["noerror"], "wall_s": wall,
                "cpu_us": cpu * 1e6 / max(1.0, result["completed"])}
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--memory", type=int, default=0, help="measure RSS per entry for this many names instead")
    parser.add_argument("--fill", type=int, default=0, help="measure filling the cache with this many distinct names instead")
    parser.add_argument("--resolvers", default="resolverd,unbound")
    args = parser.parse_args()
    names = [n for n in args.resolvers.split(",") if resolvers.Resolver(n, 0, []).installed()]
    for tool in ["dnsperf", "taskset"]:
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            sys.exit(f"bench/cache.py: {tool} is missing; run bench/install.sh")

    directory = tempfile.mkdtemp(prefix="bench-cache-")
    fake, upstream = start_fake()
    try:
        if args.fill:
            data = names_file(directory, args.fill, "fill")
            print("| resolver | round | names answered | NOERROR | wall s | CPU µs per miss |")
            print("|---|---|---|---|---|---|")
            cpu = {name: [] for name in names}
            for round_index in range(args.rounds):
                order = names if round_index % 2 == 0 else list(reversed(names))
                for offset, name in enumerate(order):
                    row = fill(name, 15400 + offset, upstream, data, args.fill)
                    cpu[name].append(row["cpu_us"])
                    print(f"| {name} | {round_index + 1} | {row['answered']:.0f} | {row['noerror']:.0f} | {row['wall_s']:.1f} "
                          f"| {row['cpu_us']:.1f} |", flush=True)
            if "resolverd" in cpu and "unbound" in cpu:
                ratio = statistics.median(cpu["resolverd"]) / statistics.median(cpu["unbound"])
                print(f"\nresolverd / unbound CPU per miss (medians) = {ratio:.2f}")
            return
        if args.memory:
            data = names_file(directory, args.memory, "mem")
            print(f"| resolver | names answered | RSS before MB | RSS after MB | bytes per entry |")
            print(f"|---|---|---|---|---|")
            rows = {}
            for offset, name in enumerate(names):
                row = memory(name, 15400 + offset, upstream, data, args.memory)
                rows[name] = row
                print(f"| {name} | {row['answered']:.0f} | {row['rss_before_mb']:.1f} | {row['rss_after_mb']:.1f} "
                      f"| {row['bytes_per_entry']:.0f} |", flush=True)
            if "resolverd" in rows and "unbound" in rows:
                print(f"\nresolverd / unbound bytes per entry = "
                      f"{rows['resolverd']['bytes_per_entry'] / rows['unbound']['bytes_per_entry']:.2f}")
            return

        data = names_file(directory, args.names, "hit")
        results = {name: [] for name in names}
        for round_index in range(args.rounds):
            for offset, name in enumerate(names if round_index % 2 == 0 else reversed(names)):
                hits(name, 15300 + offset, upstream, data, args.names, args.seconds, results[name])
                last = results[name][-1]
                print(f"# round {round_index + 1} {name}: {last['qps']:.0f} qps, lost {last['lost']:.0f}, "
                      f"{last['cpu_us']:.2f} us/query, {last['latency_us']:.0f} us latency", file=sys.stderr)

        print(f"{args.rounds} rounds of {args.seconds} s, {args.names} cached names; medians "
              f"(server on CPU {SERVER_CPU}, dnsperf on CPU {LOAD_CPU})\n")
        print("| resolver | QPS (-c 8 -q 500) | lost | CPU µs per answer | latency µs (1 outstanding) | RSS MB |")
        print("|---|---|---|---|---|---|")
        medians = {}
        for name in names:
            rows = results[name]
            medians[name] = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
            m = medians[name]
            lost = sum(row["lost"] for row in rows)
            print(f"| {name} | {m['qps']:.0f} | {lost:.0f} of {sum(r['sent'] for r in rows):.0f} | {m['cpu_us']:.2f} "
                  f"| {m['latency_us']:.0f} | {m['rss_mb']:.1f} |")
        if "resolverd" in medians and "unbound" in medians:
            r, u = medians["resolverd"], medians["unbound"]
            print(f"\nresolverd / unbound: CPU per answer {r['cpu_us'] / u['cpu_us']:.2f}, "
                  f"QPS {r['qps'] / u['qps']:.2f}, latency {r['latency_us'] / u['latency_us']:.2f}")
    finally:
        fake.kill()
        fake.wait()


if __name__ == "__main__":
    main()
