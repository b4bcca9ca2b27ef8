"""Start resolvers side by side for benchmarks: resolverd, Unbound, PowerDNS Recursor, Knot
Resolver and dnsmasq, each listening on loopback and forwarding to the same upstream servers.
Every process started here is stopped by `stop()`; nothing talks beyond 127.0.0.0/8."""

import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The resolverd build benchmarked: release unless RESOLVERD_BUILD names another (debug).
BUILD = os.environ.get("RESOLVERD_BUILD", "release")
RESOLVERD = os.path.join(ROOT, f".build/{BUILD}/resolverd")


def wait_for_udp(port, deadline_s=15.0):
    """Waits until something answers a DNS query on 127.0.0.1:port (any rcode)."""
    query = build_query(0x4242, "localhost.")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(query, ("127.0.0.1", port))
                s.recv(4096)
                return True
            except OSError:
                time.sleep(0.05)
    return False


def free_port():
    """A port free on 127.0.0.1 for both UDP and TCP right now; OSError when none is found."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise OSError("no free loopback port found for UDP and TCP")


def build_query(qid, name, qtype=1, rd=True):
    header = struct.pack(">HHHHHH", qid, 0x0100 if rd else 0, 1, 0, 0, 0)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".") if p)
    return header + labels + b"\x00" + struct.pack(">HH", qtype, 1)


def unbound_server(port, directory):
    """The `server:` lines every Unbound run here shares: foreground, one thread, loopback only,
    no privileges dropped, files in `directory`."""
    return ("server:\n"
            f"  interface: 127.0.0.1@{port}\n  port: {port}\n"
            "  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  pidfile: \"\"\n"
            "  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n  num-threads: 1\n"
            f"  directory: \"{directory}\"\n  access-control: 127.0.0.0/8 allow\n")


def kresd_server(port):
    """The lines every Knot Resolver run here starts its config with: DNS (UDP and TCP) on
    127.0.0.1:port, and no DNSSEC validation (the root trust anchor that kresd loads by default
    removed)."""
    return (f"net.listen('127.0.0.1', {port}, {{ kind = 'dns' }})\n"
            "trust_anchors.remove('.')\n")


def kresd_command(config, directory):
    """kresd in the foreground without its interactive prompt, `directory` as its working
    directory (where it opens its cache unless told otherwise)."""
    return ["kresd", "-n", "-q", "-c", config, directory]


class Resolver:
    """One resolver process with a generated config in its own temporary directory."""

    def __init__(self, name, port, upstreams, cpu=None, cache_bytes=256 << 20):
        self.name = name
        self.port = port
        self.upstreams = upstreams  # [(ip, port)]
        self.cpu = cpu
        self.cache_bytes = cache_bytes
        self.dir = tempfile.mkdtemp(prefix=f"bench-{name}-")
        self.process = None

    def command(self):
        ups = self.upstreams
        if self.name == "resolverd":
            servers = ", ".join(f'"{ip}:{port}"' for ip, port in ups)
            config = os.path.join(self.dir, "resolverd.toml")
            with open(config, "w") as f:
                f.write(f'[server]\nlisten = ["127.0.0.1:{self.port}"]\nthreads = 1\n'
                        f'[api]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warning"\n'
                        f'[cache]\nmax_bytes = {self.cache_bytes}\n'
                        f'[[forward]]\nzone = "."\nservers = [{servers}]\n')
            return [RESOLVERD, "--config", config]
        if self.name == "unbound":
            config = os.path.join(self.dir, "unbound.conf")
            addrs = "".join(f"  forward-addr: {ip}@{port}\n" for ip, port in ups)
            with open(config, "w") as f:
                f.write(unbound_server(self.port, self.dir) +
                        "  do-not-query-localhost: no\n  module-config: \"iterator\"\n"
                        f"  so-rcvbuf: 4m\n  msg-cache-size: {self.cache_bytes}\n"
                        f"  rrset-cache-size: {2 * self.cache_bytes}\n"
                        "forward-zone:\n  name: \".\"\n" + addrs)
            return ["unbound", "-d", "-c", config]
        if self.name == "pdns-recursor":
            forwards = ";".join(f"{ip}:{port}" for ip, port in ups)
            with open(os.path.join(self.dir, "recursor.conf"), "w") as f:
                f.write(f"local-address=127.0.0.1\nlocal-port={self.port}\nforward-zones-recurse=.={forwards}\n"
                        "dnssec=off\ndaemon=no\nthreads=1\nallow-from=127.0.0.0/8\ndont-query=\n"
                        f"socket-dir={self.dir}\ndisable-syslog=yes\nloglevel=0\nquiet=yes\n")
            return ["pdns_recursor", f"--config-dir={self.dir}"]
        if self.name == "knot-resolver":
            forwards = ", ".join(f"'{ip}@{port}'" for ip, port in ups)
            config = os.path.join(self.dir, "kresd.conf")
            with open(config, "w") as f:
                f.write(kresd_server(self.port) +
                        f"policy.add(policy.all(policy.FORWARD({{{forwards}}})))\n"
                        "cache.size = 100 * MB\n")
            return kresd_command(config, self.dir)
        if self.name == "dnsmasq":
            servers = [f"--server={ip}#{port}" for ip, port in ups]
            return ["dnsmasq", "-d", "-k", "--no-resolv", "--no-hosts", f"--port={self.port}",
                    "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=", "--user=root",
                    "--cache-size=10000", "--log-facility=-"] + servers
        raise ValueError(self.name)

    def installed(self):
        binary = {"resolverd": RESOLVERD, "unbound": "unbound",
                  "pdns-recursor": "pdns_recursor", "knot-resolver": "kresd", "dnsmasq": "dnsmasq"}[self.name]
        return shutil.which(binary) is not None or os.path.exists(binary)

    def start(self):
        cmd = self.command()
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu)] + cmd
        self.log = open(os.path.join(self.dir, "stderr.log"), "w")
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if not wait_for_udp(self.port):
            self.log.flush()
            with open(os.path.join(self.dir, "stderr.log")) as f:
                tail = "".join(f.readlines()[-10:]).rstrip()
            self.stop()  # removes the directory, so the log's end goes into the error
            raise RuntimeError(f"{self.name} did not start:\n{tail}")
        return self

    def cpu_seconds(self):
        """utime+stime of the process so far, from /proc."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_bytes(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


ALL = ["resolverd", "unbound", "pdns-recursor", "knot-resolver", "dnsmasq"]
