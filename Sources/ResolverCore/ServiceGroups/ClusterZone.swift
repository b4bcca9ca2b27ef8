// ServiceGroups/: the cluster zone (`cluster.domain`, default `cluster.internal.`) as rendered
// groups, and its replies written from them — pure: the time, the registry's degraded state and
// the transport are passed in.
//   <domain>                         SOA, NS (the zone apex)
//   <group>.<domain>                 A / AAAA / ANY of the healthy members, rotated per answer;
//                                    SRV of those with a port, targets' addresses as additionals
//   <id>.<group>.<domain>            A / AAAA of one member while healthy (the SRV targets)
//   _<service>._<proto>.<group>...   SRV of healthy members whose service or a tag is <service>
// An unknown name is NXDOMAIN, a known one without data NODATA, both with the zone's SOA; while
// the registry is degraded and knows no member, every name below the apex is SERVFAIL.
// A reply is the query's header and question as asked, then the stored record slices in the
// list's rotated order, each TTL written now as min(answer TTL, what is left of the member's
// registration), and the compression pointers of SRV targets and of the SOA aimed at the
// question. Over UDP a reply larger than the client takes is TC; over 65,535 octets, SERVFAIL.

import NIOCore

/// Where a question name lies in the cluster zone: its labels below the zone, by offset in the
/// name.
package struct ClusterName: Sendable, Equatable {
    /// Labels below the zone's name.
    package var relativeLabels: Int
    /// Offsets in the name of the first three of them (meaningful up to `relativeLabels`).
    package var starts: (Int, Int, Int)
    /// Offset in the name where the zone's name starts.
    package var zoneStart: Int

    package static func == (lhs: ClusterName, rhs: ClusterName) -> Bool {
        lhs.relativeLabels == rhs.relativeLabels && lhs.starts == rhs.starts && lhs.zoneStart == rhs.zoneStart
    }

    /// Start of relative label `index`, and its end (the next label's start).
    func label(_ index: Int) -> Range<Int> {
        let start = index == 0 ? starts.0 : index == 1 ? starts.1 : starts.2
        let end = index + 1 >= relativeLabels ? zoneStart : index == 0 ? starts.1 : starts.2
        return start..<end
    }

    /// Where a question name is, as far as the cluster zone cares.
    package enum Place: Sendable, Equatable {
        case inZone(ClusterName)
        case outside
        /// The name holds a compression pointer: read it whole, then ask again.
        case compressed
    }

    /// Where `name` (the question's name as in the query, ending in the root label) lies
    /// relative to `domain` (lower-case wire, `domainLabels` labels). A name outside costs one
    /// walk over its labels and a comparison of its last octets.
    package static func locate(_ name: UnsafeRawBufferPointer, in domain: [UInt8], domainLabels: Int) -> Place {
        var count = 0
        var offset = 0
        while offset < name.count {
            let length = Int(name[offset])
            if length == 0 { break }
            guard length & 0xC0 == 0 else { return .compressed }
            count += 1
            offset += 1 + length
        }
        guard offset == name.count - 1, count >= domainLabels, name.count >= domain.count else { return .outside }
        let zoneStart = name.count - domain.count
        var index = domain.count - 1
        while index >= 0 {
            guard DomainName.lower(name[zoneStart + index]) == domain[index] else { return .outside }
            index -= 1
        }
        let relative = count - domainLabels
        var starts = (0, 0, 0)
        offset = 0
        for label in 0..<relative {
            switch label {
            case 0: starts.0 = offset
            case 1: starts.1 = offset
            case 2: starts.2 = offset
            default: break
            }
            offset += 1 + Int(name[offset])
        }
        // The zone's name must start at a label boundary (`xcluster.internal.` is not below it).
        guard offset == zoneStart else { return .outside }
        return .inZone(ClusterName(relativeLabels: relative, starts: starts, zoneStart: zoneStart))
    }
}

/// The rendered cluster zone and the replies written from it.
package struct ClusterZone: Sendable {
    /// The zone's name, lower case.
    package let domain: DomainName
    /// `cluster.answer_ttl_s`: the longest TTL of an answer, the SOA's TTL and MINIMUM.
    package var answerTTLSeconds: Int
    private var groups: [RenderedGroup] = []
    private var groupTable = LabelTable()
    private let soa: Template
    private let ns: Template

    /// A zone record (SOA, NS) written once, its owner and RDATA names compressed against the
    /// zone's name; their pointers are aimed at the zone's name in the question when served.
    struct Template: Sendable {
        var bytes: [UInt8] = []
        var ttlAt = 0
        var pointers: [Int] = []
    }

    package init(domain: DomainName, answerTTLSeconds: Int) {
        let apex = domain.lowercased
        self.domain = apex
        self.answerTTLSeconds = answerTTLSeconds
        var soaRDATA = apex.wire  // MNAME
        soaRDATA += [10] + Array("hostmaster".utf8) + apex.wire  // RNAME
        for value: UInt32 in [1, 3600, 600, 86400, 0] { soaRDATA.appendU32(value) }  // MINIMUM written when served
        soa = Self.template(ResourceRecord(name: apex, type: .soa, ttl: 0, rdata: soaRDATA), names: 2, zone: apex)
        ns = Self.template(ResourceRecord(name: apex, type: .ns, ttl: 0, rdata: apex.wire), names: 1, zone: apex)
    }

    /// Writes `record` after a question for `zone`, and notes where its names' pointers are.
    private static func template(_ record: ResourceRecord, names: Int, zone: DomainName) -> Template {
        var writer = MessageWriter(id: 0, compression: .exactCase)
        do throws(MessageWriteError) {
            try writer.add(Question(name: zone, type: record.type))
            let start = writer.bytes.count
            try writer.add(record, to: .answer)
            let bytes = Array(writer.bytes[start...])
            var template = Template(bytes: bytes, ttlAt: (writer.ttlOffsets.last ?? start) - start)
            // The owner, then the RDATA's names (SOA: MNAME, RNAME; NS: NSDNAME).
            var offset = 0
            for index in 0...names {
                if index == 1 { offset = template.ttlAt + 6 }
                while offset < bytes.count {
                    let length = Int(bytes[offset])
                    if length == 0 {
                        offset += 1
                        break
                    }
                    if length & 0xC0 == 0xC0 {
                        template.pointers.append(offset)
                        offset += 2
                        break
                    }
                    offset += 1 + length
                }
            }
            return template
        } catch {
            // Cannot happen for a valid zone name; an empty template writes no record.
            return Template()
        }
    }

    // MARK: Changes

    /// Whether no group is known.
    package var isEmpty: Bool { groups.isEmpty }

    /// The number of groups.
    package var groupCount: Int { groups.count }

    /// Puts `group`'s new rendering in place of the old (nil: the group is gone).
    package mutating func install(_ rendered: RenderedGroup?, for group: String) {
        guard let key = RenderedGroup.label(group) else { return }
        let index = key.withUnsafeBytes { self.group($0) }
        switch (index, rendered) {
        case (let index?, let rendered?):
            groups[index] = rendered
        case (let index?, nil):
            groups.swapAt(index, groups.count - 1)
            groups.removeLast()
            rebuildTable()
        case (nil, let rendered?):
            groups.append(rendered)
            rendered.key.withUnsafeBytes { groupTable.append(hash: LabelTable.hash($0)) }
        case (nil, nil):
            break
        }
    }

    /// `group`'s current rendering (what a new one may copy unchanged members from).
    package func rendered(_ group: String) -> RenderedGroup? {
        guard let key = RenderedGroup.label(group), let index = key.withUnsafeBytes({ self.group($0) }) else { return nil }
        return groups[index]
    }

    /// A heartbeat: `member`'s expiry when nothing else about it changed; false when its
    /// records must be written again.
    package mutating func renew(_ member: Member) -> Bool {
        guard let key = RenderedGroup.label(member.group), let id = RenderedGroup.label(member.id) else { return false }
        guard let group = key.withUnsafeBytes({ self.group($0) }),
            let index = id.withUnsafeBytes({ groups[group].member($0) }),
            groups[group].members[index].fingerprint == RenderedGroup.fingerprint(member)
        else { return false }
        groups[group].members[index].expiresAt = member.expiresAt
        return true
    }

    /// Octets held by the rendered groups (the bound is in RenderedGroup.swift's header).
    package var approximateBytes: Int {
        groups.reduce(RenderedGroup.arrayBytes(groups.capacity, of: RenderedGroup.self) + groupTable.approximateBytes) {
            $0 + $1.approximateBytes
        }
    }

    private mutating func rebuildTable() {
        groupTable = LabelTable()
        for group in groups { group.key.withUnsafeBytes { groupTable.append(hash: LabelTable.hash($0)) } }
    }

    private func group(_ label: UnsafeRawBufferPointer) -> Int? {
        groupTable.find(hash: LabelTable.hash(label)) { entry in
            RenderedGroup.equal(groups[entry].key, 0, UInt8(groups[entry].key.count), label)
        }
    }

    // MARK: Replies

    /// What a question gets.
    enum Plan {
        case servFail
        /// NXDOMAIN or NODATA: the SOA in the authority section.
        case negative(ResponseCode)
        case apex(soa: Bool, ns: Bool)
        /// A list's records (with the SRV targets as additionals when `srv`), rotated.
        case list(group: Int, list: Int, srv: Bool)
        case member(group: Int, member: Int)
    }

    /// The reply to `query` (read into `view`) whose question name `name` (uncompressed) lies at
    /// `located` in the zone. `degraded`: the registry's store failed.
    package mutating func reply(
        name: UnsafeRawBufferPointer, located: ClusterName, query: UnsafeRawBufferPointer, view: QueryView,
        now: UnixMillis, degraded: Bool, transport: Transport, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let plan = plan(name: name, located: located, type: view.type, degraded: degraded)
        var answerCount = 0
        var authorityCount = 0
        var additionalCount = 0
        var recordBytes = 0
        var rcode = ResponseCode.noError
        var start = 0
        switch plan {
        case .servFail:
            rcode = .servFail
        case .negative(let code):
            rcode = code
            authorityCount = 1
            recordBytes = soa.bytes.count
        case .apex(let withSOA, let withNS):
            answerCount = (withSOA ? 1 : 0) + (withNS ? 1 : 0)
            recordBytes = (withSOA ? soa.bytes.count : 0) + (withNS ? ns.bytes.count : 0)
        case .list(let group, let list, let srv):
            let answerList = groups[group].lists[list]
            answerCount = answerList.members.count
            additionalCount = srv ? answerCount : 0
            recordBytes = answerList.answerBytes + answerList.additionalBytes
            start = groups[group].lists[list].rotate()
        case .member(let group, let member):
            answerCount = 1
            recordBytes = Int(groups[group].members[member].address.length)
        }
        let questionLength = name.count + 4
        let total = DNSHeader.length + questionLength + recordBytes + (view.edns == nil ? 0 : ResponseBuilder.optLength)
        // What the message writer refused (over 65,535 octets) was SERVFAIL; what does not fit
        // the client's UDP size is TC (RFC 7766 §5), with the rcode it would have had.
        if total > Int(UInt16.max) {
            return ResponseBuilder.reply(
                to: query, questionEnd: view.questionEnd, rcode: .servFail, edns: view.edns, allocator: allocator)
        }
        if transport == .udp, total > ResponseBuilder.udpLimit(for: view.edns) {
            return ResponseBuilder.reply(
                to: query, questionEnd: view.questionEnd, rcode: rcode, edns: view.edns, truncated: true,
                allocator: allocator)
        }
        var buffer = allocator.buffer(capacity: total)
        let ttl = UInt32(clamping: answerTTLSeconds)
        let zoneOffset = DNSHeader.length + located.zoneStart
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { out in
            // Header: the query's ID; QR, AA, RA, and the query's RD and CD (RFC 1035 §4.1.1).
            let queryFlags = UInt16(query[2]) << 8 | UInt16(query[3])
            let flags =
                DNSHeader.qrBit | DNSHeader.aaBit | DNSHeader.raBit
                | queryFlags & (DNSHeader.rdBit | DNSHeader.cdBit) | rcode.rawValue & DNSHeader.rcodeMask
            out[0] = query[0]
            out[1] = query[1]
            Self.put16(flags, out, 2)
            Self.put16(1, out, 4)
            Self.put16(UInt16(answerCount), out, 6)
            Self.put16(UInt16(authorityCount), out, 8)
            Self.put16(UInt16(additionalCount + (view.edns == nil ? 0 : 1)), out, 10)
            // The question as asked.
            var cursor = DNSHeader.length
            Self.copy(name, to: out, at: cursor)
            cursor += name.count
            Self.put16(view.type.rawValue, out, cursor)
            Self.put16(view.recordClass.rawValue, out, cursor + 2)
            cursor += 4
            switch plan {
            case .servFail:
                break
            case .negative:
                cursor = write(soa, minimum: ttl, ttl: ttl, pointer: zoneOffset, out, cursor)
            case .apex(let withSOA, let withNS):
                if withSOA { cursor = write(soa, minimum: ttl, ttl: ttl, pointer: zoneOffset, out, cursor) }
                if withNS { cursor = write(ns, minimum: nil, ttl: ttl, pointer: zoneOffset, out, cursor) }
            case .list(let group, let list, let srv):
                cursor = writeList(
                    group: group, list: list, srv: srv, start: start,
                    groupOffset: DNSHeader.length + Self.groupStart(located),
                    now: now, out, cursor)
            case .member(let group, let member):
                let entry = groups[group].members[member]
                cursor = groups[group].buffer.withUnsafeBytes {
                    writeSlice(entry.address, $0, expiresAt: entry.expiresAt, pointer: 0, now: now, out, cursor)
                }
            }
            return cursor
        }
        if let edns = view.edns {
            ResponseBuilder.writeOPT(into: &buffer, extendedRcode: 0, dnssecOK: edns.dnssecOK)
        }
        return buffer
    }

    /// Offset in the name of the group's label: the last relative label.
    private static func groupStart(_ located: ClusterName) -> Int {
        switch located.relativeLabels {
        case 1: located.starts.0
        case 2: located.starts.1
        default: located.starts.2
        }
    }

    private func plan(name: UnsafeRawBufferPointer, located: ClusterName, type: RecordType, degraded: Bool) -> Plan {
        // A degraded registry knowing nothing cannot tell a name that does not exist from one
        // it cannot read: SERVFAIL (resolvers retry; NXDOMAIN would be cached as a fact).
        if located.relativeLabels > 0, degraded, groups.isEmpty { return .servFail }
        func label(_ index: Int) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: name[located.label(index)])
        }
        func underscored(_ index: Int) -> Bool {
            let range = located.label(index)
            return range.count > 1 && name[range.lowerBound + 1] == UInt8(ascii: "_")
        }
        let noData = Plan.negative(.noError)
        let nxDomain = Plan.negative(.nxDomain)
        switch located.relativeLabels {
        case 0:
            switch type {
            case .soa: return .apex(soa: true, ns: false)
            case .ns: return .apex(soa: false, ns: true)
            case .any: return .apex(soa: true, ns: true)
            default: return noData
            }
        case 1:
            guard let group = group(label(0)) else { return nxDomain }
            let list: Int
            switch type {
            case .a: list = RenderedGroup.Lists.a
            case .aaaa: list = RenderedGroup.Lists.aaaa
            case .any: list = RenderedGroup.Lists.any
            case .srv: list = RenderedGroup.Lists.srv
            default: return noData
            }
            return groups[group].lists[list].members.isEmpty
                ? noData : .list(group: group, list: list, srv: type == .srv)
        case 2 where !underscored(0):
            guard let group = group(label(1)), let member = groups[group].member(label(0)) else { return nxDomain }
            let entry = groups[group].members[member]
            guard entry.address.exists else { return noData }
            switch type {
            case .a where !entry.isV6, .aaaa where entry.isV6, .any: return .member(group: group, member: member)
            default: return noData
            }
        case 2:
            // `_tcp.<group>` and the like: names on the way to SRV owners exist, without data.
            return group(label(1)) == nil ? nxDomain : noData
        case 3 where underscored(0) && underscored(1):
            let key = UnsafeRawBufferPointer(rebasing: name[located.starts.0..<located.starts.2])
            guard let group = group(label(2)), let list = groups[group].serviceList(key) else { return nxDomain }
            guard type == .srv || type == .any else { return noData }
            return groups[group].lists[list].members.isEmpty ? noData : .list(group: group, list: list, srv: true)
        default:
            return nxDomain
        }
    }

    /// Writes a list's records from `start` on, wrapping; SRV targets follow in the same order.
    private func writeList(
        group: Int, list: Int, srv: Bool, start: Int, groupOffset: Int, now: UnixMillis,
        _ out: UnsafeMutableRawBufferPointer, _ at: Int
    ) -> Int {
        let rendered = groups[group]
        let members = rendered.lists[list].members
        return rendered.buffer.withUnsafeBytes { stored in
            var cursor = at
            for pass in 0..<(srv ? 2 : 1) {
                var index = start
                for _ in 0..<members.count {
                    let entry = rendered.members[Int(members[index])]
                    let slice = srv ? (pass == 0 ? entry.service : entry.target) : entry.address
                    cursor = writeSlice(
                        slice, stored, expiresAt: entry.expiresAt, pointer: groupOffset, now: now, out, cursor)
                    index += 1
                    if index == members.count { index = 0 }
                }
            }
            return cursor
        }
    }

    /// Copies a member's record, writing its TTL for `now` and aiming its pointer at `pointer`.
    private func writeSlice(
        _ slice: RecordSlice, _ stored: UnsafeRawBufferPointer, expiresAt: UnixMillis, pointer: Int, now: UnixMillis,
        _ out: UnsafeMutableRawBufferPointer, _ at: Int
    ) -> Int {
        let length = Int(slice.length)
        Self.copy(
            UnsafeRawBufferPointer(rebasing: stored[Int(slice.start)..<Int(slice.start) + length]), to: out, at: at)
        let ttl = RegistryPolicy.answerTTL(expiresAt: expiresAt, now: now, answerTTLSeconds: answerTTLSeconds)
        Self.put32(ttl, out, at + Int(slice.ttlAt))
        if slice.pointerAt >= 0 { Self.put16(0xC000 | UInt16(pointer), out, at + Int(slice.pointerAt)) }
        return at + length
    }

    /// Copies a zone record, writing its TTL (and the SOA's MINIMUM, its last field) and aiming
    /// its pointers at the zone's name in the question.
    private func write(
        _ template: Template, minimum: UInt32?, ttl: UInt32, pointer: Int, _ out: UnsafeMutableRawBufferPointer,
        _ at: Int
    ) -> Int {
        template.bytes.withUnsafeBytes { Self.copy($0, to: out, at: at) }
        Self.put32(ttl, out, at + template.ttlAt)
        if let minimum { Self.put32(minimum, out, at + template.bytes.count - 4) }
        for offset in template.pointers { Self.put16(0xC000 | UInt16(pointer), out, at + offset) }
        return at + template.bytes.count
    }

    @inline(__always)
    private static func copy(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutableRawBufferPointer, at offset: Int) {
        guard !bytes.isEmpty else { return }
        UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + bytes.count]).copyMemory(from: bytes)
    }

    @inline(__always)
    private static func put16(_ value: UInt16, _ out: UnsafeMutableRawBufferPointer, _ offset: Int) {
        out[offset] = UInt8(value >> 8)
        out[offset + 1] = UInt8(value & 0xFF)
    }

    @inline(__always)
    private static func put32(_ value: UInt32, _ out: UnsafeMutableRawBufferPointer, _ offset: Int) {
        put16(UInt16(value >> 16), out, offset)
        put16(UInt16(value & 0xFFFF), out, offset + 2)
    }
}
