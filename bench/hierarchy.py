"""A fake DNS hierarchy on loopback for recursive-resolution benchmarks, served by NSD.

Layout (every server its own `nsd -d` process with its own config, zone files and control socket,
so no server answers for a zone and its parent, which would answer without a referral):

    127.53.0.1        .                   NS a.root-servers.test. (glue 127.53.0.1)
    127.53.0.2        test.               NS ns1.test.
    127.53.0.3        lab.                NS ns1.lab.
    127.53.0.4 – .7   z00.test. … z09.test., z10.lab. … z19.lab.: zone i on 127.53.0.(4 + i % 4)

Each second-level zone holds h00 … h49 (A in 192.0.2.0/24 under test., 198.51.100.0/24 under
lab.): 1,000 names. With depth N they sit N labels below the cut, h00.<N-1 labels>.z00.test.
(depth 3: h00.b.a.z00.test.), so each zone has N-1 empty non-terminals (a.z00.test.,
b.a.z00.test.) that NSD answers with NODATA, and QNAME minimisation walks them label by label. Zones with i % 3 == 2 (6 of 20) are delegated to an out-of-bailiwick name
in the other TLD, ns-zII.zJJ.<other>. with J = (i + 10) % 20 (an in-bailiwick zone), so the
resolver has to look that name up before it can ask the zone; the others have ns1.<zone> with glue.

`Hierarchy(directory, depth=N).start()` writes everything below `directory`, starts the seven
servers (rate limiting off), checks every referral, answer and empty non-terminal, and `stop()`
stops them. `queries()`
reads each server's query counter through nsd-control (stats_noreset). Loopback only.

Also the small DNS message parser the benchmark's client uses (`parse_message`)."""

import ctypes
import os
import signal
import socket
import struct
import subprocess
import time

import resolvers

ROOT_ADDRESS = "127.53.0.1"
ROOT_NS = "a.root-servers.test."
TLDS = {"test.": "127.53.0.2", "lab.": "127.53.0.3"}
LEAF_SERVERS = ["127.53.0.4", "127.53.0.5", "127.53.0.6", "127.53.0.7"]
ZONES_PER_TLD = 10
NAMES_PER_ZONE = 50
MAX_DEPTH = 27  # the labels between a host and its cut are a, b, …, z
TTL = 3600
PORT = 53
START_DEADLINE_S = 10.0
STOP_DEADLINE_S = 5.0
TYPE_A, TYPE_NS, TYPE_SOA = 1, 2, 6
PR_SET_CHILD_SUBREAPER = 36


# MARK: zone data


class Zone:
    def __init__(self, name, server):
        self.name = name  # absolute, "z00.test."
        self.server = server  # the address serving it
        self.records = []  # (owner, type, rdata) as zone-file text

    def add(self, owner, rtype, rdata):
        self.records.append((owner, rtype, rdata))

    def text(self):
        lines = [f"$TTL {TTL}",
                 f"{self.name} IN SOA {self.ns_name()} hostmaster.{self.name.lstrip('.')} 1 3600 600 86400 300"]
        lines += [f"{owner} IN {rtype} {rdata}" for owner, rtype, rdata in self.records]
        return "\n".join(lines) + "\n"

    def ns_name(self):
        return next(rdata for owner, rtype, rdata in self.records if owner == self.name and rtype == "NS")

    def file_name(self):
        return "root.zone" if self.name == "." else f"{self.name.rstrip('.')}.zone"


def leaf_zones():
    """[(index, zone name, tld)] of the 20 second-level zones."""
    zones = []
    for t, tld in enumerate(TLDS):
        for k in range(ZONES_PER_TLD):
            index = t * ZONES_PER_TLD + k
            zones.append((index, f"z{index:02d}.{tld}", tld))
    return zones


def out_of_bailiwick(index):
    """For a zone delegated to a name in the other TLD, the index of the zone holding that name."""
    return (index + 10) % (2 * ZONES_PER_TLD) if index % 3 == 2 else None


def between(zone, depth):
    """The names between a zone's cut and its hosts at `depth`, top down: the empty non-terminals
    (depth 3: [a.zone, b.a.zone])."""
    names, name = [], zone
    for k in range(depth - 1):
        name = f"{chr(ord('a') + k)}.{name}"
        names.append(name)
    return names


def host_name(zone, host, depth):
    """hNN `depth` labels below `zone`: h07.b.a.z00.test. at depth 3."""
    return f"h{host:02d}.{(between(zone, depth) or [zone])[-1]}"


def address_of(index, host):
    prefix = "192.0.2" if index < ZONES_PER_TLD else "198.51.100"
    return f"{prefix}.{1 + (index * NAMES_PER_ZONE + host) % 254}"


def build(depth=1):
    """The zones by server address, and the 1,000 (qname, expected address) pairs, each name
    `depth` labels below its zone's cut."""
    root = Zone(".", ROOT_ADDRESS)
    root.add(".", "NS", ROOT_NS)
    root.add(ROOT_NS, "A", ROOT_ADDRESS)  # glue below test.
    tld_zones = {}
    for tld, address in TLDS.items():
        root.add(tld, "NS", f"ns1.{tld}")
        root.add(f"ns1.{tld}", "A", address)
        zone = Zone(tld, address)
        zone.add(tld, "NS", f"ns1.{tld}")
        zone.add(f"ns1.{tld}", "A", address)
        tld_zones[tld] = zone
    tld_zones["test."].add(ROOT_NS, "A", ROOT_ADDRESS)  # authoritative copy of the root's glue

    leaves = {}
    names = []
    for index, name, tld in leaf_zones():
        zone = Zone(name, LEAF_SERVERS[index % len(LEAF_SERVERS)])
        leaves[index] = zone
        for host in range(NAMES_PER_ZONE):
            zone.add(host_name(name, host, depth), "A", address_of(index, host))
            names.append((host_name(name, host, depth), address_of(index, host)))
    for index, name, tld in leaf_zones():
        zone, parent = leaves[index], tld_zones[tld]
        host_index = out_of_bailiwick(index)
        if host_index is None:
            ns = f"ns1.{name}"
            zone.add(name, "NS", ns)
            zone.add(ns, "A", zone.server)
            parent.add(name, "NS", ns)
            parent.add(ns, "A", zone.server)  # glue
        else:
            ns = f"ns-z{index:02d}.{leaves[host_index].name}"
            zone.add(name, "NS", ns)
            parent.add(name, "NS", ns)  # no glue: the name is in the other TLD
            leaves[host_index].add(ns, "A", zone.server)

    by_server = {ROOT_ADDRESS: [root]}
    for zone in list(tld_zones.values()) + list(leaves.values()):
        by_server.setdefault(zone.server, []).append(zone)
    return by_server, names


def root_hints():
    """A root-hints file's text (Unbound's root-hints): the fake root's NS name and address."""
    return f".\t{TTL}\tIN\tNS\t{ROOT_NS}\n{ROOT_NS}\t{TTL}\tIN\tA\t{ROOT_ADDRESS}\n"


# MARK: DNS messages


def read_name(data, position):
    """(name with trailing dot, position after it); follows compression pointers, bounded."""
    labels, end = [], None
    for _ in range(128):
        length = data[position]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = position + 2
            position = ((length & 0x3F) << 8) | data[position + 1]
            continue
        if length == 0:
            return ".".join(labels) + ".", (end if end is not None else position + 1)
        labels.append(data[position + 1:position + 1 + length].decode("ascii", "replace").lower())
        position += 1 + length
    raise ValueError("name too long or looping")


def parse_message(data):
    """Header fields and the records of each section as (name, type, rdata); A and NS rdata as
    text, others as bytes. ValueError when malformed."""
    try:
        if len(data) < 12:
            raise ValueError("short message")
        qid, flags, qdcount, ancount, nscount, arcount = struct.unpack(">HHHHHH", data[:12])
        position, question = 12, None
        for _ in range(qdcount):
            qname, position = read_name(data, position)
            question = (qname, struct.unpack(">H", data[position:position + 2])[0])
            position += 4
        sections = []
        for count in (ancount, nscount, arcount):
            records = []
            for _ in range(count):
                owner, position = read_name(data, position)
                rtype, _, _, length = struct.unpack(">HHIH", data[position:position + 10])
                position += 10
                rdata = data[position:position + length]
                if rtype == TYPE_A and length == 4:
                    rdata = socket.inet_ntoa(rdata)
                elif rtype == TYPE_NS:
                    rdata = read_name(data, position)[0]
                records.append((owner, rtype, rdata))
                position += length
            sections.append(records)
        if position > len(data):
            raise ValueError("message shorter than its records")
    except (IndexError, struct.error) as error:
        raise ValueError(f"malformed message: {error}")
    return {"id": qid, "rcode": flags & 0x0F, "aa": bool(flags & 0x0400), "tc": bool(flags & 0x0200),
            "question": question, "answers": sections[0], "authorities": sections[1], "additionals": sections[2]}


def ask(address, name, qtype, port=PORT, timeout=1.0):
    """One non-recursive query over UDP; the parsed reply (OSError on timeout)."""
    query = resolvers.build_query(0x5353, name, qtype, rd=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(query, (address, port))
        return parse_message(s.recv(4096))


def answering(addresses, wait_s=0.3):
    """The addresses among `addresses` where something answers a query on port 53."""
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for address in addresses:
            s.sendto(resolvers.build_query(0x5354, ".", TYPE_SOA, rd=False), (address, PORT))
        end = time.monotonic() + wait_s
        while time.monotonic() < end and len(found) < len(addresses):
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                found.add(s.recvfrom(4096)[1][0])
            except socket.timeout:
                break
            except OSError:
                pass  # ICMP port unreachable from a free address
    return sorted(found)


# MARK: servers


def adopt_orphans():
    """Makes this process the reaper of its orphaned descendants (Linux prctl). When NSD stops, its
    server process outlives its parent for a moment and is re-parented; in a container whose PID 1
    never reaps, it would stay a zombie. Adopted, `Server.stop` reaps it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def descendants(pid):
    """Pids of every process below `pid`, from /proc/*/stat."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], [pid]
    while frontier and len(found) < 1000:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent]
        found += children
        frontier += children
    return found


def reap(pids, deadline_s=STOP_DEADLINE_S):
    """Waits for `pids` (descendants of a process we stopped) to exit and reaps those re-parented to
    us; kills any still running at the deadline."""
    end = time.monotonic() + deadline_s
    for pid in pids:
        killed = False
        while os.path.exists(f"/proc/{pid}"):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    break
            except ChildProcessError:
                pass  # not (yet) re-parented to us
            if time.monotonic() > end:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
                    if not zombie and not killed:
                        os.kill(pid, signal.SIGKILL)
                        killed, end = True, time.monotonic() + 1.0  # one more second to reap it
                        continue
                except OSError:
                    pass
                break  # a zombie someone else must reap, or unkillable
            time.sleep(0.02)


class Server:
    """One NSD process serving `zones` on address:53, in its own directory."""

    def __init__(self, directory, address, zones, cpu=None):
        self.address = address
        self.zones = zones
        self.cpu = cpu
        self.dir = os.path.join(directory, address)
        self.config = os.path.join(self.dir, "nsd.conf")
        self.log_path = os.path.join(self.dir, "nsd.log")
        self.process = None
        self.log = None

    def write(self):
        os.makedirs(self.dir, exist_ok=True)
        for zone in self.zones:
            with open(os.path.join(self.dir, zone.file_name()), "w") as f:
                f.write(zone.text())
        zone_clauses = "".join(f'zone:\n  name: "{z.name}"\n  zonefile: "{z.file_name()}"\n' for z in self.zones)
        with open(self.config, "w") as f:
            f.write("server:\n"
                    f"  ip-address: {self.address}\n  port: {PORT}\n  do-ip6: no\n  reuseport: no\n"
                    "  server-count: 1\n  username: \"\"\n  chroot: \"\"\n  database: \"\"\n"
                    f"  zonesdir: \"{self.dir}\"\n  zonelistfile: \"{self.dir}/zone.list\"\n"
                    f"  xfrdfile: \"{self.dir}/xfrd.state\"\n  xfrdir: \"{self.dir}\"\n"
                    f"  pidfile: \"{self.dir}/nsd.pid\"\n  logfile: \"{self.log_path}\"\n"
                    "  verbosity: 0\n  hide-version: yes\n"
                    # Rate limiting is on by default (200 answers/s per /24): the resolver would get
                    # truncated answers under load.
                    "  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n"
                    "remote-control:\n  control-enable: yes\n"
                    f"  control-interface: \"{self.dir}/nsd.ctl\"\n" + zone_clauses)

    def start(self):
        self.write()
        subprocess.run(["nsd-checkconf", self.config], check=True, capture_output=True, timeout=30)
        command = ["nsd", "-d", "-c", self.config]
        if self.cpu is not None:
            command = ["taskset", "-c", str(self.cpu)] + command
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=self.dir)
        end = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < end:
            if self.process.poll() is not None:
                break
            try:
                if ask(self.address, self.zones[0].name, TYPE_SOA, timeout=0.2)["aa"]:
                    return self
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"nsd on {self.address}:{PORT} did not start:\n{self.log_tail()}")

    def log_tail(self, lines=10):
        text = ""
        for path in (os.path.join(self.dir, "stderr.log"), self.log_path):
            try:
                with open(path) as f:
                    text += "".join(f.readlines()[-lines:])
            except OSError:
                pass
        return text.rstrip() or "(empty log)"

    def queries(self):
        """Queries received so far (num.queries from nsd-control stats_noreset)."""
        output = subprocess.run(["nsd-control", "-c", self.config, "stats_noreset"],
                                capture_output=True, text=True, timeout=10).stdout
        for line in output.splitlines():
            if line.startswith("num.queries="):
                return int(line.split("=", 1)[1])
        raise RuntimeError(f"nsd-control stats_noreset on {self.address} gave no num.queries: {output!r}")

    def stop(self):
        if self.process and self.process.poll() is None:
            family = descendants(self.process.pid)  # nsd's xfrd and server processes
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            reap(family)
        if self.log:
            self.log.close()


class Hierarchy:
    """The seven NSD servers of the layout above, in `directory` (which the caller removes)."""

    def __init__(self, directory, cpu=None, depth=1):
        if not 1 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth {depth}: 1 to {MAX_DEPTH}")
        adopt_orphans()
        self.depth = depth
        by_server, self.names = build(depth)
        self.servers = [Server(directory, address, zones, cpu) for address, zones in by_server.items()]

    def start(self):
        busy = answering([server.address for server in self.servers])
        if busy:
            # NSD's sockets share addresses (SO_REUSEADDR), so a second hierarchy would start and
            # split the queries with the first instead of failing.
            raise RuntimeError(f"something already answers DNS on {', '.join(busy)} port {PORT} "
                               "(another bench/recursion.py?)")
        try:
            for server in self.servers:
                server.start()
            self.check()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for server in self.servers:
            server.stop()

    def queries(self):
        """{server address: queries received so far}."""
        return {server.address: server.queries() for server in self.servers}

    def check(self):
        """Asks every server what a resolver would and raises unless referrals and answers are right:
        the root and each TLD refer (no AA, NS in authority, glue when in bailiwick), each leaf
        zone's server answers authoritatively, answers NODATA (NOERROR, AA, no answer, the zone's
        SOA) for each empty non-terminal, and each out-of-bailiwick NS name has its address."""
        problems = []

        def expect(condition, text):
            if not condition:
                problems.append(text)

        def referral(address, zone, ns, glue):
            reply = ask(address, zone, TYPE_NS)
            where = f"@{address} {zone} NS"
            expect(reply["rcode"] == 0 and not reply["aa"], f"{where}: rcode {reply['rcode']} aa {reply['aa']}, want a referral")
            expect((zone, TYPE_NS, ns) in reply["authorities"], f"{where}: authority {reply['authorities']}, want NS {ns}")
            if glue:
                expect((ns, TYPE_A, glue) in reply["additionals"], f"{where}: additional {reply['additionals']}, want {ns} A {glue}")

        def answer(address, name, wanted):
            reply = ask(address, name, TYPE_A)
            expect(reply["aa"] and reply["answers"] == [(name, TYPE_A, wanted)],
                   f"@{address} {name} A: aa {reply['aa']} answers {reply['answers']}, want {wanted}")

        def nodata(address, name, zone):
            reply = ask(address, name, TYPE_A)
            expect(reply["rcode"] == 0 and reply["aa"] and not reply["answers"]
                   and [(owner, rtype) for owner, rtype, _ in reply["authorities"]] == [(zone, TYPE_SOA)],
                   f"@{address} {name} A: rcode {reply['rcode']} aa {reply['aa']} answers {reply['answers']} "
                   f"authority {reply['authorities']}, want NODATA with the SOA of {zone}")

        priming = ask(ROOT_ADDRESS, ".", TYPE_NS)
        expect(priming["aa"] and (".", TYPE_NS, ROOT_NS) in priming["answers"]
               and (ROOT_NS, TYPE_A, ROOT_ADDRESS) in priming["additionals"], f"@{ROOT_ADDRESS} . NS: {priming}")
        for tld, address in TLDS.items():
            referral(ROOT_ADDRESS, tld, f"ns1.{tld}", address)
        answer(TLDS["test."], ROOT_NS, ROOT_ADDRESS)
        for index, name, tld in leaf_zones():
            server = LEAF_SERVERS[index % len(LEAF_SERVERS)]
            host_index = out_of_bailiwick(index)
            if host_index is None:
                referral(TLDS[tld], name, f"ns1.{name}", server)
            else:
                host_zone = leaf_zones()[host_index][1]
                ns = f"ns-z{index:02d}.{host_zone}"
                referral(TLDS[tld], name, ns, None)
                answer(LEAF_SERVERS[host_index % len(LEAF_SERVERS)], ns, server)
            answer(server, host_name(name, 0, self.depth), address_of(index, 0))
            last = NAMES_PER_ZONE - 1
            answer(server, host_name(name, last, self.depth), address_of(index, last))
            for empty in between(name, self.depth):
                nodata(server, empty, name)
        if problems:
            raise RuntimeError("fake hierarchy is wrong:\n  " + "\n  ".join(problems[:10]))
