// Recursion/: where iteration starts. The IANA root servers are built in (the root hints file,
// https://www.internic.net/domain/named.root); `resolver.root_hints` replaces them. The hints
// are only a starting point: the first resolution "primes" them, asking one of them for the
// root's own NS set, and that answer is used until it expires (RFC 8109).

/// The root servers resolverd starts from.
public enum RootHints {
    /// a. to m.root-servers.net., IPv4 and IPv6 (named.root of 2023-09).
    public static let iana: [ServerAddress] = [
        "198.41.0.4", "2001:503:ba3e::2:30",  // a (Verisign)
        "170.247.170.2", "2801:1b8:10::b",  // b (USC-ISI)
        "192.33.4.12", "2001:500:2::c",  // c (Cogent)
        "199.7.91.13", "2001:500:2d::d",  // d (University of Maryland)
        "192.203.230.10", "2001:500:a8::e",  // e (NASA Ames)
        "192.5.5.241", "2001:500:2f::f",  // f (ISC)
        "192.112.36.4", "2001:500:12::d0d",  // g (DISA)
        "198.97.190.53", "2001:500:1::53",  // h (US Army Research Lab)
        "192.36.148.17", "2001:7fe::53",  // i (Netnod)
        "192.58.128.30", "2001:503:c27::2:30",  // j (Verisign)
        "193.0.14.129", "2001:7fd::1",  // k (RIPE NCC)
        "199.7.83.42", "2001:500:9f::42",  // l (ICANN)
        "202.12.27.33", "2001:dc3::35",  // m (WIDE)
    ].compactMap { IPAddress($0).map { ServerAddress(ip: $0, port: 53) } }
}
