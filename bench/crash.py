#!/usr/bin/env python3
"""Fault-isolation benchmark (issue 8): resolverd with server.workers = 2 under a dnsperf load of
mixed cache hits and misses at about half its measured capacity, one worker killed with SIGKILL
every 10 s. Reports the share of queries answered (with and without kills, same rate), how long
each worker took to answer again (the supervisor's figure: from noticing the death to the new
worker's "ready"), and whether every registration survived. Loopback only; every process started
is stopped.

Usage: bench/crash.py [--seconds 60] [--interval 10] [--workers 2] [--members 100]"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resolvers  # noqa: E402
from cache import dnsperf, start_fake  # noqa: E402

RESOLVERD = os.path.join(resolvers.ROOT, ".build/release/resolverd")


def free_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, workers, upstream, extra=""):
        self.dir = tempfile.mkdtemp(prefix="bench-crash-")
        self.port = free_port()
        config = os.path.join(self.dir, "resolverd.toml")
        with open(config, "w") as f:
            f.write(f'[server]\nlisten = ["127.0.0.1:{self.port}"]\nthreads = 1\nworkers = {workers}\n'
                    f'[api]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "notice"\n'
                    f'[registry]\npath = "{self.dir}/registry.sqlite"\n'
                    f'[[forward]]\nzone = "."\nservers = ["{upstream[0]}:{upstream[1]}"]\n' + extra)
        self.log_path = os.path.join(self.dir, "log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([RESOLVERD, "--config", config, "--log-level", "info"],
                                        stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        self.api = None
        while time.monotonic() < deadline and self.api is None:
            with open(self.log_path) as f:
                match = re.search(r"msg=listening api=(\S+)", f.read())
            if match:
                self.api = "http://" + match.group(1)
            elif self.process.poll() is not None:
                raise RuntimeError("resolverd exited:\n" + open(self.log_path).read())
            else:
                time.sleep(0.05)
        if self.api is None:
            raise RuntimeError("resolverd did not become ready")

    def call(self, method, path, body=None):
        request = urllib.request.Request(self.api + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def workers(self):
        return self.call("GET", "/v1/workers")["workers"]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def data_file(directory, name, count, prefix):
    """Half hits (1,000 names, asked again and again), half misses (new names)."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        for index in range(count):
            f.write(f"h{index % 1000}.hits.resolverd-bench. A\n{prefix}{index}.misses.resolverd-bench. A\n")
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--members", type=int, default=100)
    args = parser.parse_args()

    fake, upstream = start_fake()
    daemon = Daemon(args.workers, upstream)
    scratch = tempfile.mkdtemp(prefix="bench-crash-data-")
    try:
        for index in range(args.members):
            daemon.call("PUT", f"/v1/groups/bench/members/m{index}",
                        {"address": f"10.9.{index // 250}.{index % 250 + 1}", "ttl_s": 3600})
        warm = dnsperf(daemon.port, data_file(scratch, "warm.txt", 1000, "w"), "-n", "1", "-c", "4", "-Q", "20000")
        capacity = dnsperf(daemon.port, data_file(scratch, "capacity.txt", 400_000, "c"), "-l", "10", "-c", "8", "-q", "500")
        rate = int(capacity["qps"] / 2)
        print(f"# warm-up answered {warm['completed']:.0f}; capacity {capacity['qps']:.0f} qps (mixed); load at {rate} qps")
        count = rate * args.seconds
        baseline = dnsperf(daemon.port, data_file(scratch, "base.txt", count // 2 + 1000, "b"),
                           "-l", str(args.seconds // 2), "-Q", str(rate), "-c", "8", "-t", "2")

        load = subprocess.Popen(
            ["dnsperf", "-s", "127.0.0.1", "-p", str(daemon.port), "-d", data_file(scratch, "load.txt", count + 1000, "k"),
             "-l", str(args.seconds), "-Q", str(rate), "-c", "8", "-t", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started = time.monotonic()
        kills = []
        victim = 0
        while time.monotonic() - started < args.seconds - args.interval / 2:
            time.sleep(max(0.0, started + (len(kills) + 1) * args.interval - time.monotonic()))
            if time.monotonic() - started >= args.seconds - 1:
                break
            target = daemon.workers()[victim % args.workers]
            victim += 1
            before = target["restarts"]
            killed_at = time.monotonic()
            os.kill(target["pid"], signal.SIGKILL)
            back = None
            while time.monotonic() - killed_at < 10:
                now = next(w for w in daemon.workers() if w["index"] == target["index"])
                if now["restarts"] > before and now["state"] == "running":
                    back = (now["last_restart_ms"], (time.monotonic() - killed_at) * 1000)
                    break
                time.sleep(0.005)
            kills.append((target["index"], back))
        output, _ = load.communicate(timeout=args.seconds + 60)

        def number(pattern):
            match = re.search(pattern, output)
            return float(match.group(1)) if match else 0.0

        sent, completed = number(r"Queries sent:\s+(\d+)"), number(r"Queries completed:\s+(\d+)")
        members = daemon.call("GET", "/v1/groups/bench")["members"]
        answer = subprocess.run(["dig", "@127.0.0.1", "-p", str(daemon.port), "bench.cluster.internal", "+short",
                                 "+tries=3", "+time=1"], capture_output=True, text=True).stdout.split()
        print(f"baseline (no kills, {args.seconds // 2} s at {rate} qps): "
              f"{baseline['completed']:.0f}/{baseline['sent']:.0f} answered "
              f"({100 * baseline['completed'] / max(1, baseline['sent']):.3f} %)")
        print(f"under kills ({args.seconds} s at {rate} qps, SIGKILL every {args.interval} s): "
              f"{completed:.0f}/{sent:.0f} answered ({100 * completed / max(1, sent):.3f} %), "
              f"{sent - completed:.0f} lost")
        for index, back in kills:
            if back is None:
                print(f"  worker {index}: NOT back within 10 s")
            else:
                print(f"  worker {index}: answering again {back[0]:.0f} ms after the supervisor saw it die "
                      f"({back[1]:.0f} ms from the kill, polled)")
        print(f"registrations: {len(members)} of {args.members} in the registry; "
              f"{len(answer)} addresses in the DNS answer")
        print(f"restarts reported: {sum(w['restarts'] for w in daemon.workers())}")
    finally:
        daemon.stop()
        fake.kill()
        fake.wait()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
