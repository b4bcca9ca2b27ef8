#!/usr/bin/env python3
"""Service-group benchmark: resolverd's registration API and its cluster-zone answers, in one run.

Each round starts a fresh resolverd (release build, `server.threads = 1`, pinned to CPU 0) with an
empty registry in a temporary directory and an API token of its own, then:

1. API: N members across G groups are registered with PUT /v1/groups/g{k}/members/m{i}
   (check type "none": the loopback addresses 127.1.x.y are only data, nothing is contacted), by C client
   threads over keep-alive HTTP/1.1 connections (http.client, pinned to CPU 1). Registrations/s,
   median and p99 latency, resolverd's CPU per call and the client's CPU share (a client near 100 %
   means the figure is the client's limit, not resolverd's). GET /v1/groups and GET
   /v1/groups/{group} then must show every member, healthy; otherwise the script stops with an
   error. Then one heartbeat per member (POST .../heartbeat) the same way; every one must be 200.
2. DNS: dnsperf on CPU 1 (`-e -c 8 -q 500 -l SECONDS`) asks A of the G names g{k}.cluster.internal.
   (each answer holds the group's N/G addresses), then SRV of the same names (an SRV record per
   member, with its address as additional). Every group is asked once first and its answer checked
   (record counts; TC when it does not fit UDP). QPS, lost, resolverd's utime+stime over the run
   per answer (as bench/cache.py), and dnsperf's average response size.
3. Cache hits, for scale: G names h{k}.bench-cache. forwarded once to a fake upstream in this
   process (one A record each, TTL 3600), then asked by dnsperf the same way: the CPU per cache
   hit that the group answers are measured against (ratios in the summary).

With several --binary options every round runs each binary in turn (before/after comparisons in
one run, on the same machine state). Medians over the rounds; the Markdown tables and the exact
command line are printed at the end. Loopback only; every process and thread started is stopped.

Usage: bench/groups.py [--rounds 3] [--members 2000] [--groups 50] [--clients 16] [--seconds 10]
                       [--binary PATH [--binary PATH ...]]"""

import argparse
import collections
import http.client
import json
import secrets
import math
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resolvers  # noqa: E402

BINARY = os.path.join(resolvers.ROOT, ".build/release/resolverd")
BUILD_HINT = "run: swift build -c release --product resolverd"
SERVER_CPU, LOAD_CPU = 0, 1
DOMAIN = "cluster.internal."
MEMBER_TTL_S = 600
HTTP_TIMEOUT_S = 30
HTTP_TRIES = 3
PHASE_DEADLINE_S = 900
# resolverd's EDNS payload size (EDNS.advertisedPayloadSize): the most a UDP reply can hold.
UDP_LIMIT = 1232
TYPE_A, TYPE_SRV, TYPE_OPT, TYPE_SOA = 1, 33, 41, 6
CACHE_ZONE = "bench-cache."
# What the fake upstream answers for every cache name: loopback, as data only.
CACHE_ADDRESS = bytes([127, 0, 0, 2])
TYPE_NAMES = {1: "A", 6: "SOA", 28: "AAAA", 33: "SRV", 41: "OPT"}


class BenchError(Exception):
    """A failure the run cannot go on from: printed as the reason, exit code 1."""


# MARK: resolverd


def free_port():
    try:
        return resolvers.free_port()
    except OSError as error:
        raise BenchError(str(error)) from error

def filesystem_of(path):
    """The mount point and file system type holding `path` (from /proc/mounts)."""
    path = os.path.realpath(path)
    best = ("?", "?")
    try:
        with open("/proc/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1].replace("\\040", " ")
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) >= len(best[0] if best[0] != "?" else ""):
                    best = (mount, fields[2])
    except OSError:
        pass
    return best


class Resolverd:
    """One resolverd with its own config and registry in a temporary directory."""

    def __init__(self, binary, parent_dir, cpu, upstream_port):
        self.binary = binary
        self.upstream_port = upstream_port
        # The API needs a bearer token on every call (api.token): one per run.
        self.token = secrets.token_hex(16)
        self.cpu = cpu
        self.dir = tempfile.mkdtemp(prefix="bench-groups-", dir=parent_dir)
        self.registry_path = os.path.join(self.dir, "registry", "registry.sqlite")
        self.log_path = os.path.join(self.dir, "stderr.log")
        self.process = None
        self.log = None
        self.dns_port = None
        self.api_port = None

    def config(self):
        # Cluster names never go upstream; the cache-hit names are forwarded to the fake upstream
        # once. The "." zone exists because mode "forward" needs one, and points at the loopback
        # discard port. Members are registered on loopback only (registry.allowed_networks).
        return (f'[server]\nlisten = ["127.0.0.1:{self.dns_port}"]\nthreads = 1\n'
                f'[api]\nlisten = "127.0.0.1:0"\ntoken = "{self.token}"\n'
                f'[log]\nlevel = "info"\n'
                f'[cluster]\ndomain = "{DOMAIN}"\nanswer_ttl_s = 5\n'
                f'[registry]\npath = "{self.registry_path}"\nallowed_networks = ["127.0.0.0/8"]\n'
                f'[[forward]]\nzone = "{CACHE_ZONE}"\nservers = ["127.0.0.1:{self.upstream_port}"]\n'
                f'[[forward]]\nzone = "."\nservers = ["127.0.0.1:9"]\n')

    def start(self):
        self.dns_port = free_port()
        config = os.path.join(self.dir, "resolverd.toml")
        with open(config, "w") as f:
            f.write(self.config())
        self.log = open(self.log_path, "w")
        command = ["taskset", "-c", str(self.cpu), self.binary, "--config", config]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.dir)
        self.api_port = self.wait_for_api()
        end = time.monotonic() + 15
        while time.monotonic() < end:
            try:
                reply = parse_reply(dns_query(self.dns_port, DOMAIN, TYPE_SOA, timeout=0.3))
                if reply["rcode"] == 0 and reply["answers"].get("SOA"):
                    return self
                raise BenchError(f"resolverd answered SOA {DOMAIN} with {reply}: is the cluster zone there?")
            except (OSError, ValueError):
                time.sleep(0.05)
        raise BenchError(f"resolverd did not answer DNS on 127.0.0.1:{self.dns_port}\n{self.log_tail()}")

    def wait_for_api(self):
        """The API's port from the `listening` log line (api.listen is 127.0.0.1:0)."""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            with open(self.log_path) as f:
                match = re.search(r"msg=listening\b.*?\bapi=\"?127\.0\.0\.1:(\d+)", f.read())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                raise BenchError(
                    f"resolverd exited at start (code {self.process.returncode}):\n{self.log_tail()}\n"
                    f"If it rejects [cluster] or [registry], the binary predates service groups; {BUILD_HINT}")
            time.sleep(0.05)
        raise BenchError(f"resolverd did not log its API address within 20 s:\n{self.log_tail()}")

    def log_tail(self, lines=15):
        try:
            with open(self.log_path) as f:
                return "".join(f.readlines()[-lines:]).rstrip() or "(empty log)"
        except OSError:
            return "(no log)"

    def cpu_seconds(self):
        """utime+stime of the process so far, from /proc (taskset execs, so the pid is resolverd's)."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FakeUpstream:
    """A UDP server on loopback, on a thread of this process, answering every A question with one
    record (TTL 3600, a loopback address as data): the upstream the cache-hit names are forwarded
    to once. `stop()` ends the thread (it checks every 0.2 s)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    @staticmethod
    def answer(data):
        if len(data) < 12 or struct.unpack(">H", data[4:6])[0] != 1:
            return None
        position = 12
        for _ in range(128):
            if position >= len(data) or data[position] == 0 or data[position] & 0xC0:
                break
            position += 1 + data[position]
        end = position + 5
        if end > len(data) or data[position] != 0:
            return None
        qtype = struct.unpack(">H", data[position + 1:position + 3])[0]
        flags = 0x8480 | (struct.unpack(">H", data[2:4])[0] & 0x0100)  # QR AA RA, RD echoed
        records = b""
        if qtype == TYPE_A:
            records = b"\xc0\x0c" + struct.pack(">HHIH", TYPE_A, 1, 3600, 4) + CACHE_ADDRESS
        return data[:2] + struct.pack(">HHHHH", flags, 1, 1 if records else 0, 0, 0) + data[12:end] + records

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.sock.close()


# MARK: HTTP API


class Connection(http.client.HTTPConnection):
    """A keep-alive HTTP/1.1 connection with Nagle off, so no request waits on a delayed ACK."""

    def __init__(self, port):
        super().__init__("127.0.0.1", port, timeout=HTTP_TIMEOUT_S)

    def connect(self):
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def api_phase(server, calls, clients):
    """Sends `calls` ([(method, path, body, ok_statuses)]) from `clients` threads, each over its own
    keep-alive connection, taking the next call from a shared index. Returns rate, latency and CPU."""
    headers = {"Content-Type": "application/json", "Connection": "keep-alive",
               "Authorization": f"Bearer {server.token}"}
    latencies = [None] * len(calls)
    failures = []
    reconnects = [0]
    lock = threading.Lock()
    position = [0]
    start_line = threading.Barrier(clients + 1)
    end = time.monotonic() + PHASE_DEADLINE_S

    def take():
        with lock:
            index = position[0]
            position[0] += 1
        return index

    def worker():
        connection = Connection(server.api_port)
        try:
            try:
                connection.connect()
            except OSError:
                pass  # the first request connects again, and counts a failure if it cannot
            try:
                start_line.wait(timeout=60)
            except threading.BrokenBarrierError:
                return
            while True:
                index = take()
                if index >= len(calls):
                    return
                method, path, body, ok = calls[index]
                if time.monotonic() > end:
                    with lock:
                        failures.append((path, f"not sent: phase deadline of {PHASE_DEADLINE_S} s passed"))
                    continue
                problem = None
                for attempt in range(HTTP_TRIES):
                    if attempt > 0:
                        connection.close()
                        connection = Connection(server.api_port)
                        with lock:
                            reconnects[0] += 1
                    try:
                        began = time.perf_counter()
                        connection.request(method, path, body=body, headers=headers)
                        response = connection.getresponse()
                        data = response.read()
                        elapsed = time.perf_counter() - began
                    except (http.client.HTTPException, OSError) as error:
                        problem = repr(error)
                        continue
                    if response.will_close:
                        connection.close()  # reopened on the next request
                    if response.status in ok:
                        latencies[index] = elapsed
                        problem = None
                    else:
                        problem = f"HTTP {response.status}: {data[:300].decode(errors='replace')}"
                    break
                if problem:
                    with lock:
                        failures.append((f"{method} {path}", problem))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    cpu_before = server.cpu_seconds()
    client_before = time.process_time()
    try:
        start_line.wait(timeout=60)
    except threading.BrokenBarrierError:
        raise BenchError("the HTTP client threads did not start within 60 s")
    began = time.perf_counter()
    for thread in threads:
        thread.join(timeout=max(1.0, end - time.monotonic() + HTTP_TIMEOUT_S * HTTP_TRIES))
    seconds = time.perf_counter() - began
    if any(thread.is_alive() for thread in threads):
        raise BenchError("HTTP client threads still running after the phase deadline")
    server_cpu = server.cpu_seconds() - cpu_before
    client_cpu = time.process_time() - client_before

    done = sorted(value for value in latencies if value is not None)
    return {
        "ok": len(done), "seconds": seconds, "rate": len(done) / seconds if seconds > 0 else 0.0,
        "median_ms": percentile(done, 0.5) * 1e3, "p99_ms": percentile(done, 0.99) * 1e3,
        "server_cpu_us": server_cpu * 1e6 / max(1, len(done)),
        "client_cpu_pct": 100 * client_cpu / seconds if seconds > 0 else 0.0,
        "failures": failures, "reconnects": reconnects[0],
    }


def http_get(port, path, token):
    connection = Connection(port)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def group_sizes(members, groups):
    """Members per group: m{i} belongs to g{i % groups}."""
    return [members // groups + (1 if k < members % groups else 0) for k in range(groups)]


def member_calls(members, groups):
    calls = []
    for i in range(members):
        body = json.dumps({"address": f"127.1.{i >> 8}.{i & 0xFF}", "port": 8080, "ttl_s": MEMBER_TTL_S,
                           "check": {"type": "none"}}).encode()
        calls.append(("PUT", f"/v1/groups/g{i % groups}/members/m{i}", body, (200, 201)))
    return calls


def heartbeat_calls(members, groups):
    return [("POST", f"/v1/groups/g{i % groups}/members/m{i}/heartbeat", None, (200,)) for i in range(members)]


def verify_registry(port, token, members, groups):
    """Problems found: every group with its members, all healthy, nothing more."""
    problems = []
    status, body = http_get(port, "/v1/groups", token)
    if status != 200:
        return [f"GET /v1/groups: HTTP {status}: {body[:300].decode(errors='replace')}"]
    listed = {entry["group"]: entry for entry in json.loads(body)["groups"]}
    expected_names = {f"g{k}" for k in range(groups)}
    extra = sorted(set(listed) - expected_names)
    if extra:
        problems.append(f"GET /v1/groups lists groups not registered: {', '.join(extra[:5])}")
    sizes = group_sizes(members, groups)
    for k, size in enumerate(sizes):
        name = f"g{k}"
        entry = listed.get(name)
        if entry is None:
            problems.append(f"GET /v1/groups: group {name} is missing ({size} members registered)")
            continue
        if entry["members"] != size or entry["healthy"] != size:
            problems.append(f"GET /v1/groups: {name} has {entry['members']} members ({entry['healthy']} healthy), "
                            f"expected {size}")
        status, body = http_get(port, f"/v1/groups/{name}", token)
        if status != 200:
            problems.append(f"GET /v1/groups/{name}: HTTP {status}")
            continue
        ids = {member["id"] for member in json.loads(body)["members"]}
        wanted = {f"m{i}" for i in range(k, members, groups)}
        missing = sorted(wanted - ids, key=lambda text: int(text[1:]))
        if missing:
            more = "…" if len(missing) > 5 else ""
            problems.append(f"GET /v1/groups/{name}: {len(missing)} members missing ({', '.join(missing[:5])}{more})")
        if ids - wanted:
            problems.append(f"GET /v1/groups/{name}: unexpected members {sorted(ids - wanted)[:5]}")
        if len(problems) > 20:
            break
    return problems


# MARK: DNS


def encode_name(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".") if label) + b"\x00"


def dns_query(port, name, qtype, tcp=False, timeout=2.0, payload=4096):
    """One query with EDNS (as dnsperf -e sends it); the reply's bytes."""
    qid = int.from_bytes(os.urandom(2), "big")
    message = (struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 1) + encode_name(name) + struct.pack(">HH", qtype, 1)
               + b"\x00" + struct.pack(">HHIH", TYPE_OPT, payload, 0, 0))
    if not tcp:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(message, ("127.0.0.1", port))
            for _ in range(10):
                data = s.recv(65535)
                if data[:2] == message[:2]:
                    return data
            raise ValueError("no reply with the query's id")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">H", len(message)) + message)
        data = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            chunk = s.recv(65535)
            if not chunk:
                break
            data += chunk
            if len(data) >= 2 and len(data) >= 2 + struct.unpack(">H", data[:2])[0]:
                return data[2:2 + struct.unpack(">H", data[:2])[0]]
        raise ValueError("incomplete TCP reply")


def parse_reply(data):
    """Header flags and the record types of each section; ValueError when malformed."""
    try:
        return parse_sections(data)
    except (IndexError, struct.error) as error:
        raise ValueError(f"malformed reply: {error}")


def parse_sections(data):
    if len(data) < 12:
        raise ValueError("short reply")
    _, flags, qdcount, ancount, nscount, arcount = struct.unpack(">HHHHHH", data[:12])
    position = 12

    def skip_name(position):
        for _ in range(128):
            length = data[position]
            if length == 0:
                return position + 1
            if length & 0xC0 == 0xC0:
                return position + 2
            position += 1 + length
        raise ValueError("name too long")

    for _ in range(qdcount):
        position = skip_name(position) + 4
    sections = []
    for count in (ancount, nscount, arcount):
        types = collections.Counter()
        for _ in range(count):
            position = skip_name(position)
            rtype, _, _, length = struct.unpack(">HHIH", data[position:position + 10])
            position += 10 + length
            types[TYPE_NAMES.get(rtype, str(rtype))] += 1
        sections.append(types)
    if position > len(data):
        raise ValueError("reply shorter than its records")
    return {"rcode": flags & 0x0F, "tc": bool(flags & 0x0200), "answers": sections[0],
            "authorities": sections[1], "additionals": sections[2], "size": len(data)}


def check_answers(port, members, groups, qtype):
    """Asks every group once over UDP and checks the records against the registrations. Returns
    (description, truncated groups, full answer size); raises on a wrong answer."""
    sizes = group_sizes(members, groups)
    truncated = 0
    description, full_size = "", 0
    for k, size in enumerate(sizes):
        name = f"g{k}.{DOMAIN}"
        reply = parse_reply(dns_query(port, name, qtype))
        if reply["rcode"] != 0:
            raise BenchError(f"{TYPE_NAMES[qtype]} {name}: rcode {reply['rcode']}, expected NOERROR")
        if reply["tc"]:
            truncated += 1
            reply = parse_reply(dns_query(port, name, qtype, tcp=True))  # the whole answer, for its size
        wanted = {"A": size} if qtype == TYPE_A else {"SRV": size}
        got = {key: reply["answers"].get(key, 0) for key in wanted}
        if got != wanted or (qtype == TYPE_SRV and reply["additionals"].get("A", 0) != size):
            raise BenchError(f"{TYPE_NAMES[qtype]} {name}: answer has {dict(reply['answers'])} "
                             f"(additional {dict(reply['additionals'])}), expected {size} records for {size} members")
        if k == 0:
            full_size = reply["size"]
            description = f"{size} A" if qtype == TYPE_A else f"{size} SRV + {size} A"
    return description, truncated, full_size


def names_file(directory, groups, qtype):
    path = os.path.join(directory, f"groups-{TYPE_NAMES[qtype]}.txt")
    with open(path, "w") as f:
        for k in range(groups):
            f.write(f"g{k}.{DOMAIN} {TYPE_NAMES[qtype]}\n")
    return path


def cache_names(count):
    return [f"h{k}.{CACHE_ZONE}" for k in range(count)]


def cache_names_file(directory, count):
    path = os.path.join(directory, "cache-A.txt")
    with open(path, "w") as f:
        for name in cache_names(count):
            f.write(f"{name} A\n")
    return path


def warm_cache(port, count):
    """Asks every cache-hit name once (the miss that fills the cache) and checks the answer."""
    for name in cache_names(count):
        reply = None
        for _ in range(3):
            try:
                reply = parse_reply(dns_query(port, name, TYPE_A))
                break
            except (OSError, ValueError):
                continue
        if reply is None or reply["rcode"] != 0 or reply["answers"].get("A", 0) != 1:
            raise BenchError(f"A {name}: {reply}, expected one A record from the fake upstream")


def dnsperf(port, data, seconds, *extra):
    """dnsperf on the load CPU with EDNS (-e), so replies up to 1232 bytes fit UDP."""
    command = (["taskset", "-c", str(LOAD_CPU), "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", data, "-e",
                "-c", "8", "-q", "500", "-l", str(seconds)] + list(extra))
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        raise BenchError(f"dnsperf did not finish within {seconds + 120} s")
    output = run.stdout

    def number(pattern):
        match = re.search(pattern, output)
        return float(match.group(1)) if match else 0.0

    result = {
        "sent": number(r"Queries sent:\s+(\d+)"), "completed": number(r"Queries completed:\s+(\d+)"),
        "lost": number(r"Queries lost:\s+(\d+)"), "qps": number(r"Queries per second:\s+([\d.]+)"),
        "noerror": number(r"NOERROR (\d+)"), "response_bytes": number(r"Average packet size:.*response (\d+)"),
    }
    if result["completed"] == 0:
        raise BenchError(f"dnsperf completed no queries (exit {run.returncode}):\n{output}{run.stderr}")
    return result


def dns_pass(server, data, seconds, tcp):
    cpu_before = server.cpu_seconds()
    result = dnsperf(server.dns_port, data, seconds, *(["-m", "tcp"] if tcp else []))
    cpu = server.cpu_seconds() - cpu_before
    result["cpu_us"] = cpu * 1e6 / max(1.0, result["completed"])
    return result


# MARK: A round


def one_round(args, binary, upstream, data_files, log):
    server = Resolverd(binary, args.tmpdir, SERVER_CPU, upstream.port)
    try:
        server.start()
        result = {}

        register = api_phase(server, member_calls(args.members, args.groups), args.clients)
        if register["failures"]:
            raise BenchError(failure_text("registrations", register["failures"], args.members))
        problems = verify_registry(server.api_port, server.token, args.members, args.groups)
        if problems:
            raise BenchError("after the registrations, the registry is not what was registered:\n  "
                             + "\n  ".join(problems[:20]))
        result["register"] = register
        log(f"register: {register['rate']:.0f}/s, median {register['median_ms']:.2f} ms, "
            f"p99 {register['p99_ms']:.2f} ms, {register['server_cpu_us']:.0f} µs server CPU per call, "
            f"client CPU {register['client_cpu_pct']:.0f} %, reconnects {register['reconnects']}; verified")

        heartbeat = api_phase(server, heartbeat_calls(args.members, args.groups), args.clients)
        if heartbeat["failures"]:
            raise BenchError(failure_text("heartbeats", heartbeat["failures"], args.members))
        result["heartbeat"] = heartbeat
        log(f"heartbeat: {heartbeat['rate']:.0f}/s, median {heartbeat['median_ms']:.2f} ms, "
            f"p99 {heartbeat['p99_ms']:.2f} ms, {heartbeat['server_cpu_us']:.0f} µs server CPU per call, "
            f"client CPU {heartbeat['client_cpu_pct']:.0f} %, reconnects {heartbeat['reconnects']}")

        for qtype in (TYPE_A, TYPE_SRV):
            kind = TYPE_NAMES[qtype]
            description, truncated, full_size = check_answers(server.dns_port, args.members, args.groups, qtype)
            tcp = bool(truncated) and args.tcp_if_truncated
            dns = dns_pass(server, data_files[qtype], args.seconds, tcp)
            dns.update(answer=description, truncated=truncated, full_size=full_size, tcp=tcp)
            result[kind] = dns
            if dns["noerror"] < dns["completed"]:
                log(f"warning: {kind}: only {dns['noerror']:.0f} of {dns['completed']:.0f} answers were NOERROR")
            log(f"{kind}: {dns['qps']:.0f} qps, lost {dns['lost']:.0f} of {dns['sent']:.0f}, "
                f"{dns['cpu_us']:.2f} µs CPU per answer, {dns['response_bytes']:.0f} bytes per response "
                f"({description}, {full_size} bytes whole{', TC over UDP' if truncated else ''}"
                f"{', asked over TCP' if tcp else ''})")

        warm_cache(server.dns_port, args.groups)
        hit = dns_pass(server, data_files["cache"], args.seconds, False)
        result["hit"] = hit
        log(f"cache hit: {hit['qps']:.0f} qps, lost {hit['lost']:.0f} of {hit['sent']:.0f}, "
            f"{hit['cpu_us']:.2f} µs CPU per answer, {hit['response_bytes']:.0f} bytes per response; "
            f"A / hit {result['A']['cpu_us'] / hit['cpu_us']:.2f}, SRV / hit {result['SRV']['cpu_us'] / hit['cpu_us']:.2f}")
        return result
    finally:
        server.stop()


def failure_text(what, failures, total):
    lines = [f"{len(failures)} of {total} {what} failed; the first:"]
    lines += [f"  {path}: {problem}" for path, problem in failures[:10]]
    return "\n".join(lines)


# MARK: Report


def median_of(rounds, *keys):
    values = []
    for row in rounds:
        for key in keys[:-1]:
            row = row[key]
        values.append(row[keys[-1]])
    return statistics.median(values)


def summary(args, results, command_line):
    """One line per binary: the cache hit, the group answers and their ratios to it."""
    print(f"```\n{command_line}\n```\n")
    print(f"Each round runs every binary in turn; medians of {args.rounds} rounds, CPU µs per answer "
          f"(resolverd's utime+stime / answers, dnsperf `-e -c 8 -q 500 -l {args.seconds}`).\n")
    print("| binary | cache hit µs | group A µs | A / hit | SRV µs | SRV / hit | A QPS | SRV QPS |")
    print("|---|---|---|---|---|---|---|---|")
    for binary, rounds in results.items():
        hit = median_of(rounds, "hit", "cpu_us")
        a = median_of(rounds, "A", "cpu_us")
        srv = median_of(rounds, "SRV", "cpu_us")
        a_ratio = statistics.median(row["A"]["cpu_us"] / row["hit"]["cpu_us"] for row in rounds)
        srv_ratio = statistics.median(row["SRV"]["cpu_us"] / row["hit"]["cpu_us"] for row in rounds)
        print(f"| {binary} | {hit:.2f} | {a:.2f} | {a_ratio:.2f} | {srv:.2f} | {srv_ratio:.2f} "
              f"| {median_of(rounds, 'A', 'qps'):.0f} | {median_of(rounds, 'SRV', 'qps'):.0f} |")
    print("\nRatios are medians of each round's own ratio (the hit measured in the same process).")


def report(args, rounds, command_line, registry_fs):
    sizes = group_sizes(args.members, args.groups)
    per_group = f"{sizes[0]}" if sizes[0] == sizes[-1] else f"{sizes[-1]}–{sizes[0]}"
    mount, fs_type = registry_fs
    print()
    print(f"```\n{command_line}\n```\n")
    print(f"{len(rounds)} rounds, each a fresh resolverd (`threads = 1`, pinned to CPU {SERVER_CPU}) with an empty "
          f"registry (SQLite, synchronous = FULL) on {fs_type} ({mount}); {args.members} members in {args.groups} "
          f"groups ({per_group} each), check type none; {args.clients} HTTP/1.1 keep-alive clients (Python threads) "
          f"and dnsperf (`-e -c 8 -q 500 -l {args.seconds}`) on CPU {LOAD_CPU}. Medians.\n")

    print("| API call | calls | per second | median ms | p99 ms | resolverd CPU µs per call | client CPU % |")
    print("|---|---|---|---|---|---|---|")
    calls = (("register", "register (PUT …/members/{id})"), ("heartbeat", "heartbeat (POST …/heartbeat)"))
    for key, label in calls:
        print(f"| {label} | {args.members} | {median_of(rounds, key, 'rate'):.0f} "
              f"| {median_of(rounds, key, 'median_ms'):.2f} | {median_of(rounds, key, 'p99_ms'):.2f} "
              f"| {median_of(rounds, key, 'server_cpu_us'):.0f} | {median_of(rounds, key, 'client_cpu_pct'):.0f} |")
    print()
    print("| question | answer | QPS | lost | CPU µs per answer | response bytes |")
    print("|---|---|---|---|---|---|")
    for kind in ("A", "SRV"):
        last = rounds[-1][kind]
        answer = last["answer"]
        if last["tcp"]:
            answer += f" ({last['full_size']} bytes: over UDP TC, asked over TCP)"
        elif last["truncated"]:
            answer += f" ({last['full_size']} bytes > {UDP_LIMIT}: **TC, header-only replies**)"
        lost = sum(row[kind]["lost"] for row in rounds)
        sent = sum(row[kind]["sent"] for row in rounds)
        print(f"| {kind} g{{k}}.{DOMAIN} | {answer} | {median_of(rounds, kind, 'qps'):.0f} | {lost:.0f} of {sent:.0f} "
              f"| {median_of(rounds, kind, 'cpu_us'):.2f} | {median_of(rounds, kind, 'response_bytes'):.0f} |")
    print()
    print("Per round: register/s " + ", ".join(f"{row['register']['rate']:.0f}" for row in rounds)
          + "; heartbeat/s " + ", ".join(f"{row['heartbeat']['rate']:.0f}" for row in rounds)
          + "; A QPS " + ", ".join(f"{row['A']['qps']:.0f}" for row in rounds)
          + "; SRV QPS " + ", ".join(f"{row['SRV']['qps']:.0f}" for row in rounds) + ".")
    print()
    print("Context: cluster-zone answers are never cached; since issue 17 they are written from records "
          "rendered once per registry change (before, built per query). The cache-hit row below each run is "
          "the scale they are held to. The API calls are each one SQLite transaction on disk before the reply.")
    notes = []
    if any(row[key]["client_cpu_pct"] > 85 for row in rounds for key in ("register", "heartbeat")):
        notes.append("The Python client used more than 85 % of its CPU in some phase: there the rate is the "
                     "client's limit as much as resolverd's (try fewer --clients, or read the server CPU column).")
    for kind in ("A", "SRV"):
        last = rounds[-1][kind]
        if last["truncated"] and not last["tcp"]:
            notes.append(f"{kind}: {last['truncated']} of {args.groups} answers do not fit {UDP_LIMIT} bytes, so "
                         f"resolverd replied TC with no records and the {kind} row measures truncated replies, not "
                         f"answers. Use fewer members per group (more --groups) or --tcp-if-truncated.")
    for note in notes:
        print(f"\nNote: {note}")


def main():
    parser = argparse.ArgumentParser(
        description="Service groups: registrations and heartbeats per second through resolverd's API, "
                    "and QPS of cluster-zone A and SRV answers (dnsperf). Loopback only.")
    parser.add_argument("--rounds", type=int, default=3, help="fresh resolverd per round; medians (default 3)")
    parser.add_argument("--members", type=int, default=2000, help="members registered, N (default 2000)")
    parser.add_argument("--groups", type=int, default=50, help="groups g0..g{G-1}, G (default 50)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients, C (default 16)")
    parser.add_argument("--seconds", type=int, default=10, help="dnsperf run per question type (default 10)")
    parser.add_argument("--tcp-if-truncated", action="store_true",
                        help="when an answer does not fit UDP (TC), run that dnsperf pass over TCP (-m tcp)")
    parser.add_argument("--tmpdir", default=None,
                        help="parent of the temporary directory holding the registry (default: $TMPDIR or /tmp); "
                             "its file system sets the cost of every fsync")
    parser.add_argument("--binary", action="append", default=None,
                        help="resolverd to run (default: .build/release/resolverd); give it more than once to "
                             "compare binaries round by round")
    args = parser.parse_args()
    if not 1 <= args.groups <= args.members <= 65536:
        parser.error("need 1 <= --groups <= --members <= 65536 (addresses are 127.1.x.y)")
    if args.clients < 1 or args.rounds < 1 or args.seconds < 1:
        parser.error("--clients, --rounds and --seconds must be at least 1")

    args.binary = args.binary or [BINARY]
    for binary in args.binary:
        if not os.path.exists(binary):
            sys.exit(f"bench/groups.py: {binary} does not exist; {BUILD_HINT}")
    for tool in ["dnsperf", "taskset"]:
        if shutil.which(tool) is None:
            sys.exit(f"bench/groups.py: {tool} is missing; run bench/install.sh")
    if not {SERVER_CPU, LOAD_CPU} <= os.sched_getaffinity(0):
        sys.exit(f"bench/groups.py: needs CPUs {SERVER_CPU} and {LOAD_CPU}; this process may use "
                 f"{sorted(os.sched_getaffinity(0))}")
    sources = os.path.join(resolvers.ROOT, "Sources")
    newest = max((os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(sources) for f in fs), default=0)
    if BINARY in map(os.path.abspath, args.binary) and newest > os.path.getmtime(BINARY):
        print(f"# warning: {BINARY} is older than Sources/; {BUILD_HINT}", file=sys.stderr)

    command_line = " ".join(shlex.quote(part) for part in
                            ["python3", os.path.relpath(os.path.abspath(__file__), resolvers.ROOT)] + sys.argv[1:])
    registry_fs = filesystem_of(args.tmpdir or tempfile.gettempdir())
    # The HTTP clients (this process's threads) share CPU 1 with dnsperf, away from resolverd.
    os.sched_setaffinity(0, {LOAD_CPU})

    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop resolverd and dnsperf.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    directory = tempfile.mkdtemp(prefix="bench-groups-data-")
    results = {binary: [] for binary in args.binary}
    upstream = FakeUpstream()
    try:
        data_files = {qtype: names_file(directory, args.groups, qtype) for qtype in (TYPE_A, TYPE_SRV)}
        data_files["cache"] = cache_names_file(directory, args.groups)
        for index in range(args.rounds):
            for binary in args.binary:
                def log(text, index=index, binary=binary):
                    label = f" {binary}" if len(args.binary) > 1 else ""
                    print(f"# round {index + 1}{label}: {text}", file=sys.stderr, flush=True)
                results[binary].append(one_round(args, binary, upstream, data_files, log))
    except BenchError as error:
        print(f"bench/groups.py: error: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        upstream.stop()
        shutil.rmtree(directory, ignore_errors=True)
    for binary, rounds in results.items():
        if len(results) > 1:
            print(f"\n### {binary}")
        report(args, rounds, command_line, registry_fs)
    print()
    summary(args, results, command_line)


if __name__ == "__main__":
    main()
