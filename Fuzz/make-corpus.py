#!/usr/bin/env python3
# Fuzz/make-corpus.py: writes the seed corpora under Fuzz/corpus/<target>/. DNS queries and
# responses are assembled byte by byte (struct, not the code under test), shaped like real
# traffic: EDNS with options, compression pointers, every section, CNAME/DNAME chains,
# referrals with glue, negative answers with SOA, DNSSEC records. Config seeds are the shipped
# config/resolverd.toml and variants; JSON seeds are API bodies and the registry feed's records.
# Re-run after changing it: `python3 Fuzz/make-corpus.py` (deterministic; files are replaced).

import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(ROOT, "corpus")

# Record types and classes (RFC 1035, 3596, 2782, 4034, 6672, 6891, 8659, 9460).
A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, DNAME, OPT = 1, 2, 5, 6, 12, 15, 16, 28, 33, 39, 41
DS, RRSIG, NSEC, DNSKEY, HTTPS, CAA, AXFR, ANY = 43, 46, 47, 48, 65, 257, 252, 255
IN, CH = 1, 3
QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010


def name(text):
    """Uncompressed wire form of a dotted name."""
    out = b""
    for label in text.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def ptr(offset):
    """A compression pointer (RFC 1035 §4.1.4)."""
    return struct.pack("!H", 0xC000 | offset)


def header(ident, flags, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def question(owner, qtype, qclass=IN):
    return owner + struct.pack("!HH", qtype, qclass)


def rr(owner, rtype, rdata, ttl=300, rclass=IN):
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def opt(size=1232, ext_rcode=0, version=0, do=False, options=b""):
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return b"\x00" + struct.pack("!HHIH", OPT, size, ttl, len(options)) + options


def edns_option(code, data):
    return struct.pack("!HH", code, len(data)) + data


def ipv4(text):
    return bytes(int(part) for part in text.split("."))


def soa_rdata(mname, rname, serial=2024010101, refresh=7200, retry=3600, expire=1209600, minimum=300):
    return mname + rname + struct.pack("!IIIII", serial, refresh, retry, expire, minimum)


def txt(*strings):
    return b"".join(bytes([len(s)]) + s.encode() for s in strings)


# MARK: queries (what clients send)

def queries():
    cookie = edns_option(10, bytes.fromhex("0123456789abcdef"))
    yield "a-www-example-com", header(0x1A2B, RD) + question(name("www.example.com"), A)
    yield "aaaa-edns-do", header(0x2B3C, RD, ar=1) + question(name("www.example.com"), AAAA) + opt(do=True)
    yield "mx-cd-edns-cookie", header(0x3C4D, RD | CD, ar=1) + question(name("example.org"), MX) + opt(4096, options=cookie)
    yield "ptr-private-reverse", header(0x4D5E, RD) + question(name("1.2.168.192.in-addr.arpa"), PTR)
    yield "ptr-loopback", header(0x4D5F, RD, ar=1) + question(name("1.0.0.127.in-addr.arpa"), PTR) + opt()
    yield "0x20-mixed-case", header(0x5E6F, RD, ar=1) + question(name("wWw.ExAmPlE.cOm"), A) + opt(512)
    yield "version-bind-ch", header(0x6F70, 0) + question(name("version.bind"), TXT, CH)
    yield "id-server-ch", header(0x6F71, 0, ar=1) + question(name("id.server"), TXT, CH) + opt()
    yield "localhost-a", header(0x7081, RD) + question(name("localhost"), A)
    yield "cluster-a", header(0x8192, RD, ar=1) + question(name("web.cluster.internal"), A) + opt()
    yield "cluster-srv", header(0x8193, RD) + question(name("_http._tcp.web.cluster.internal"), SRV)
    yield "cluster-member-aaaa", header(0x8194, RD) + question(name("a1.web.cluster.internal"), AAAA)
    yield "edns-version-1", header(0x92A3, RD, ar=1) + question(name("www.example.com"), A) + opt(version=1)
    yield "opcode-notify", header(0xA3B4, 4 << 11) + question(name("example.com"), SOA)
    yield "axfr-refused", header(0xB4C5, 0) + question(name("example.com"), AXFR)
    yield "any-type", header(0xB4C6, RD, ar=1) + question(name("example.com"), ANY) + opt(1232)
    yield "https-type", header(0xB4C7, RD | AD, ar=1) + question(name("example.com"), HTTPS) + opt(1400, do=True)
    # An additional record besides OPT whose owner points back at the question name.
    yield "additional-with-pointer", (header(0xC5D6, RD, ar=2) + question(name("www.example.com"), A)
                                      + rr(ptr(12), TXT, txt("x"), 0) + opt())
    yield "root-ns", header(0xD6E7, 0, ar=1) + question(b"\x00", NS) + opt()
    yield "long-name", header(0xE7F8, RD) + question(name(".".join(["a" * 63] * 3) + ".example"), A)
    yield "ds-query", header(0xF809, RD | CD, ar=1) + question(name("example.com"), DS) + opt(do=True)
    # Malformed on purpose: the reader's rejections are code worth covering from the start.
    yield "bad-truncated-question", header(0x0102, RD) + name("www.example.com")[:7]
    yield "bad-pointer-forward", header(0x0103, RD) + ptr(20) + struct.pack("!HH", A, IN) + b"\x00" * 8
    yield "bad-two-opt", header(0x0104, RD, ar=2) + question(name("example.com"), A) + opt() + opt()
    yield "bad-response-bit", header(0x0105, QR | RD) + question(name("example.com"), A)


# MARK: responses (what upstream servers send)

def responses():
    q = 12  # offset of the question name in every message below

    www = name("www.example.com")
    yield "a-www-edns", (header(0xBEEF, QR | RD | RA, an=2, ar=1) + question(www, A)
                         + rr(ptr(q), A, ipv4("192.0.2.1")) + rr(ptr(q), A, ipv4("192.0.2.2")) + opt(do=True))

    # www.example.com CNAME web.example.com; web A; NS for example.com; glue A and AAAA.
    msg = header(0x1234, QR | AA | RD | RA, an=2, ns=2, ar=3) + question(www, A)
    web_at = len(msg) + 12  # the CNAME's RDATA starts after owner pointer (2) and fixed fields (10)
    msg += rr(ptr(q), CNAME, b"\x03web" + ptr(q + 4), 3600)
    msg += rr(ptr(web_at), A, ipv4("192.0.2.10"), 60)
    ns1_at = len(msg) + 12
    msg += rr(ptr(q + 4), NS, b"\x03ns1" + ptr(q + 4), 86400)
    ns2_at = len(msg) + 12
    msg += rr(ptr(q + 4), NS, b"\x03ns2" + name("example.net"), 86400)
    msg += rr(ptr(ns1_at), A, ipv4("192.0.2.53"), 86400)
    msg += rr(ptr(ns1_at), AAAA, bytes.fromhex("20010db8000000000000000000000053"), 86400)
    msg += opt(1232)
    yield "cname-chain-glue", msg

    # A referral from the com. servers: no AA, NS in authority, glue in additional.
    msg = header(0x2345, QR, an=0, ns=2, ar=2) + question(name("www.example.com"), A)
    ns1_at = len(msg) + 12
    msg += rr(ptr(q + 4), NS, b"\x03ns1" + ptr(q + 4), 172800)
    ns2_at = len(msg) + 12
    msg += rr(ptr(q + 4), NS, b"\x03ns2" + ptr(q + 4), 172800)
    msg += rr(ptr(ns1_at), A, ipv4("192.0.2.53"), 172800)
    msg += rr(ptr(ns2_at), A, ipv4("198.51.100.53"), 172800)
    yield "referral-com", msg

    # Priming: the root NS set with addresses (zone ".", several compression targets).
    msg = header(0x3456, QR | AA, an=2, ar=2) + question(b"\x00", NS)
    a_at = len(msg) + 1 + 10  # the owner is the root: one octet
    msg += rr(b"\x00", NS, b"\x01a\x0croot-servers\x03net\x00", 518400)
    msg += rr(b"\x00", NS, b"\x01b" + ptr(a_at + 2), 518400)
    msg += rr(ptr(a_at), A, ipv4("198.41.0.4"), 518400)
    msg += rr(ptr(a_at), AAAA, bytes.fromhex("2001050300ba3e000000000000020030"), 518400)
    yield "priming-root-ns", msg

    # NXDOMAIN with the zone's SOA (RFC 2308), AA, EDNS.
    msg = header(0x4567, QR | AA | RD | RA | 3, ns=1, ar=1) + question(name("nope.example.com"), A)
    msg += rr(ptr(q + 5), SOA, soa_rdata(b"\x03ns1" + ptr(q + 5), b"\x0ahostmaster" + ptr(q + 5)), 900)
    msg += opt()
    yield "nxdomain-soa", msg

    # NODATA: NOERROR, no answer, SOA.
    msg = header(0x4568, QR | AA | RD | RA, ns=1) + question(www, AAAA)
    msg += rr(ptr(q + 4), SOA, soa_rdata(name("ns1.example.com"), name("hostmaster.example.com"), minimum=60), 3600)
    yield "nodata-soa", msg

    # Assorted types in one answer.
    msg = header(0x5678, QR | AA | RD | RA, an=4, ar=1) + question(name("example.com"), ANY)
    msg += rr(ptr(q), MX, struct.pack("!H", 10) + b"\x04mail" + ptr(q))
    msg += rr(ptr(q), TXT, txt("v=spf1 -all", "hello world"))
    msg += rr(ptr(q), CAA, b"\x00\x05issue" + b"letsencrypt.org")
    msg += rr(b"\x04_sip\x04_tcp" + ptr(q), SRV, struct.pack("!HHH", 10, 60, 5060) + name("sip.example.com"))
    msg += opt(4096, options=edns_option(10, bytes(16)))
    yield "any-mixed-types", msg

    # DNAME (RFC 6672): example.com DNAME example.net, the synthesised CNAME, and the target's A.
    msg = header(0x6789, QR | AA | RD | RA, an=3) + question(name("www.example.com"), A)
    msg += rr(ptr(q + 4), DNAME, name("example.net"))
    net_at = len(msg) - len(name("example.net"))
    msg += rr(ptr(q), CNAME, b"\x03www" + ptr(net_at))
    msg += rr(b"\x03www" + ptr(net_at), A, ipv4("203.0.113.7"))
    yield "dname-synthesis", msg

    # DNSSEC: RRSIG over the A set, DNSKEY, NSEC with a type bitmap, DS; DO and AD set.
    msg = header(0x789A, QR | AA | RD | RA | AD, an=2, ns=2, ar=2) + question(www, A)
    msg += rr(ptr(q), A, ipv4("192.0.2.1"))
    msg += rr(ptr(q), RRSIG, struct.pack("!HBBIIIH", A, 13, 3, 300, 1767225600, 1764547200, 12345)
              + name("example.com") + bytes(range(64)))
    msg += rr(ptr(q + 4), NSEC, name("zzz.example.com") + bytes([0, 6, 0x40, 0x01, 0, 0, 0, 0x03]))
    msg += rr(ptr(q + 4), DS, struct.pack("!HBB", 12345, 13, 2) + bytes(range(32)))
    msg += rr(ptr(q + 4), DNSKEY, struct.pack("!HBB", 257, 3, 13) + bytes(range(64)), 3600)
    msg += opt(1232, do=True)
    yield "dnssec-records", msg

    # HTTPS (RFC 9460): priority 1, target ".", alpn=h2,h3 and port 443.
    svc = struct.pack("!H", 1) + b"\x00" + struct.pack("!HH", 1, 6) + b"\x02h2\x02h3" + struct.pack("!HHH", 3, 2, 443)
    msg = header(0x89AB, QR | RD | RA, an=1, ar=1) + question(name("example.com"), HTTPS) + rr(ptr(q), HTTPS, svc)
    yield "https-svcb", msg + opt()

    # SERVFAIL without a question; BADCOOKIE (extended rcode 23 = 1 << 4 | 7).
    yield "servfail-no-question", header(0x9ABC, QR | RD | RA | 2, qd=0)
    yield "badcookie-ext-rcode", (header(0x9ABD, QR | RD | RA | 7, ar=1) + question(www, A)
                                  + opt(ext_rcode=1, options=edns_option(10, bytes(24))))

    # Truncated (TC): the client should retry over TCP.
    yield "truncated-tc", header(0xABCD, QR | TC | RD | RA) + question(www, TXT)

    # Many records of one set: a round-robin pool, all owners compressed.
    msg = header(0xBCDE, QR | RD | RA, an=16) + question(name("pool.example.com"), A)
    for index in range(16):
        msg += rr(ptr(q), A, ipv4(f"198.51.100.{index + 1}"), 30 + index)
    yield "round-robin-16", msg

    # Out of bailiwick data a poisoner would send: an answer for another zone and foreign glue.
    msg = header(0xCDEF, QR | AA, an=2, ns=1, ar=1) + question(www, A)
    msg += rr(ptr(q), A, ipv4("192.0.2.1"))
    msg += rr(name("bank.example"), A, ipv4("6.6.6.6"), 604800)
    msg += rr(name("bank.example"), NS, name("ns.evil.test"), 604800)
    msg += rr(name("ns.evil.test"), A, ipv4("6.6.6.7"), 604800)
    yield "out-of-bailiwick", msg

    # Reverse lookup answer.
    ptr_name = name("10.2.0.192.in-addr.arpa")
    msg = header(0xDEF0, QR | AA | RD | RA, an=1) + question(ptr_name, PTR) + rr(ptr(q), PTR, name("host.example.com"))
    yield "ptr-answer", msg

    # CNAME loop: a -> b -> a.
    msg = header(0xEF01, QR | AA, an=2) + question(name("a.loop.example"), A)
    b_at = len(msg) + 12
    msg += rr(ptr(q), CNAME, b"\x01b" + ptr(q + 2))
    msg += rr(ptr(b_at), CNAME, ptr(q))
    yield "cname-loop", msg

    # Malformed on purpose.
    yield "bad-pointer-loop", header(0x0001, QR, an=1) + question(www, A) + ptr(len(header(0, 0)) + len(www) + 4) + struct.pack("!HHIH", A, IN, 0, 0)
    yield "bad-rdlength", header(0x0002, QR, an=1) + question(www, A) + ptr(q) + struct.pack("!HHIH", A, IN, 300, 0xFFFF) + b"\x01\x02\x03\x04"


# MARK: config files

def configs():
    shipped = os.path.join(ROOT, "..", "config", "resolverd.toml")
    with open(shipped, encoding="utf-8") as handle:
        yield "resolverd.toml", handle.read()
    yield "minimal-forward.toml", '[[forward]]\nzone = "."\nservers = ["192.0.2.53", "[2001:db8::53]:5353"]\n'
    yield "recursive.toml", (
        '[resolver]\nmode = "recursive"\ntimeout_ms = 1500\nprobe_probability = 0.1\n'
        'root_hints = ["198.41.0.4", "2001:503:ba3e::2:30"]\nqname_minimisation = false\n'
        '[cache]\nmax_bytes = 0x1000_0000\nmin_ttl = 5\nmax_ttl = 3_600\nserve_stale = true\nstale_max_s = 259200\n')
    yield "two-forwards.toml", (
        '# comment\n[server]\nlisten = ["127.0.0.1:5353", "[::1]:5353"]\nallow = ["10.0.0.0/8", "fd00::/8"]\n'
        'workers = 2\n\n[[forward]]\nzone = "corp.example"\nservers = ["10.0.0.53:53"]\n\n'
        '[[forward]]\nzone = "."\nservers = ["system", "9.9.9.9"]\n')
    yield "cluster-api-log.toml", (
        '[[forward]]\nzone = "."\nservers = ["1.1.1.1"]\n[cluster]\ndomain = "svc.example."\nanswer_ttl_s = 0\n'
        '[api]\nlisten = "[::1]:8053"\ntoken = "s3cr\\u0065t-0123456789abcdef"\n[log]\nlevel = \'debug\'\nformat = "json"\n'
        'queries = true\n[rate_limit]\nresponses_per_second = 50\nslip = 0\n[registry]\npath = "/tmp/r.sqlite"\n')
    yield "inline-table-and-floats.toml", (
        'extra = { a = 1, b = [1.5, -2e3, inf, nan], c = { d = "x" } }\nlist = [ [1, 2], ["a", \'b\'], ]\n'
        '[[forward]]\nzone = "."\nservers = ["192.0.2.1"]\n')
    yield "errors-dotted-and-dupes.toml", '[server]\nthreads = 1\nthreads = 2\nserver.listen = ["x"]\n'
    yield "errors-unterminated.toml", '[resolver]\nmode = "recursive\ntimeout_ms = 99999999999999999999\n'
    yield "errors-array-of-tables.toml", 'forward = 1\n[[forward]]\n[forward]\n[[cache]]\nmax_bytes = -1\n'


# MARK: JSON bodies

def json_bodies():
    def dump(value):
        return json.dumps(value, separators=(",", ":"))

    yield "register-tcp-check", dump({"address": "192.0.2.1", "port": 8080, "ttl_s": 60, "tags": ["http"],
                                      "check": {"type": "tcp", "timeout_ms": 500}})
    yield "register-http-check", dump({"address": "2001:db8::7", "port": 443, "ttl_s": 86400, "service": "https",
                                       "proto": "TCP", "tags": ["Web", "edge-1", "web"],
                                       "check": {"type": "http", "path": "/healthz?full=1", "timeout_ms": 60000}})
    yield "register-minimal", dump({"address": "10.0.0.5", "ttl_s": 1})
    yield "register-no-check-null", dump({"address": "10.0.0.6", "ttl_s": 30, "port": None, "check": None, "tags": None})
    yield "register-udp-none", dump({"address": "::ffff:192.0.2.9", "port": 53, "ttl_s": 300, "proto": "udp",
                                     "service": "dns", "check": {"type": "none"}})
    yield "register-bad-types", '{"address":1,"port":"80","ttl_s":6e1,"tags":"x","check":[]}'
    yield "register-huge-numbers", '{"address":"192.0.2.1","port":1e308,"ttl_s":-0.0,"check":{"type":"tcp","timeout_ms":1.5e-320}}'
    yield "register-unicode", '{"address":"192.0.2.1","ttl_s":60,"service":"\\u0065\\u0301","tags":["\\ud83d\\ude00"]}'
    yield "flush-all", "{}"
    yield "flush-name", dump({"name": "www.example.com"})
    yield "flush-subtree", dump({"name": "Example.COM.", "subtree": True})
    yield "flush-escapes", dump({"name": "a\\.b\\065.example", "subtree": False})
    yield "flush-subtree-without-name", dump({"subtree": True})
    yield "record-member", dump({"group": "web", "id": "a1", "address": "192.0.2.1", "port": 8080, "proto": "tcp",
                                 "tags": ["http"], "ttl_s": 60, "check_type": "tcp", "check_timeout_ms": 500,
                                 "registered_at": 1700000000000, "expires_at": 1700000060000,
                                 "unhealthy_since": 1700000001000, "failures": 2, "next_check": 1700000003000,
                                 "last_check_at": 1700000001000, "last_check_ok": False,
                                 "last_check_detail": "connection refused"})
    yield "change-delete", dump({"delete": ["web", "a1"]})
    yield "nested-arrays", "[" * 40 + "1" + "]" * 40


def write(target, entries, binary=True):
    folder = os.path.join(CORPUS, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    total = 0
    for label, content in entries:
        data = content if binary else content.encode("utf-8")
        with open(os.path.join(folder, label), "wb") as handle:
            handle.write(data)
        total += len(data)
    return total


def main():
    total = write("fuzz-query-reader", queries())
    response_seeds = list(responses())
    total += write("fuzz-codec", [("r-" + l, c) for l, c in response_seeds] + [("q-" + l, c) for l, c in queries()])
    total += write("fuzz-response", response_seeds)
    total += write("fuzz-config", configs(), binary=False)
    total += write("fuzz-api-json", json_bodies(), binary=False)
    print(f"wrote {total} bytes of seeds under {CORPUS}", file=sys.stderr)


if __name__ == "__main__":
    main()
