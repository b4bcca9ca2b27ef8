#!/usr/bin/env python3
"""Recursion scenarios against resolverd, Unbound and Knot Resolver: every Tests/Scenarios/*.scn
file (format at the top of Tests/FakeDNS/Scenario.swift) is served by `fake-dns --scenario` on a
random loopback /24 (127.R.S.N, port 53; a server `at ::1` on ::1), once for each resolver, fresh
each time, so each resolver starts from an empty cache and a cold hierarchy. Each resolver resolves
from host 1 as its only root hint; the scenario's questions are asked in order with dig, and
Unbound's and Knot Resolver's replies each compared with resolverd's section by section (rcode,
flags, answer, authority and additional sections without OPT, records compared without TTLs and in
any order), and every reply against the scenario's own `expect` lines (`expect silent N` cannot be
checked from outside: n/a). A table goes to stdout and, unless --no-write, to docs/scenarios.md,
with the differing sections verbatim below it.

Addresses of the scenario's /24 are shown as $N (host N), as in the scenario files, so runs on
different prefixes compare and read the same. Loopback only (127.0.0.0/8 and ::1); every process
started here (fake-dns, resolverd, unbound, kresd) is stopped, also on Ctrl-C and SIGTERM.

Usage: bench/scenarios.py [--only NAME...] [--output docs/scenarios.md] [--no-write]
       RESOLVERD_BUILD=release bench/scenarios.py   # .build/release/resolverd (default: debug)"""

import argparse
import collections
import datetime
import ipaddress
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import resolvers  # noqa: E402

ROOT = resolvers.ROOT
BUILD = os.environ.get("RESOLVERD_BUILD", "debug")
RESOLVERD = os.path.join(ROOT, f".build/{BUILD}/resolverd")
# fake-dns is a test tool, usually built in debug only: the same build as resolverd if there is one.
FAKE_DNS_CANDIDATES = [os.path.join(ROOT, f".build/{BUILD}/fake-dns"), os.path.join(ROOT, ".build/debug/fake-dns")]
UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
KRESD = shutil.which("kresd") or "/usr/sbin/kresd"
SCENARIO_DIR = os.path.join(ROOT, "Tests/Scenarios")
DEFAULT_OUTPUT = os.path.join(ROOT, "docs/scenarios.md")

BINARY_WAIT_S = 300      # a binary being rebuilt under us: wait this long for it to come back
FAKE_START_S = 20        # fake-dns to print `listening`
RESOLVER_START_S = 30    # resolverd / unbound / kresd to answer on their port
STOP_S = 5               # after SIGTERM, before SIGKILL
DIG_TIME_S = 12          # dig +time
DIG_DEADLINE_S = 40      # dig as a process, whatever happens
START_ATTEMPTS = 3

RESOLVERS = ["resolverd", "unbound", "knot-resolver"]
OTHERS = RESOLVERS[1:]  # each compared with resolverd
TITLES = {"resolverd": "resolverd", "unbound": "Unbound", "knot-resolver": "Knot Resolver"}
INITIALS = {"resolverd": "r", "unbound": "u", "knot-resolver": "k"}
SECTIONS = ["answer", "authority", "additional"]
FLAG_ORDER = ["qr", "aa", "tc", "rd", "ra", "ad", "cd"]
NAME_RDATA_TYPES = {"NS", "CNAME", "PTR", "DNAME", "SOA", "MX", "NSEC", "SRV"}

# Unbound's settings beyond resolvers.unbound_server(): (line, why). `{hints}` and `{localhost}`
# are filled in per run. Listed on the page as they are.
UNBOUND_SETTINGS = [
    ('root-hints: "{hints}"', "non-default: the scenario's host 1 as the only root (`. NS a.root.test.`, "
                              "`a.root.test. A 127.R.S.1`)"),
    ("do-not-query-localhost: {localhost}", "non-default `no` (the hierarchy is on loopback); the default `yes` "
                                            "for `noloopback` scenarios, as resolverd's `query_loopback = false`"),
    ('module-config: "iterator"', "non-default: no validator (resolverd does not validate)"),
    ('local-zone: "test." nodefault', "non-default: Unbound otherwise answers `test.` itself (RFC 6761 "
                                      "default local zone); the scenarios' names are all under `test.`"),
    ("qname-minimisation: yes", "default, as resolverd's `qname_minimisation = true`"),
    ("qname-minimisation-strict: no", "default"),
    ("do-ip6: yes", "default; aaaa-only-glue.scn serves `v6.test.` on ::1 only: Unbound reaches it with "
                    "no other setting (no `prefer-ip6`)"),
    ("harden-referral-path: no", "default"),
    ("harden-glue: yes", "default"),
    ("minimal-responses: yes", "default; `no` gave the same replies in a trial run of all scenarios"),
    ("prefetch: no", "default"),
    ("cache-max-ttl: 86400", "default, as resolverd's `max_ttl`"),
    ("cache-max-negative-ttl: 3600", "default, as resolverd's `max_negative_ttl`"),
    ("infra-host-ttl: 900", "default"),
]

# Knot Resolver's config: the lines resolvers.kresd_server() starts it with, then KRESD_SETTINGS;
# (line, why) each. `{prefix}`, `{directory}` and `{allow_local}` are filled in per run. Listed on
# the page as they are. kresd runs with KRESD_NO_LISTEN=1 in its environment (KRESD_ENV).
KRESD_SERVER_NOTES = [
    "`kresd_server()`: DNS over UDP and TCP on 127.0.0.1:PORT, and nothing else: kresd adds its "
    "default listeners (127.0.0.1 and ::1, ports 53 and 853) only when the config has none, and "
    "with `KRESD_NO_LISTEN=1` in its environment it opens no control socket (a Unix socket "
    "`TMPDIR/control/PID` otherwise)",
    "`kresd_server()`; non-default: no DNSSEC validation (resolverd does not validate). kresd "
    "loads the root trust anchor `/usr/share/dns/root.key` before the config runs; with no trust "
    "anchor every answer is insecure: nothing is validated (no `ad` flag in any reply below); RRSIGs "
    "asked for with DO are passed on",
]
KRESD_SETTINGS = [
    ("modules.load('hints')", "non-default: the module that sets root hints (not among kresd's default modules)"),
    ("hints.root({{['a.root.test.'] = '{prefix}1'}})",
     "non-default: the scenario's host 1 as the only root. `hints.root()` replaces the root hints; "
     "kresd reads its built-in ones (`/usr/share/dns/root.hints`) only when the config leaves them "
     "empty (postconfig.lua), so it never has another root"),
    ("policy.add(policy.suffix(policy.PASS, {{todname('test.')}}))",
     "non-default: kresd's `policy.special_names` answers every name under `test.` itself "
     "(NXDOMAIN, SOA and an `explanation.invalid.` TXT: RFC 6761), as Unbound's default local zone "
     "does; a rule in `policy.rules` that lets `test.` pass ends the policy walk before the special "
     "names are looked at. The scenarios' names are all under `test.`"),
    ("option('ALLOW_LOCAL', {allow_local})",
     "non-default `true` (the hierarchy is on loopback); the default `false` for `noloopback` "
     "scenarios. kresd 5.6.0 has no setting named like Unbound's do-not-query-localhost: this query "
     "flag (`kr_qflags`, \"allow queries to local or private address ranges\") is what "
     "`update_nsaddr()` in lib/layer/iterate.c checks. Without it, the addresses 0.0.0.0, "
     "127.0.0.0/8, `::` and `::1` (no private ranges) found in a reply being processed — glue in a "
     "referral, or the answer to kresd's own lookup of a nameserver's address — are not put in the "
     "zone cut (\"ignoring invalid glue\"). Not filtered: the configured root hints (host 1 is "
     "asked in loopback-nameservers too, as by resolverd; Unbound skips it there), and addresses of a delegation "
     "taken from the cache: the ignored glue is cached all the same, and a later question that finds "
     "the delegation in the cache queries it. In a trial run of loopback-nameservers, "
     "no question of the scenario's three reached $3 (kresd's log), and `www.example.test. A` asked again "
     "after them went to $3 and was answered NOERROR. The scenarios ask that question once only"),
    ("cache.open(100 * MB, 'lmdb://{directory}/cache')",
     "a new, empty cache in the run's temporary directory; 100 MB is kresd's size when no cache is "
     "configured"),
    ("cache.min_ttl(0)",
     "non-default (kresd's default is 5 s), as resolverd's `min_ttl` and Unbound's `cache-min-ttl` "
     "defaults: with 5 s, ttl-extremes' `zero.example.test.` (TTL 0) was answered with TTL 5 both "
     "times in a trial run"),
    ("cache.max_ttl(86400)", "default, as resolverd's `max_ttl` and Unbound's `cache-max-ttl`. kresd has "
                             "no separate limit for negative answers (resolverd's `max_negative_ttl`, "
                             "Unbound's `cache-max-negative-ttl`, both 3600); no record of a negative "
                             "answer in the scenarios has a TTL above 3600"),
    ("option('NO_MINIMIZE', false)", "default: QNAME minimisation on, as resolverd's `qname_minimisation = true`"),
    ("net.ipv6 = true", "default; aaaa-only-glue.scn serves `v6.test.` on ::1 only"),
]
KRESD_ENV = {"KRESD_NO_LISTEN": "1"}


class StartError(Exception):
    """A process that did not come up; the message carries its output's end."""


# MARK: scenario files


class Query:
    def __init__(self, name, qtype, do, line):
        self.name, self.qtype, self.do, self.line = name, qtype, do, line
        self.expectations = []  # (kind, value)

    def label(self):
        return f"{self.name} {self.qtype}" + (" +do" if self.do else "")


class Scenario:
    """What this script needs from a .scn file: its questions, their expectations, noloopback."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-len(".scn")]
        self.queries = []
        self.noloopback = False
        self.comment = []
        with open(path) as f:
            lines = f.read().split("\n")
        opening = True  # the comment lines the file starts with describe it
        for number, raw in enumerate(lines, 1):
            opening = opening and raw.startswith("#")
            if opening:
                self.comment.append(raw.lstrip("#").strip())
            words = raw.split("#", 1)[0].split()
            if not words:
                continue
            keyword = words[0].lower()
            if keyword == "noloopback":
                self.noloopback = True
            elif keyword == "query":
                self.queries.append(Query(words[1], words[2].upper(), "do" in words[3:], number))
            elif keyword == "expect":
                self._expect(words[1], words[2:], number)
        self.comment = " ".join(self.comment)

    def _expect(self, kind, rest, number):
        if not self.queries:
            raise ValueError(f"{self.path}:{number}: expect before any query")
        query = self.queries[-1]
        if kind == "answer":
            records = [] if rest == ["none"] else [record_key(" ".join(rest))]
            # Several `expect answer` lines make one answer section.
            if query.expectations and query.expectations[-1][0] == "answer":
                records = query.expectations.pop()[1] + records
            query.expectations.append(("answer", records))
        elif kind == "rcode":
            query.expectations.append(("rcode", rest[0].upper()))
        elif kind == "authority":
            query.expectations.append(("authority", [] if rest == ["none"] else [t.upper() for t in rest]))
        elif kind in ("ttl<=", "ttl>=", "within-ms", "silent"):
            query.expectations.append((kind, int(rest[0])))
        else:
            raise ValueError(f"{self.path}:{number}: unknown expectation '{kind}'")


# MARK: records and replies


def split_record(text):
    """(name, ttl or None, class, type, rdata) of a record in presentation form."""
    words = text.split()
    name, rest = words[0], words[1:]
    ttl = None
    if rest and rest[0].isdigit():
        ttl, rest = int(rest[0]), rest[1:]
    rclass = "IN"
    if rest and rest[0].upper() in ("IN", "CH", "HS", "CS"):
        rclass, rest = rest[0].upper(), rest[1:]
    return name, ttl, rclass, rest[0].upper(), rest[1:]


def record_key(text):
    """A record without its TTL, in one spelling: owner lowercased, addresses in their canonical
    form, names in the rdata lowercased (for the types that carry names)."""
    name, _, rclass, rtype, rdata = split_record(text)
    if rtype in ("A", "AAAA") and len(rdata) == 1 and not rdata[0].startswith("$"):
        try:
            rdata = [str(ipaddress.ip_address(rdata[0]))]
        except ValueError:
            pass
    elif rtype in NAME_RDATA_TYPES:
        rdata = [w.lower() for w in rdata]
    return " ".join([name.lower(), rclass, rtype] + rdata)


class Reply:
    """One resolver's reply to one question, as dig showed it (None fields: no reply)."""

    def __init__(self):
        self.rcode = None
        self.flags = []
        self.sections = {s: [] for s in SECTIONS}  # [record text, TTL included]
        self.ms = None  # dig's query time
        self.waited_ms = None  # dig's run, start to end (shown when there is no reply)
        self.error = None  # why there is no reply

    def ok(self):
        return self.rcode is not None

    def status(self):
        if not self.ok():
            return self.error or "no reply"
        return f"{self.rcode} {' '.join(self.flags)}".strip()

    def ttls(self, sections=("answer", "authority")):
        return [split_record(r)[1] for s in sections for r in self.sections[s]]

    def max_ttl(self):
        ttls = self.ttls()
        return max(ttls) if ttls else None

    def keys(self, section):
        return collections.Counter(record_key(r) for r in self.sections[section])


def parse_dig(output, prefix):
    """The reply in dig's output; addresses of the scenario's /24 written as $N."""
    reply = Reply()
    address = re.compile(r"(?<![\d.])" + re.escape(prefix) + r"(\d{1,3})(?![\d.])")
    section = None
    for line in output.splitlines():
        header = re.match(r";; ->>HEADER<<- opcode: \S+, status: (\S+), id:", line)
        if header:
            reply.rcode = header.group(1)
            continue
        flags = re.match(r";; flags:([^;]*);", line)
        if flags:
            present = flags.group(1).split()
            reply.flags = [f for f in FLAG_ORDER if f in present] + [f for f in present if f not in FLAG_ORDER]
            continue
        heading = re.match(r";; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:", line)
        if heading:
            section = heading.group(1).lower()
            continue
        took = re.match(r";; Query time: (\d+) msec", line)
        if took:
            reply.ms = int(took.group(1))
            continue
        if not line.strip():
            section = None
            continue
        if section and not line.startswith(";"):
            reply.sections[section].append(address.sub(r"$\1", " ".join(line.split())))
    if reply.rcode is None:
        lines = [l.strip(" ;") for l in output.splitlines() if l.strip(" ;")]
        if "timed out" in output:
            reply.error = f"no reply in {DIG_TIME_S} s"
        else:
            reply.error = "no reply" + (f" (dig: {lines[-1]})" if lines else "")
    return reply


def ask(port, query, prefix):
    command = ["dig", "@127.0.0.1", "-p", str(port), query.name, query.qtype, "+tries=1", f"+time={DIG_TIME_S}"]
    if query.do:
        command.append("+dnssec")
    began = time.monotonic()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DIG_DEADLINE_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        reply = Reply()
        reply.error = f"no reply (dig still running after {DIG_DEADLINE_S} s)"
    else:
        reply = parse_dig(done.stdout + done.stderr, prefix)
    reply.waited_ms = round((time.monotonic() - began) * 1000)
    return reply


# MARK: processes


def wait_for_binary(candidates):
    """The first of `candidates` that exists and is executable, waiting for a rebuild to put one back."""
    deadline = time.monotonic() + BINARY_WAIT_S
    while True:
        for path in candidates:
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        if time.monotonic() > deadline:
            raise StartError(f"none of {candidates} is there (waited {BINARY_WAIT_S} s)")
        time.sleep(1)


def popen(command, **kwargs):
    """Popen, retried while the binary is being replaced (ETXTBSY, briefly missing)."""
    deadline = time.monotonic() + BINARY_WAIT_S
    while True:
        try:
            return subprocess.Popen(command, stdin=subprocess.DEVNULL, **kwargs)
        except OSError as error:
            if time.monotonic() > deadline:
                raise StartError(f"{command[0]}: {error}") from error
            time.sleep(1)


def stop(process):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_S)


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip() or "(empty)"
    except OSError as error:
        return f"({error})"


def random_prefix():
    """127.R.S. with nothing bound to host 1's port 53 (a UDP bind without SO_REUSEADDR fails
    where a server already listens)."""
    for _ in range(50):
        prefix = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}."
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((prefix + "1", 53))
                return prefix
            except OSError:
                continue
    raise StartError("no free 127.R.S.1:53 found")


def free_port():
    try:
        return resolvers.free_port()
    except OSError as error:
        raise StartError(str(error)) from error


class FakeDNS:
    """`fake-dns --scenario FILE --prefix 127.R.S.`, up once it has printed `listening ...`."""

    def __init__(self, scenario, prefix, directory):
        self.scenario, self.prefix, self.directory = scenario, prefix, directory
        self.process = None

    def start(self):
        binary = wait_for_binary(FAKE_DNS_CANDIDATES)
        log = os.path.join(self.directory, "fake-dns.stderr")
        with open(log, "w") as err:
            self.process = popen([binary, "--scenario", self.scenario.path, "--prefix", self.prefix],
                                 stdout=subprocess.PIPE, stderr=err)
        deadline = time.monotonic() + FAKE_START_S
        seen = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if readable:
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    break  # it exited
                seen += chunk
                if b"\n" in seen:
                    line = seen.split(b"\n", 1)[0].decode(errors="replace")
                    if line.startswith("listening"):
                        return line
                    break
            elif self.process.poll() is not None:
                break
        self.stop()
        raise StartError(f"fake-dns did not start ({seen.decode(errors='replace').strip()!r}):\n{tail(log)}")

    def stop(self):
        try:
            stop(self.process)
        finally:
            if self.process and self.process.stdout:
                self.process.stdout.close()


class ResolverRun:
    """resolverd, Unbound or Knot Resolver, resolving from 127.R.S.1 only, on a free port of 127.0.0.1."""

    def __init__(self, kind, prefix, noloopback, directory):
        self.kind, self.prefix, self.noloopback, self.directory = kind, prefix, noloopback, directory
        self.port = free_port()
        self.process = None
        self.log = os.path.join(directory, f"{kind}.log")

    def command(self):
        if self.kind == "resolverd":
            config = os.path.join(self.directory, "resolverd.toml")
            with open(config, "w") as f:
                f.write(resolverd_config(self.port, self.prefix, self.noloopback, self.directory))
            return [wait_for_binary([RESOLVERD]), "--config", config]
        if self.kind == "unbound":
            hints = os.path.join(self.directory, "root.hints")
            with open(hints, "w") as f:
                f.write(f". 3600000 NS a.root.test.\na.root.test. 3600000 A {self.prefix}1\n")
            config = os.path.join(self.directory, "unbound.conf")
            with open(config, "w") as f:
                f.write(unbound_config(self.port, self.directory, hints, self.noloopback))
            return [UNBOUND, "-d", "-c", config]
        config = os.path.join(self.directory, "kresd.conf")
        with open(config, "w") as f:
            f.write(kresd_config(self.port, self.prefix, self.noloopback, self.directory))
        return [KRESD] + resolvers.kresd_command(config, self.directory)[1:]

    def start(self):
        command = self.command()
        env = dict(os.environ, **KRESD_ENV) if self.kind == "knot-resolver" else None
        with open(self.log, "w") as log:
            self.process = popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + RESOLVER_START_S
        while time.monotonic() < deadline and self.process.poll() is None:
            if resolvers.wait_for_udp(self.port, deadline_s=0.5):
                return self
        exited = self.process.poll()
        self.stop()
        state = f"exited with status {exited}" if exited is not None else f"not answering after {RESOLVER_START_S} s"
        raise StartError(f"{self.kind} did not start ({state}); its output's end:\n{tail(self.log)}")

    def stop(self):
        stop(self.process)


def resolverd_config(port, prefix, noloopback, directory):
    return (f'[server]\nlisten = ["127.0.0.1:{port}"]\nthreads = 1\n\n'
            f'[api]\nlisten = "127.0.0.1:0"\n\n'
            f'[log]\nlevel = "warning"\n\n'
            f'[registry]\npath = "{directory}/registry.sqlite"\n\n'
            f'[resolver]\nmode = "recursive"\nroot_hints = ["{prefix}1"]\n'
            f'query_loopback = {"false" if noloopback else "true"}\ntimeout_ms = 3000\n')


def unbound_config(port, directory, hints, noloopback):
    values = {"hints": hints, "localhost": "yes" if noloopback else "no"}
    return resolvers.unbound_server(port, directory) + "".join(
        "  " + line.format(**values) + "\n" for line, _ in UNBOUND_SETTINGS)


def kresd_config(port, prefix, noloopback, directory):
    values = {"prefix": prefix, "directory": directory, "allow_local": "false" if noloopback else "true"}
    return resolvers.kresd_server(port) + "".join(line.format(**values) + "\n" for line, _ in KRESD_SETTINGS)


def run_one(kind, scenario):
    """Asks every question of `scenario` of a fresh `kind` over a fresh fake-dns: a list of
    Reply, or a StartError's text."""
    directory = tempfile.mkdtemp(prefix=f"scenario-{kind}-")
    fake = None
    resolver = None
    try:
        last_error = None
        for _ in range(START_ATTEMPTS):  # ::1:53 may be taken for a moment by another run
            prefix = random_prefix()
            fake = FakeDNS(scenario, prefix, directory)
            try:
                fake.start()
                break
            except StartError as error:
                last_error, fake = error, None
                time.sleep(1)
        if fake is None:
            raise last_error
        resolver = ResolverRun(kind, prefix, scenario.noloopback, directory).start()
        return [ask(resolver.port, query, prefix) for query in scenario.queries]
    except StartError as error:
        return str(error)
    finally:
        try:
            if resolver:
                resolver.stop()
        finally:
            if fake:
                fake.stop()
            shutil.rmtree(directory, ignore_errors=True)


# MARK: comparison


def expectation_failures(query, reply):
    """(failures, not checkable): what in `reply` breaks the query's expectations, as (kind, text),
    and the expectations that cannot be checked from outside."""
    failures, unchecked = [], []
    for kind, value in query.expectations:
        if kind == "silent":
            unchecked.append(f"silent {value}")
            continue
        if not reply.ok():
            wanted = " ".join(value) if isinstance(value, list) else str(value)
            failures.append(("no reply", f"{reply.status()}, expected {kind} {wanted or 'none'}"))
            continue
        ttls = reply.ttls()
        if kind == "rcode" and reply.rcode != value:
            failures.append((kind, f"rcode {reply.rcode}, expected {value}"))
        elif kind == "answer" and collections.Counter(value) != reply.keys("answer"):
            got = "; ".join(reply.sections["answer"]) or "none"
            failures.append((kind, f"answer {got}, expected {'; '.join(value) or 'none'}"))
        elif kind == "authority":
            types = [split_record(r)[3] for r in reply.sections["authority"]]
            if types != value:
                failures.append((kind, f"authority types {' '.join(types) or 'none'}, "
                                       f"expected {' '.join(value) or 'none'}"))
        elif kind == "ttl<=" and any(t > value for t in ttls):
            failures.append((kind, f"TTLs {ttls}, expected none above {value}"))
        elif kind == "ttl>=" and any(t < value for t in ttls):
            failures.append((kind, f"TTLs {ttls}, expected none below {value}"))
        elif kind == "within-ms" and (reply.ms is None or reply.ms >= value):
            failures.append((kind, f"took {reply.ms} ms, expected under {value}"))
    return failures, unchecked


def differences(a, b):
    """What differs between two replies: 'rcode', 'flags' and section names."""
    if not a.ok() or not b.ok():
        return [] if (not a.ok() and not b.ok()) else ["reply"]
    out = []
    if a.rcode != b.rcode:
        out.append("rcode")
    if a.flags != b.flags:
        out.append("flags")
    out += [s for s in SECTIONS if a.keys(s) != b.keys(s)]
    return out


class Row:
    def __init__(self, index, query, replies):
        self.index, self.query, self.replies = index, query, replies  # replies: kind -> Reply
        # What differs from resolverd's reply, for each of the others.
        self.diff = {kind: differences(replies["resolverd"], replies[kind]) for kind in OTHERS}
        # resolverd the odd one out: it differs from both, and they agree with each other.
        self.resolverd_alone = (all(self.diff.values())
                                and not differences(*(replies[kind] for kind in OTHERS)))
        self.failures = {}
        self.unchecked = []
        for kind in RESOLVERS:
            self.failures[kind], self.unchecked = expectation_failures(query, replies[kind])

    def differs(self):
        return any(self.diff.values())

    def expect_cell(self, kind):
        if not self.query.expectations:
            return "—"
        if self.failures[kind]:
            kinds = list(dict.fromkeys(k for k, _ in self.failures[kind]))
            return "**no**: " + ", ".join(kinds)
        return "yes" + (f" ({', '.join(self.unchecked)}: n/a)" if self.unchecked else "")

    def same_cell(self, kind):
        return "same" if not self.diff[kind] else "**differ**: " + ", ".join(self.diff[kind])

    def max_ttls(self, sep=" / "):
        return sep.join(fmt_ttl(self.replies[kind].max_ttl()) for kind in RESOLVERS)

    def times(self, sep=" / "):
        return sep.join(fmt_ms(self.replies[kind]) for kind in RESOLVERS)


def not_started_reply():
    reply = Reply()
    reply.error = "not started"
    return reply


def compare(scenario, results):
    """Rows for a scenario from {kind: [Reply] or error text}."""
    rows = []
    for index, query in enumerate(scenario.queries):
        replies = {kind: (results[kind][index] if isinstance(results[kind], list) else not_started_reply())
                   for kind in RESOLVERS}
        rows.append(Row(index + 1, query, replies))
    return rows


# MARK: output


def fmt_ms(reply):
    if reply.ms is not None:
        return str(reply.ms)
    return f"({reply.waited_ms})" if reply.waited_ms is not None else "—"


def fmt_ttl(ttl):
    return "—" if ttl is None else str(ttl)


def text_table(scenario, rows, results):
    out = [f"== {scenario.name}" + (" (noloopback)" if scenario.noloopback else "")]
    for kind in RESOLVERS:
        if not isinstance(results[kind], list):
            out.append(f"   {kind} did not run: {results[kind]}")
    initials = "/".join(INITIALS[kind] for kind in RESOLVERS)
    header = (["#", "query"] + RESOLVERS + [f"{INITIALS[kind]} vs r" for kind in OTHERS]
              + [f"maxTTL {initials}", f"ms {initials}"] + [f"expect {INITIALS[kind]}" for kind in RESOLVERS])
    body = []
    for row in rows:
        body.append([str(row.index), row.query.label()] + [row.replies[kind].status() for kind in RESOLVERS]
                    + [row.same_cell(kind).replace("**", "") for kind in OTHERS]
                    + [row.max_ttls("/"), row.times("/")]
                    + [row.expect_cell(kind).replace("**", "") for kind in RESOLVERS])
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    for line in [header] + body:
        out.append("   " + "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    for row in rows:
        if row.resolverd_alone:
            out.append(f"   #{row.index}: resolverd alone ({' and '.join(OTHERS)} agree)")
        for kind in RESOLVERS:
            for _, failure in row.failures[kind]:
                out.append(f"   #{row.index} {kind} fails: {failure}")
    return "\n".join(out)


def md_cell(text):
    return text.replace("|", "\\|")


def md_section(rows, scenario, results):
    out = [f"### {scenario.name}", ""]
    if scenario.comment:
        out += [f"*{scenario.comment}*", ""]
    if scenario.noloopback:
        out += ["`noloopback`: resolverd `query_loopback = false`, Unbound `do-not-query-localhost: yes`, "
                "Knot Resolver `option('ALLOW_LOCAL', false)` (the defaults).", ""]
    for kind in RESOLVERS:
        if not isinstance(results[kind], list):
            out += [f"**{TITLES[kind]} did not run:**", "", "```", results[kind], "```", ""]
    titles = [TITLES[kind] for kind in RESOLVERS]
    initials = " / ".join(INITIALS[kind] for kind in RESOLVERS)
    header = (["#", "query"] + titles + [f"sections vs resolverd: {TITLES[OTHERS[0]]}"]
              + [TITLES[kind] for kind in OTHERS[1:]] + [f"max TTL {initials}", f"ms {initials}"]
              + [f"expectations: {titles[0]}"] + titles[1:])
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = ([str(row.index), f"`{row.query.label()}`"] + [row.replies[kind].status() for kind in RESOLVERS]
                 + [row.same_cell(kind) for kind in OTHERS] + [row.max_ttls(), row.times()]
                 + [row.expect_cell(kind) for kind in RESOLVERS])
        out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    out.append("")
    for row in rows:
        out += md_details(row)
    return out


def ttl_differs(row, kind):
    r, other = row.replies["resolverd"].max_ttl(), row.replies[kind].max_ttl()
    return None not in (r, other) and r != other


def md_details(row):
    """The facts under the table for one question: the sections that differ from resolverd's,
    verbatim, for all three (and answer and authority when only their TTLs differ), and the
    expectations not met."""
    replies = row.replies
    ttls_differ = [kind for kind in OTHERS if ttl_differs(row, kind)]
    out = []
    if row.differs() or ttls_differ:
        what = [f"{TITLES[kind]} differs: {', '.join(row.diff[kind])}" for kind in OTHERS if row.diff[kind]]
        if ttls_differ:
            what.append(f"max TTL {row.max_ttls()}")
        if row.resolverd_alone:
            what.append(" and ".join(TITLES[kind] for kind in OTHERS) + " agree")
        width = max(len(TITLES[kind]) for kind in RESOLVERS) + 1
        out += [f"**#{row.index} `{row.query.label()}`**: {'; '.join(what)}", "", "```"]
        out += [f"{TITLES[kind] + ':':<{width}} {replies[kind].status()}" for kind in RESOLVERS]
        differing = {s for kind in OTHERS for s in row.diff[kind]}
        shown = [s for s in SECTIONS if s in differing]
        if ttls_differ:
            shown = [s for s in SECTIONS if s in differing or (s != "additional" and any(
                replies[kind].sections[s] for kind in RESOLVERS))]
        for section in shown:
            for kind in RESOLVERS:
                if not replies[kind].ok():
                    continue
                records = replies[kind].sections[section]
                out.append(f"{TITLES[kind]} {section}:" + ("" if records else " (empty)"))
                out += [f"  {record}" for record in records]
        if all(replies[kind].ok() for kind in RESOLVERS):
            same = [s for s in SECTIONS if s not in shown]
            counts = {s: len(replies["resolverd"].sections[s]) for s in same}
            if same:
                out.append("the same in all three: " + ", ".join(
                    f"{s} ({counts[s]} record{'' if counts[s] == 1 else 's'})" for s in same))
        out += ["```", ""]
    for kind in RESOLVERS:
        for _, failure in row.failures[kind]:
            out.append(f"- #{row.index} `{row.query.label()}`: {TITLES[kind]} does not meet the expectation: {failure}")
    if any(row.failures[kind] for kind in RESOLVERS):
        out.append("")
    return out


def unbound_version():
    try:
        done = subprocess.run([UNBOUND, "-V"], capture_output=True, text=True, timeout=10)
        return "Unbound " + done.stdout.splitlines()[0].strip().replace("Version ", "")
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown version"


def kresd_version():
    try:
        done = subprocess.run([KRESD, "--version"], capture_output=True, text=True, timeout=10)
        return done.stdout.splitlines()[0].strip().replace(", version", "")
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "Knot Resolver, unknown version"


def resolverd_revision():
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        head = ""
    try:
        built = datetime.datetime.fromtimestamp(os.path.getmtime(RESOLVERD), datetime.timezone.utc)
        built = built.strftime("%Y-%m-%d %H:%M UTC")
    except OSError:
        built = "?"
    return head, built


# Under Knot Resolver's settings table: what runs besides the config, and what is not comparable.
KRESD_NOTES = """
kresd's default modules stay loaded. Two of them query the root as soon as kresd starts, in the
background and next to the first client question: `priming` (`. NS`, then the A and AAAA records
of each root server name; the addresses it gets replace the root hints) and `detect_time_skew`
(`. NS` with DO and CD, to compare RRSIG times with the clock).
"""


def markdown(scenario_rows, argv_note):
    head, built = resolverd_revision()
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = ["# Recursion scenarios: resolverd, Unbound and Knot Resolver", "",
           "`Tests/Scenarios/*.scn` are recursion scenarios: each is a small DNS hierarchy of scripted "
           "authoritative servers on loopback (zone data, plus scripted replies for chosen questions: "
           "non-authoritative answers, referrals to the server itself, FORMERR to EDNS, dropped queries, …), "
           "the client questions to ask a resolver resolving from that hierarchy's root, and what each reply "
           "must be (`expect` lines). The format is described at the top of `Tests/FakeDNS/Scenario.swift`; "
           "`Tests/IntegrationTests/ScenarioTests.swift` runs them against resolverd.", "",
           "This page asks the same questions of resolverd, Unbound and Knot Resolver and compares Unbound's "
           "and Knot Resolver's replies with resolverd's. It is generated by", "",
           "```", "python3 bench/scenarios.py" + argv_note, "```", "",
           f"(run {today}; resolverd `.build/{BUILD}/resolverd`, commit {head or '?'} of the tree, built {built}; "
           f"{unbound_version()}; {kresd_version()}; dig {dig_version()}).", "",
           "## How", "",
           "- Each scenario is served by `fake-dns --scenario FILE --prefix 127.R.S.` on a random /24 "
           "`127.R.S.0/24` (R 100–199), port 53 (`server 5 at ::1` in aaaa-only-glue on `[::1]:53`); a fresh "
           "fake-dns for each resolver, so each starts from an empty cache and a hierarchy that has been asked "
           "nothing. Addresses in that /24 are written `$N` (host N) below, as in the scenario files.",
           "- The questions are asked in the file's order with "
           f"`dig @127.0.0.1 -p PORT NAME TYPE +tries=1 +time={DIG_TIME_S}` (`+dnssec` for `query … do`). "
           "Milliseconds are dig's `Query time`; in parentheses, for a question left without a reply, "
           "how long dig waited.",
           "- **sections vs resolverd**: Unbound's reply and Knot Resolver's reply, each compared with "
           "resolverd's: rcode, flags (qr aa tc rd ra ad cd) and the answer, authority and additional "
           "sections (OPT left out); records compared without TTLs and in any order. "
           "**max TTL** is the largest TTL of the answer and authority sections (r / u / k: resolverd / "
           "Unbound / Knot Resolver). **resolverd alone**: Unbound's and Knot Resolver's replies are the same "
           "(compared as above) and resolverd's differs.",
           "- **expectations**: the scenario's `expect` lines checked against each resolver's reply: rcode; "
           "answer records (no TTLs, any order); authority section types, in order; `ttl<=`/`ttl>=` over the "
           "answer and authority TTLs; `within-ms` against dig's query time. `expect silent N` (a server "
           "never asked) cannot be seen from outside the fake servers: n/a here (the Swift test checks it).",
           "",
           "resolverd runs with:", "", "```toml",
           resolverd_config("PORT", "127.R.S.", False, "TMPDIR").rstrip().replace(
               "query_loopback = true", "query_loopback = true       # false for `noloopback` scenarios"),
           "```", "",
           "Unbound (`unbound -d -c FILE`) with the `server:` lines every bench script uses "
           "(`bench/resolvers.py` `unbound_server()`: foreground, `num-threads: 1`, `interface: 127.0.0.1@PORT`, "
           "`access-control: 127.0.0.0/8 allow`, `verbosity: 0`, no chroot or user change) and:", "",
           "| setting | |", "|---|---|"]
    for line, why in UNBOUND_SETTINGS:
        shown = line.format(hints="TMPDIR/root.hints", localhost="no")
        out.append(f"| `{md_cell(shown)}` | {md_cell(why)} |")
    out += ["",
            "Knot Resolver (`kresd -n -q -c FILE TMPDIR`, as the other bench scripts start it: "
            "`bench/resolvers.py` `kresd_command()`; one process in the foreground, no prompt, its working "
            "directory the run's temporary directory; here with `KRESD_NO_LISTEN=1` in its environment; "
            "kresd's default logging, to stderr) with this config, line by line:", "",
            "| setting | |", "|---|---|"]
    server_lines = resolvers.kresd_server("PORT").splitlines()
    assert len(server_lines) == len(KRESD_SERVER_NOTES)
    shown = list(zip(server_lines, KRESD_SERVER_NOTES)) + [
        (line.format(prefix="127.R.S.", directory="TMPDIR", allow_local="true"), why) for line, why in KRESD_SETTINGS]
    for line, why in shown:
        out.append(f"| `{md_cell(line)}` | {md_cell(why)} |")
    out += ["", " ".join(KRESD_NOTES.split()), ""]
    out.append("Settings written with their default value are there to make the comparison's conditions explicit.")
    out.append("")

    total = sum(len(rows) for _, rows, _ in scenario_rows)
    all_rows = [r for _, rows, _ in scenario_rows for r in rows]
    differing = {kind: sum(1 for r in all_rows if r.diff[kind]) for kind in OTHERS}
    alone = sum(1 for r in all_rows if r.resolverd_alone)
    failing = {kind: sum(1 for r in all_rows if r.failures[kind]) for kind in RESOLVERS}
    out += ["## Summary", "",
            f"{len(scenario_rows)} scenarios, {total} questions. Replies that differ from resolverd's: "
            + ", ".join(f"{TITLES[kind]} {differing[kind]}" for kind in OTHERS)
            + f". resolverd alone (Unbound's and Knot Resolver's replies the same, resolverd's not): {alone}. "
            "Expectations not met: " + ", ".join(f"{TITLES[kind]} {failing[kind]}" for kind in RESOLVERS) + ".", ""]
    out += ["| scenario | questions | replies differing from resolverd's: Unbound | Knot Resolver "
            "| resolverd alone | max TTL differing: Unbound | Knot Resolver | expectations not met: resolverd "
            "| Unbound | Knot Resolver |", "|" + "---|" * 10]
    for scenario, rows, _ in scenario_rows:
        cells = [f"[{scenario.name}](#{scenario.name})", str(len(rows))]
        cells += [", ".join(f"#{r.index} ({', '.join(r.diff[kind])})" for r in rows if r.diff[kind]) or "—"
                  for kind in OTHERS]
        cells.append(", ".join(f"#{r.index}" for r in rows if r.resolverd_alone) or "—")
        cells += [", ".join(f"#{r.index}" for r in rows if ttl_differs(r, kind)) or "—" for kind in OTHERS]
        cells += [", ".join(f"#{r.index}" for r in rows if r.failures[kind]) or "—" for kind in RESOLVERS]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", DEPARTURES.rstrip(), ""]
    out += ["", "## Scenarios", ""]
    for scenario, rows, results in scenario_rows:
        out += md_section(rows, scenario, results)
    return "\n".join(out).rstrip() + "\n"


# Where resolverd decides differently from Unbound, on purpose (written by hand: the tables above
# and below are what was measured; this says why the differences are there). The Knot Resolver
# bullets: where kresd answers as Unbound does and resolverd differs, facts only.
DEPARTURES = """
## Where resolverd departs from Unbound, and why

- **A referral to the zone itself, or only another zone's data, is lame** (lame-self-referral).
  Unbound's `response_type_from_server` (iterator/iter_resptype.c) takes an NS set for the zone
  it asked as an answer ("FIXME: is this correct?") and returns an empty NOERROR; an answer
  section with only out-of-zone records is scrubbed to an empty NOERROR too. resolverd counts
  both as a lame server — it asks the zone's next server, and with none left the client gets
  SERVFAIL, not a NODATA that is not true: the server did not say the name has no AAAA records.
- **Configured root hints are always queried** (loopback-nameservers #1). Unbound's
  `do-not-query-localhost: yes` also skips a root hint on 127.0.0.0/8 ("skip addr on the
  donotquery list", then "could not prime root"), so a resolver pointed at a local root answers
  nothing. resolverd applies the rule to addresses learned from the network only (glue and
  looked-up addresses), which is what the rule protects against; configured hints and forward
  servers are the operator's own choice.
- **Priming never blocks answers** (priming-silent). With a root that never answers the priming
  query, Unbound leaves every client question unanswered (still none after 40 s); resolverd
  primes in the background with back-off and resolves from the hints meanwhile (RFC 8109 §3
  allows using the hints when priming fails).
- **Proof records' TTLs are capped at the negative TTL** (negative-authority #1, #3). Unbound
  passes the NSEC and RRSIG records on with their own TTLs (3600 here) while the SOA gets
  min(SOA TTL, MINIMUM); resolverd caps every record of a negative answer at that TTL, as
  RFC 9077 §3 asks of the NSEC/NSEC3 records that prove a negative answer, so a client never
  keeps a proof longer than the answer it proves.
- **No additional section on a `. NS` answer** (nonaa-answers #1): resolverd sends minimal
  answers; Unbound adds the root servers' addresses it holds. Same answer section.
- **Knot Resolver, as Unbound, takes an AA reply without the records asked for as an answer**
  (lame-self-referral #2, #4). In kresd's iterator (lib/layer/iterate.c), an NS set for the zone
  it asked is no referral, and a reply with AA is authoritative (`is_authoritative()`): NOERROR
  with an empty answer, in #2 with that NS set in the authority section, in #4 without the record
  for another name. Without AA (#3) the reply is a "lame response: non-auth sent negative
  response" and the client gets SERVFAIL, as from resolverd.
- **Knot Resolver, as Unbound, passes proof records on with their own TTLs** (negative-authority
  #1, #3): the NSEC and RRSIG records reach the client with TTL 3600.
"""


def dig_version():
    try:
        done = subprocess.run(["dig", "-v"], capture_output=True, text=True, timeout=10)
        return (done.stderr or done.stdout).strip().replace("DiG ", "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# MARK: main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="scenario names (file names, .scn optional)")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="the page to write (default docs/scenarios.md)")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs the finally blocks
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background

    paths = sorted(os.path.join(SCENARIO_DIR, f) for f in os.listdir(SCENARIO_DIR) if f.endswith(".scn"))
    if args.only:
        wanted = {n[:-4] if n.endswith(".scn") else n for n in (os.path.basename(n) for n in args.only)}
        unknown = wanted - {os.path.basename(p)[:-4] for p in paths}
        if unknown:
            parser.error(f"no such scenario: {', '.join(sorted(unknown))}")
        paths = [p for p in paths if os.path.basename(p)[:-4] in wanted]
    if not shutil.which("dig"):
        sys.exit("dig is not installed")
    if not os.path.exists(UNBOUND):
        sys.exit(f"unbound is not installed ({UNBOUND})")
    if not os.path.exists(KRESD):
        sys.exit(f"kresd is not installed ({KRESD})")

    scenario_rows = []
    began = time.monotonic()
    for path in paths:
        scenario = Scenario(path)
        results = {}
        for kind in RESOLVERS:
            print(f"-- {scenario.name}: {kind} …", file=sys.stderr, flush=True)
            results[kind] = run_one(kind, scenario)
            if not isinstance(results[kind], list):
                print(results[kind], file=sys.stderr, flush=True)
        rows = compare(scenario, results)
        scenario_rows.append((scenario, rows, results))
        print(text_table(scenario, rows, results), flush=True)
        print(flush=True)
    print(f"{len(scenario_rows)} scenarios in {time.monotonic() - began:.0f} s", file=sys.stderr)

    if not args.no_write:
        note = ""
        if args.only:
            note = " --only " + " ".join(args.only)
        if os.path.abspath(args.output) != DEFAULT_OUTPUT:
            note += f" --output {args.output}"
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
        with open(args.output, "w") as f:
            f.write(markdown(scenario_rows, note))
        print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
