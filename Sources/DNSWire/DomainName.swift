// Wire/: domain names as uncompressed wire labels, compared case-insensitively (RFC 4343).

/// A fully qualified domain name held as uncompressed wire bytes (length-prefixed labels ending
/// in the root label). Letter case is kept for presentation and ignored by `==` and hashing.
public struct DomainName: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// Uncompressed wire form, including the terminating zero-length root label.
    public let wire: [UInt8]

    /// RFC 1035 §2.3.4: 63 octets per label, 255 per name (wire form).
    public static let maxLabelLength = 63
    public static let maxWireLength = 255

    /// The root name `.`.
    public static let root = DomainName(uncheckedWire: [0])

    /// Wraps wire bytes the caller has already validated (a reader that checked every label,
    /// a stored copy of such a name). Public so that code outside the module that keeps names
    /// it validated itself need not validate them twice.
    public init(uncheckedWire: [UInt8]) { self.wire = uncheckedWire }

    /// Validates uncompressed wire bytes (labels within limits, ending at the root label).
    public init?(wire: [UInt8]) {
        guard wire.count <= Self.maxWireLength else { return nil }
        var offset = 0
        while offset < wire.count {
            let length = Int(wire[offset])
            if length == 0 { break }
            guard length <= Self.maxLabelLength else { return nil }
            offset += 1 + length
        }
        guard offset == wire.count - 1 else { return nil }
        self.wire = wire
    }

    /// Parses presentation text (`www.example.com`, trailing dot optional, `\.` and `\DDD`
    /// escapes per RFC 1035 §5.1). Returns nil for empty labels or names over the limits.
    public init?(_ text: String) {
        if text == "." || text.isEmpty {
            self = .root
            return
        }
        var wire: [UInt8] = []
        var label: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        func closeLabel() -> Bool {
            guard !label.isEmpty, label.count <= Self.maxLabelLength else { return false }
            wire.append(UInt8(label.count))
            wire.append(contentsOf: label)
            label.removeAll(keepingCapacity: true)
            return true
        }
        while let byte = bytes.popFirst() {
            switch byte {
            case UInt8(ascii: "."):
                guard closeLabel() else { return nil }
            case UInt8(ascii: "\\"):
                guard let next = bytes.popFirst() else { return nil }
                if let d1 = Self.digit(next) {
                    guard let d2 = bytes.popFirst().flatMap(Self.digit), let d3 = bytes.popFirst().flatMap(Self.digit)
                    else { return nil }
                    let value = d1 * 100 + d2 * 10 + d3
                    guard value <= 255 else { return nil }
                    label.append(UInt8(value))
                } else {
                    label.append(next)
                }
            default:
                label.append(byte)
            }
        }
        if !label.isEmpty { guard closeLabel() else { return nil } }
        wire.append(0)
        guard wire.count <= Self.maxWireLength else { return nil }
        self.wire = wire
    }

    private static func digit(_ byte: UInt8) -> Int? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? Int(byte - UInt8(ascii: "0")) : nil
    }

    /// The labels, outermost last (`www`, `example`, `com`), as raw bytes.
    public var labels: [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var offset = 0
        while offset < wire.count, wire[offset] != 0 {
            let length = Int(wire[offset])
            result.append(wire[(offset + 1)..<(offset + 1 + length)])
            offset += 1 + length
        }
        return result
    }

    /// Number of labels, not counting the root.
    public var labelCount: Int {
        var count = 0
        var offset = 0
        while offset < wire.count, wire[offset] != 0 {
            count += 1
            offset += 1 + Int(wire[offset])
        }
        return count
    }

    public var isRoot: Bool { wire.count == 1 }

    /// The name with its first label removed; nil for the root.
    public var parent: DomainName? {
        guard !isRoot else { return nil }
        return DomainName(uncheckedWire: Array(wire[(1 + Int(wire[0]))...]))
    }

    /// The ancestor of this name with `count` labels (`www.example.com.` kept to 2:
    /// `example.com.`); the name itself when it has no more than `count`.
    public func keepingLast(_ count: Int) -> DomainName {
        var drop = labelCount - max(0, count)
        var offset = 0
        while drop > 0 {
            offset += 1 + Int(wire[offset])
            drop -= 1
        }
        return offset == 0 ? self : DomainName(uncheckedWire: Array(wire[offset...]))
    }

    /// The name with its ending `suffix` replaced by `replacement` (DNAME substitution, RFC 6672
    /// §2.2); nil when `suffix` does not end this name or the result is too long.
    public func replacingSuffix(_ suffix: DomainName, with replacement: DomainName) -> DomainName? {
        guard isSubdomain(of: suffix) else { return nil }
        let head = wire[0..<(wire.count - suffix.wire.count)]
        return DomainName(wire: Array(head) + replacement.wire)
    }

    /// The same name in lower case (ASCII only, RFC 4343 §3).
    public var lowercased: DomainName {
        DomainName(uncheckedWire: wire.map(Self.lower))
    }

    /// ASCII lower case of one octet. Safe over a whole uncompressed name: length octets are
    /// at most 63, below `A` (0x41).
    @inline(__always) public static func lower(_ byte: UInt8) -> UInt8 {
        (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
    }

    /// True when `self` equals `zone` or lies below it.
    public func isSubdomain(of zone: DomainName) -> Bool {
        guard wire.count >= zone.wire.count else { return false }
        // The suffix must start on a label boundary of `self`.
        var offset = 0
        let start = wire.count - zone.wire.count
        while offset < start {
            offset += 1 + Int(wire[offset])
        }
        guard offset == start else { return false }
        for index in 0..<zone.wire.count where Self.lower(wire[start + index]) != Self.lower(zone.wire[index]) {
            return false
        }
        return true
    }

    /// Presentation text with a trailing dot, escaping special characters (RFC 1035 §5.1).
    public var description: String {
        if isRoot { return "." }
        var text = ""
        for label in labels {
            for byte in label {
                switch byte {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: ";"),
                    UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    text.append("\\")
                    text.append(Character(UnicodeScalar(byte)))
                case 0x21...0x7E:
                    text.append(Character(UnicodeScalar(byte)))
                default:
                    let digits = String(byte)
                    text.append("\\" + String(repeating: "0", count: 3 - digits.count) + digits)
                }
            }
            text.append(".")
        }
        return text
    }

    public static func == (lhs: DomainName, rhs: DomainName) -> Bool {
        guard lhs.wire.count == rhs.wire.count else { return false }
        for index in lhs.wire.indices where lower(lhs.wire[index]) != lower(rhs.wire[index]) {
            return false
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        for byte in wire { hasher.combine(Self.lower(byte)) }
    }

    /// Canonical DNS order (RFC 4034 §6.1): by labels from the root, case-insensitively.
    /// Without allocating (see `canonicalCompare` in Canonical.swift).
    public static func < (lhs: DomainName, rhs: DomainName) -> Bool {
        canonicalCompare(lhs, rhs) < 0
    }
}
