// Wire/: DNSSEC's canonical forms (RFC 4034 §6) for the validator: canonical names and their
// order, the canonical form of a record, the canonical order of an RRset, and the octets an
// RRSIG signs (RFC 4034 §3.1.8.1). Pure functions over `DomainName` and `ResourceRecord`.

extension DomainName {
    /// The canonical form of a name (RFC 4034 §6.2): uncompressed (as every `DomainName` is),
    /// ASCII letters in lower case.
    public var canonical: DomainName { lowercased }

    /// Compares two names in canonical order (RFC 4034 §6.1): label by label from the root,
    /// each label as a left-justified octet string with ASCII letters lower-cased, a name that
    /// runs out of labels first sorting first. Negative, zero or positive, like `memcmp`.
    public static func canonicalCompare(_ lhs: DomainName, _ rhs: DomainName) -> Int {
        lhs.wire.withUnsafeBufferPointer { left in
            rhs.wire.withUnsafeBufferPointer { right in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { starts in
                    // Label starts of both names in one buffer: the left's from 0, the right's from 128.
                    guard let leftCount = labelStarts(left, into: starts, at: 0),
                        let rightCount = labelStarts(right, into: starts, at: 128)
                    else { return compareOctets(left, right) }
                    var l = leftCount - 1
                    var r = rightCount - 1
                    while l >= 0, r >= 0 {
                        let order = compareLabels(left, at: Int(starts[l]), right, at: Int(starts[128 + r]))
                        if order != 0 { return order }
                        l -= 1
                        r -= 1
                    }
                    return leftCount - rightCount
                }
            }
        }
    }

    /// Writes where each label of `wire` starts to `starts[base...]` and returns how many
    /// there are; nil for wire that is not a valid name (only through `init(uncheckedWire:)`).
    private static func labelStarts(
        _ wire: UnsafeBufferPointer<UInt8>, into starts: UnsafeMutableBufferPointer<UInt8>, at base: Int
    ) -> Int? {
        var offset = 0
        var count = 0
        while offset < wire.count, wire[offset] != 0 {
            guard count < 128, wire[offset] <= maxLabelLength, offset + 1 + Int(wire[offset]) < wire.count else { return nil }
            starts[base + count] = UInt8(offset)
            count += 1
            offset += 1 + Int(wire[offset])
        }
        return offset < wire.count ? count : nil
    }

    private static func compareLabels(
        _ left: UnsafeBufferPointer<UInt8>, at l: Int, _ right: UnsafeBufferPointer<UInt8>, at r: Int
    ) -> Int {
        let leftLength = Int(left[l])
        let rightLength = Int(right[r])
        for index in 1..<(1 + min(leftLength, rightLength)) {
            let a = lower(left[l + index])
            let b = lower(right[r + index])
            if a != b { return Int(a) - Int(b) }
        }
        return leftLength - rightLength
    }

    /// A total order for malformed wire, so that sorting never traps.
    private static func compareOctets(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int {
        for (a, b) in zip(left, right) where a != b { return Int(a) - Int(b) }
        return left.count - right.count
    }
}

/// What makes an RRSIG and an RRset unusable together.
public enum CanonicalError: Error, Sendable, Hashable {
    /// RRSIG RDATA shorter than its 18 fixed octets, or without a valid signer name.
    case badRRSIG
    case emptyRRset
    /// Records of different owners, classes or types.
    case mixedRRset
    /// The RRSIG covers another type than the RRset's.
    case typeNotCovered
    /// The RRSIG's labels field exceeds the owner's label count (RFC 4035 §5.3.1).
    case labelsExceedOwner
}

/// RFC 4034 §6: canonical RDATA, record form, RRset order and the signed octets.
public enum Canonical {
    /// RDATA in canonical form (RFC 4034 §6.2 item 3 as corrected by RFC 6840 §5.1): the
    /// names inside NS, MD, MF, CNAME, SOA, MB, MG, MR, PTR, MINFO, MX, RP, AFSDB, RT, SIG,
    /// PX, NXT, NAPTR, KX, SRV, DNAME, A6 and RRSIG RDATA lower-cased; every other type (NSEC's
    /// next name included) as it is. RDATA that does not fit its type is returned unchanged —
    /// a signature over it will not verify, which is the right outcome.
    public static func rdata(_ rdata: [UInt8], type: RecordType) -> [UInt8] {
        guard type.lowercasesNamesInCanonicalForm, !rdata.isEmpty else { return rdata }
        var result = rdata
        var valid = true
        result.withUnsafeMutableBufferPointer { buffer in
            let view = UnsafeBufferPointer(buffer)
            if type.rawValue == RawType.a6 {
                guard let start = UncompressedRDATA.a6NameStart(in: view) else { return }
                guard UncompressedRDATA.nameEnd(in: view, at: start, limit: view.count) == view.count else {
                    valid = false
                    return
                }
                for index in start..<view.count { buffer[index] = DomainName.lower(buffer[index]) }
            } else if let shape = type.nameShape {
                var ranges: [Range<Int>] = []
                valid = UncompressedRDATA.forEachName(in: view, shape: shape) { ranges.append($0) }
                guard valid else { return }
                // Length octets are at most 63, below `A`: lower-casing the whole name is safe.
                for range in ranges {
                    for index in range { buffer[index] = DomainName.lower(buffer[index]) }
                }
            }
        }
        return valid ? result : rdata
    }

    /// A record in canonical form (RFC 4034 §6.2): owner and embedded names lower case.
    /// (The TTL rule, item 5, belongs to signing: see `signedData`.)
    public static func record(_ record: ResourceRecord) -> ResourceRecord {
        ResourceRecord(
            name: record.name.canonical, type: record.type, recordClass: record.recordClass, ttl: record.ttl,
            rdata: rdata(record.rdata, type: record.type))
    }

    /// Whether `lhs` sorts before `rhs` as RDATA in canonical order (RFC 4034 §6.3): unsigned
    /// octets, left-justified, a proper prefix first.
    public static func rdataPrecedes(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        lhs.lexicographicallyPrecedes(rhs)
    }

    /// An RRset in canonical form and order (RFC 4034 §6.2, §6.3): each record canonical,
    /// sorted by RDATA, records with equal canonical RDATA kept once.
    public static func sortedRRset(_ records: [ResourceRecord]) -> [ResourceRecord] {
        var canonical = records.map(record)
        canonical.sort { rdataPrecedes($0.rdata, $1.rdata) }
        var result: [ResourceRecord] = []
        result.reserveCapacity(canonical.count)
        for record in canonical where result.last?.rdata != record.rdata {
            result.append(record)
        }
        return result
    }

    /// The octets an RRSIG's signature covers (RFC 4034 §3.1.8.1), from the RRSIG's whole
    /// RDATA: its fields up to and including the signer's name (lower-cased), then every
    /// record of the RRset in canonical form and order with the RRSIG's original TTL.
    public static func signedData(rrsig: [UInt8], rrset: [ResourceRecord]) throws(CanonicalError) -> [UInt8] {
        guard rrsig.count > 18 else { throw .badRRSIG }
        let end = rrsig.withUnsafeBufferPointer { UncompressedRDATA.nameEnd(in: $0, at: 18, limit: $0.count) }
        guard let end else { throw .badRRSIG }
        let prefix = Array(rrsig[0..<18]) + rrsig[18..<end].map(DomainName.lower)
        let originalTTL = UInt32(rrsig[4]) << 24 | UInt32(rrsig[5]) << 16 | UInt32(rrsig[6]) << 8 | UInt32(rrsig[7])
        let covered = RecordType(rawValue: UInt16(rrsig[0]) << 8 | UInt16(rrsig[1]))
        guard rrset.first.map({ $0.type == covered }) ?? true else { throw .typeNotCovered }
        return try signedData(rrsigPrefix: prefix, originalTTL: originalTTL, labels: rrsig[3], rrset: rrset)
    }

    /// The signed octets from their parts: `rrsigPrefix` is the RRSIG RDATA without its
    /// signature, signer's name already in canonical form; `originalTTL` and `labels` are its
    /// fields of those names. An owner with more labels than `labels` was expanded from a
    /// wildcard and is signed as `*.` and its rightmost `labels` labels (RFC 4035 §5.3.2).
    public static func signedData(
        rrsigPrefix: [UInt8], originalTTL: UInt32, labels: UInt8, rrset: [ResourceRecord]
    ) throws(CanonicalError) -> [UInt8] {
        guard let first = rrset.first else { throw .emptyRRset }
        for record in rrset.dropFirst()
        where record.name != first.name || record.type != first.type || record.recordClass != first.recordClass {
            throw .mixedRRset
        }
        let ownerLabels = first.name.labelCount
        guard Int(labels) <= ownerLabels else { throw .labelsExceedOwner }
        var owner = first.name.canonical.wire
        if Int(labels) < ownerLabels {
            owner = [1, UInt8(ascii: "*")] + first.name.keepingLast(Int(labels)).canonical.wire
        }
        let records = sortedRRset(rrset)
        var size = rrsigPrefix.count
        for record in records { size += owner.count + 10 + record.rdata.count }
        var data = rrsigPrefix
        data.reserveCapacity(size)
        for record in records {
            data.append(contentsOf: owner)
            data.appendU16(record.type.rawValue)
            data.appendU16(record.recordClass.rawValue)
            data.appendU32(originalTTL)
            data.appendU16(UInt16(truncatingIfNeeded: record.rdata.count))
            data.append(contentsOf: record.rdata)
        }
        return data
    }
}
