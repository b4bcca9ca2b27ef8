#!/usr/bin/env python3
"""Cold-cache recursive resolution: resolverd and Unbound as recursive resolvers, QNAME
minimisation on and off, resolving 1,000 names of a fake hierarchy served by NSD on loopback
(bench/hierarchy.py: a root, two TLDs and 20 second-level zones on seven servers, 6 of the 20
zones delegated to out-of-bailiwick names that must be looked up first). With --depth N each
name sits N labels below its zone cut (depth 3: h00.b.a.z00.test.), so the zones have empty
non-terminals and a minimising resolver walks them label by label (RFC 9156); depth 1, the
default, puts every name right below its cut, where a minimised query is already the full one.

Each run starts a fresh resolver (empty cache; `threads = 1` / `num-threads: 1`, pinned to CPU
0; NSD and this client on CPU 1) whose only root hint is the fake root, asks A for all 1,000 names
once (the same shuffled order every run) with 20 queries outstanding over UDP, no retries, and
records: wall time for the 1,000; median, p90 and p99 client latency; answers that are NOERROR
with exactly the right address, SERVFAIL, timeouts, anything else; the queries the seven
authoritative servers received from the resolver, in total and at the root, TLD and leaf
levels (nsd-control stats_noreset before its start and after its stop); the resolver's time on
CPU over the 1,000 (schedstat of its threads), and this client's (near 100 % would mean the
client is the limit). Every (resolver, QNAME minimisation) pair runs once per round, the order
alternating between rounds; the tables give medians over rounds, then resolverd / Unbound ratios
and what QNAME minimisation costs each resolver. The load average before the run is printed:
other work on a two-CPU machine shows in every figure. Loopback only (127.0.0.1 and
127.53.0.1-7); every process started is stopped, also on Ctrl-C.

Usage: bench/recursion.py [--rounds 3] [--resolvers resolverd,unbound] [--qmin on,off]
                          [--depth 1] [--concurrency 20] [--timeout 5]
       bench/recursion.py --serve 600 [--depth 3]   # only the fake hierarchy, for dig, up to 600 s"""

import argparse
import math
import os
import random
import resource
import select
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hierarchy  # noqa: E402
import resolvers  # noqa: E402

SERVER_CPU, LOAD_CPU = 0, 1
BASE_PORT = 15500
RUN_DEADLINE_S = 600  # for one resolver's 1,000 names
ORDER_SEED = 53
MAX_READS_PER_WAKE = 256


class Recursive(resolvers.Resolver):
    """resolverd or Unbound as a recursive resolver whose only root hint is the fake root; started,
    measured and stopped as bench/resolvers.py's forwarders are."""

    def __init__(self, name, port, qmin, cpu=SERVER_CPU):
        super().__init__(name, port, [], cpu=cpu)
        self.qmin = qmin

    def command(self):
        if self.name == "resolverd":
            config = os.path.join(self.dir, "resolverd.toml")
            with open(config, "w") as f:
                f.write(f'[server]\nlisten = ["127.0.0.1:{self.port}"]\nthreads = 1\n'
                        f'[api]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warning"\n'
                        f'[registry]\npath = "{self.dir}/registry.sqlite"\n'
                        f'[resolver]\nmode = "recursive"\nroot_hints = ["{hierarchy.ROOT_ADDRESS}"]\n'
                        f'qname_minimisation = {"true" if self.qmin else "false"}\nquery_loopback = true\n')
            return [os.path.join(resolvers.ROOT, ".build/release/resolverd"), "--config", config]
        if self.name == "unbound":
            hints = os.path.join(self.dir, "root.hints")
            with open(hints, "w") as f:
                f.write(hierarchy.root_hints())
            config = os.path.join(self.dir, "unbound.conf")
            with open(config, "w") as f:
                f.write(resolvers.unbound_server(self.port, self.dir) +
                        # do-ip6: no, as the hierarchy has no IPv6: no AAAA look-ups of NS names.
                        f"  root-hints: \"{hints}\"\n  do-not-query-localhost: no\n  do-ip6: no\n"
                        "  module-config: \"iterator\"\n  prefetch: no\n"
                        f"  qname-minimisation: {'yes' if self.qmin else 'no'}\n"
                        "  qname-minimisation-strict: no\n"
                        # Unbound answers test. itself (RFC 6761 default local zone) unless told not to.
                        "  local-zone: \"test.\" nodefault\n")
            return ["unbound", "-d", "-c", config]
        raise ValueError(f"{self.name}: only resolverd and unbound run as recursive resolvers here")

    def cpu_seconds(self):
        """Time on CPU so far, summed over the process's threads from /proc/<pid>/task/*/schedstat
        (nanoseconds; utime+stime in /proc/<pid>/stat counts 10 ms ticks, too coarse for a run of
        well under a second). Threads that exit during the run would be missed: Unbound has one,
        and a resolverd that starts and ends threads while resolving would read low."""
        total_ns = 0
        task_dir = f"/proc/{self.process.pid}/task"
        for task in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{task}/schedstat") as f:
                    total_ns += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass  # the thread ended meanwhile
        return total_ns / 1e9

    def stop(self):
        if getattr(self, "log", None):
            self.log.close()
        super().stop()


# MARK: client


def resolve_all(port, names, concurrency, timeout_s):
    """Asks A for every name once with `concurrency` queries outstanding on one UDP socket (one
    thread: sends while fewer are outstanding, reads what arrived, drops what timed out; no
    retries). Returns (wall seconds, [(latency s or None, rcode, [A addresses of the name])])."""
    results = [(None, None, [])] * len(names)
    outstanding = {}  # query ID -> (index, sent at)
    next_index = 0
    id_base = random.randrange(65536)  # query i gets ID id_base + i: distinct for up to 65,536 names
    deadline = time.monotonic() + RUN_DEADLINE_S
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        began = time.perf_counter()
        while (next_index < len(names) or outstanding) and time.monotonic() < deadline:
            while len(outstanding) < concurrency and next_index < len(names):
                qid = (id_base + next_index) & 0xFFFF
                try:
                    sock.send(resolvers.build_query(qid, names[next_index]))
                except BlockingIOError:
                    break  # the send buffer is full: read first
                except ConnectionRefusedError:  # the resolver's port is closed: counts as a timeout
                    next_index += 1
                    continue
                outstanding[qid] = (next_index, time.perf_counter())
                next_index += 1
            oldest = min(sent for _, sent in outstanding.values()) if outstanding else time.perf_counter()
            readable, _, _ = select.select([sock], [], [], max(0.0, oldest + timeout_s - time.perf_counter()))
            for _ in range(MAX_READS_PER_WAKE if readable else 0):
                try:
                    data = sock.recv(4096)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                arrived = time.perf_counter()
                try:
                    reply = hierarchy.parse_message(data)
                except ValueError:
                    continue
                index, sent = outstanding.get(reply["id"], (None, None))
                if index is None or reply["question"] != (names[index], hierarchy.TYPE_A):
                    continue
                del outstanding[reply["id"]]
                addresses = [rdata for owner, rtype, rdata in reply["answers"]
                             if owner == names[index] and rtype == hierarchy.TYPE_A]
                results[index] = (arrived - sent, reply["rcode"], addresses)
            now = time.perf_counter()
            for qid in [q for q, (_, sent) in outstanding.items() if now - sent >= timeout_s]:
                del outstanding[qid]  # stays (None, None, []): a timeout
        return time.perf_counter() - began, results


# MARK: one run


def client_cpu_seconds():
    """This process's utime+stime (all its threads): the client's cost, to tell when it is the limit."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(1, math.ceil(len(sorted_values) * fraction)) - 1]


def level_of(address):
    if address == hierarchy.ROOT_ADDRESS:
        return "root"
    return "tld" if address in hierarchy.TLDS.values() else "leaf"


def one_run(name, qmin, port, hier, names, args):
    """A fresh resolver resolves every name once; its figures as a dict."""
    before = hier.queries()
    resolver = Recursive(name, port, qmin)
    try:
        resolver.start()
        cpu_before, client_before = resolver.cpu_seconds(), client_cpu_seconds()
        wall, results = resolve_all(port, [n for n, _ in names], args.concurrency, args.timeout)
        cpu, client = resolver.cpu_seconds() - cpu_before, client_cpu_seconds() - client_before
    finally:
        resolver.stop()
    after = hier.queries()  # after the stop: whatever the resolver sent, late target fetches too

    row = {"wall_s": wall, "cpu_ms": cpu * 1000, "client_cpu": client / wall,
           "ok": 0, "servfail": 0, "timeout": 0, "other": 0, "root": 0, "tld": 0, "leaf": 0}
    latencies, failed = [], []
    for (qname, expected), (latency, rcode, addresses) in zip(names, results):
        if latency is None:
            row["timeout"] += 1
            failed.append(f"{qname} timed out")
            continue
        latencies.append(latency * 1000)
        if rcode == 0 and addresses == [expected]:
            row["ok"] += 1
        elif rcode == 2:
            row["servfail"] += 1
            failed.append(f"{qname} SERVFAIL")
        else:
            row["other"] += 1
            failed.append(f"{qname} rcode {rcode} {addresses}, want {expected}")
    latencies.sort()
    row.update(median_ms=percentile(latencies, 0.5), p90_ms=percentile(latencies, 0.9),
               p99_ms=percentile(latencies, 0.99))
    for address, count in after.items():
        row[level_of(address)] += count - before[address]
    row["upstream"] = row["root"] + row["tld"] + row["leaf"]
    if failed:
        print(f"#   {len(failed)} not answered right, e.g. " + "; ".join(failed[:5]), file=sys.stderr)
    return row


# MARK: report


def qmin_label(qmin):
    return "on" if qmin else "off"


def report(args, results, names_count):
    """results: {(resolver, qmin): [row per round]}."""
    print(f"\n{args.rounds} rounds, {names_count} names each from a cold cache, {args.depth} label(s) below "
          f"their zone cut, {args.concurrency} outstanding, "
          f"{args.timeout:g} s timeout; medians (resolver on CPU {SERVER_CPU}, NSD and client on CPU {LOAD_CPU}; "
          f"load average {args.load_before} before the run)\n")
    print("| resolver | qmin | wall s | median ms | p90 ms | p99 ms | right answers | SERVFAIL | timeouts | other "
          "| upstream queries | root / TLD / leaf | upstream per name | CPU ms | CPU µs per name | client CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    medians = {}
    for (name, qmin), rows in results.items():
        if not rows:
            continue
        m = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        medians[(name, qmin)] = m
        total = names_count * len(rows)
        counts = {key: sum(row[key] for row in rows) for key in ("ok", "servfail", "timeout", "other")}
        print(f"| {name} | {qmin_label(qmin)} | {m['wall_s']:.3f} | {m['median_ms']:.2f} | {m['p90_ms']:.2f} "
              f"| {m['p99_ms']:.2f} | {counts['ok']} of {total} | {counts['servfail']} | {counts['timeout']} "
              f"| {counts['other']} | {m['upstream']:.0f} | {m['root']:.0f} / {m['tld']:.0f} / {m['leaf']:.0f} "
              f"| {m['upstream'] / names_count:.3f} | {m['cpu_ms']:.1f} | {m['cpu_ms'] * 1000 / names_count:.1f} "
              f"| {m['client_cpu'] * 100:.0f} % |")

    print("\nPer round, wall s: " + "; ".join(
        f"{name} qmin {qmin_label(qmin)} " + ", ".join(f"{row['wall_s']:.3f}" for row in rows)
        for (name, qmin), rows in results.items() if rows))

    keys = [("wall_s", "wall"), ("median_ms", "median"), ("p90_ms", "p90"), ("p99_ms", "p99"),
            ("cpu_ms", "CPU"), ("upstream", "upstream queries")]
    print()
    for qmin in args.qmin_settings:
        r, u = medians.get(("resolverd", qmin)), medians.get(("unbound", qmin))
        if r and u:
            print(f"resolverd / unbound, qmin {qmin_label(qmin)}: " + ", ".join(
                f"{label} {r[key] / u[key]:.2f}" if u[key] else f"{label} n/a" for key, label in keys))
    for name in args.names:
        on, off = medians.get((name, True)), medians.get((name, False))
        if on and off:
            print(f"{name} qmin on vs off: " + ", ".join(
                f"{label} {(on[key] / off[key] - 1) * 100:+.1f} %" if off[key] else f"{label} n/a"
                for key, label in keys))
    print(f"\ncommand: {shlex.join([os.path.relpath(sys.argv[0], resolvers.ROOT)] + sys.argv[1:])}")


# MARK: main


def serve(directory, seconds, depth):
    """Only the hierarchy, for trying a resolver by hand; ends after `seconds` or Ctrl-C."""
    hier = hierarchy.Hierarchy(directory, cpu=LOAD_CPU, depth=depth).start()
    try:
        empty = hierarchy.between("z00.test.", depth)
        print(f"fake hierarchy up for {seconds} s (Ctrl-C ends it); root {hierarchy.ROOT_ADDRESS}, e.g.\n"
              f"  dig @{hierarchy.ROOT_ADDRESS} test. NS +norec\n"
              f"  dig @{hierarchy.TLDS['test.']} z02.test. NS +norec   (out-of-bailiwick NS)\n"
              f"  dig @{hierarchy.LEAF_SERVERS[0]} {hierarchy.host_name('z00.test.', 0, depth)} A +norec\n"
              + (f"  dig @{hierarchy.LEAF_SERVERS[0]} {empty[0]} A +norec   (empty non-terminal: NODATA)\n"
                 if empty else "")
              + f"root hints:\n{hierarchy.root_hints()}", flush=True)
        time.sleep(seconds)
    except KeyboardInterrupt:
        pass
    finally:
        hier.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--resolvers", default="resolverd,unbound")
    parser.add_argument("--qmin", default="on,off", help="QNAME minimisation settings to run: on, off or on,off")
    parser.add_argument("--depth", type=int, default=1,
                        help=f"labels between each name and its zone cut, 1 to {hierarchy.MAX_DEPTH} "
                             "(3: h00.b.a.z00.test.)")
    parser.add_argument("--concurrency", type=int, default=20, help="queries outstanding")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a query counts as timed out")
    parser.add_argument("--serve", type=int, default=0, metavar="SECONDS",
                        help="only start the fake hierarchy, for this long, and print how to query it")
    args = parser.parse_args()
    settings = {"on": True, "off": False}
    if not set(args.qmin.split(",")) <= set(settings):
        parser.error(f"--qmin takes on, off or on,off, not {args.qmin}")
    args.qmin_settings = [settings[s] for s in args.qmin.split(",")]
    if not 1 <= args.depth <= hierarchy.MAX_DEPTH:
        parser.error(f"--depth takes 1 to {hierarchy.MAX_DEPTH}, not {args.depth}")
    for tool in ["nsd", "nsd-control", "nsd-checkconf", "taskset"]:
        if shutil.which(tool) is None:
            sys.exit(f"bench/recursion.py: {tool} is missing; run bench/install.sh")

    with open("/proc/loadavg") as f:
        args.load_before = f.read().split()[0]
    if float(args.load_before) > 0.5:
        print(f"# load average {args.load_before}: something else is running; figures will be noisy", file=sys.stderr)

    directory = tempfile.mkdtemp(prefix="bench-recursion-")
    try:
        if args.serve:
            serve(directory, args.serve, args.depth)
            return
        args.names = []
        for name in args.resolvers.split(","):
            probe = Recursive(name, 0, True)
            probe.stop()  # removes the directory it made
            if probe.installed():
                args.names.append(name)
            else:
                print(f"# {name}: not installed, skipped", file=sys.stderr)
        hier = hierarchy.Hierarchy(directory, cpu=LOAD_CPU, depth=args.depth).start()
        try:
            os.sched_setaffinity(0, {LOAD_CPU})  # the client (this process); the resolvers get SERVER_CPU
            names = list(hier.names)
            random.Random(ORDER_SEED).shuffle(names)
            results = {(name, qmin): [] for qmin in args.qmin_settings for name in args.names}
            failed = set()  # resolvers that did not start: a config or binary problem, not worth retrying
            for round_index in range(args.rounds):
                order = list(results)
                if round_index % 2:
                    order.reverse()
                for name, qmin in order:
                    if name in failed:
                        continue
                    port = BASE_PORT + args.names.index(name)
                    try:
                        row = one_run(name, qmin, port, hier, names, args)
                    except RuntimeError as error:  # one resolver failing must not hide the other's figures
                        print(f"# round {round_index + 1} {name} qmin {qmin_label(qmin)}: {error}", file=sys.stderr)
                        if "did not start" in str(error):
                            failed.add(name)
                            print(f"# {name}: skipped from now on", file=sys.stderr)
                        continue
                    results[(name, qmin)].append(row)
                    print(f"# round {round_index + 1} {name} qmin {qmin_label(qmin)}: {row['ok']}/{len(names)} right, "
                          f"wall {row['wall_s']:.3f} s, median {row['median_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
                          f"upstream {row['upstream']}, CPU {row['cpu_ms']:.1f} ms, client CPU {row['client_cpu'] * 100:.0f} %",
                          file=sys.stderr, flush=True)
        finally:
            hier.stop()
        report(args, results, len(names))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as error:  # the hierarchy did not come up; everything started is stopped by now
        sys.exit(f"bench/recursion.py: {error}")
