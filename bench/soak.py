#!/usr/bin/env python3
"""Soak test (issue 8; not in CI): resolverd under an hour of mixed load — cache hits, misses over
a name set larger than the cache (so entries are evicted and fetched again all the time), service
group answers, and registrations changing every few seconds — sampling the resident memory of
every resolverd process (the supervisor and its workers with --workers N). Passes when, after the
warm-up (the first 20 %), total RSS stays within 10 % of its value at the end of the warm-up.
Loopback only; every process started is stopped.

Usage: bench/soak.py [--minutes 60] [--rate 5000] [--workers 0] [--cache-mb 32]"""

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cache import start_fake  # noqa: E402
from crash import Daemon  # noqa: E402


def rss_of_tree(pid):
    """Resident bytes of `pid` and its children (the workers)."""
    total = 0
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):  # workers are children of the supervisor's threads
            with open(f"/proc/{pid}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    for each in pids:
        try:
            with open(f"/proc/{each}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--cache-mb", type=int, default=32)
    parser.add_argument("--sample-s", type=float, default=10)
    args = parser.parse_args()
    seconds = int(args.minutes * 60)

    # SIGTERM ends the run through the cleanup below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    load = None
    fake, upstream = start_fake()
    daemon = Daemon(args.workers, upstream, extra=f"[cache]\nmax_bytes = {args.cache_mb << 20}\n")
    scratch = tempfile.mkdtemp(prefix="bench-soak-")
    try:
        data = os.path.join(scratch, "queries.txt")
        with open(data, "w") as f:
            for index in range(600_000):
                f.write(f"h{index % 2000}.hits.resolverd-bench. A\n")
                f.write(f"m{index}.misses.resolverd-bench. A\n")
                if index % 10 == 0:
                    f.write("soak.cluster.internal. A\n")
        load = subprocess.Popen(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(daemon.port), "-d", data, "-l", str(seconds),
             "-Q", str(args.rate), "-c", "8", "-t", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.monotonic()
        samples = []
        next_sample = started
        generator = random.Random(1)
        while load.poll() is None and time.monotonic() - started < seconds + 30:
            # Registrations come and go.
            member = generator.randrange(50)
            if generator.random() < 0.6:
                daemon.call("PUT", f"/v1/groups/soak/members/m{member}",
                            {"address": f"10.7.0.{member + 1}", "ttl_s": 30})
            else:
                try:
                    daemon.call("DELETE", f"/v1/groups/soak/members/m{member}")
                except Exception:
                    pass  # 404: not registered at the moment
            if time.monotonic() >= next_sample:
                samples.append((time.monotonic() - started, rss_of_tree(daemon.process.pid)))
                print(f"{samples[-1][0]:7.0f} s  RSS {samples[-1][1] / 2**20:8.1f} MiB", flush=True)
                next_sample += args.sample_s
            time.sleep(0.5)
        output, _ = load.communicate(timeout=120)
        sent = next((l for l in output.splitlines() if "Queries sent" in l), "").split()
        completed = next((l for l in output.splitlines() if "Queries completed" in l), "").split()
        warm = [rss for at, rss in samples if at >= seconds * 0.2]
        if not warm:
            print("too short to judge")
            return
        reference, peak, low = warm[0], max(warm), min(warm)
        drift = (peak - reference) / reference * 100
        print(f"queries: sent {sent[2] if len(sent) > 2 else '?'}, completed {completed[2] if len(completed) > 2 else '?'}")
        print(f"RSS after warm-up {reference / 2**20:.1f} MiB; then min {low / 2**20:.1f}, max {peak / 2**20:.1f}, "
              f"end {warm[-1] / 2**20:.1f} MiB; max drift {drift:+.1f} % → {'FLAT' if abs(drift) <= 10 else 'GREW'}")
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        daemon.stop()
        fake.kill()
        fake.wait()


if __name__ == "__main__":
    main()
