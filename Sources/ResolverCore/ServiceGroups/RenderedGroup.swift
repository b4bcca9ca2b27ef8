// ServiceGroups/: one service group's DNS records, written once by `MessageWriter` when the group
// changes, as slices of one buffer: each healthy member's address record (owner: the question),
// its SRV record (owner: the question) and the address record of its SRV target
// (`<id>.<group>.<domain>`, owner compressed to a pointer that is aimed at the group's name in
// the question when served). Every answer kind — group A / AAAA / ANY / SRV, a member's name,
// `_<service>._<proto>.<group>` SRV — is a list of members into those slices, rotated by moving
// the list's start (`AnswerList.next`), never by writing again. `ClusterZone` serves them.
//
// Memory (`approximateBytes`, bounded in ClusterZoneTests "memory"): per member its records (an
// address record of 16 or 28 octets, an SRV of 18 + its target name, the target's address record
// of ~30 + its id), a 64-octet entry, its id label, 4 octets in each list naming it (A or AAAA,
// ANY, SRV, and one per `_service._proto` name it offers, at most 33) and a hash-table slot; per
// `_service._proto` name its key, an entry and a list. Bound: 1 KB per member + 0.4 KB per
// `_service._proto` name. Measured: ~840 octets per member with 63-octet labels and 33 service
// names each, ~310 with short names (16 members a group, no tags); ~250 octets per service name.

/// A record written once: where it lies in its group's buffer, where its TTL is, and where a
/// compression pointer to aim at the group's name in the question is.
package struct RecordSlice: Sendable, Equatable {
    package var start: Int32 = 0
    /// 0: no such record.
    package var length: Int32 = 0
    /// Offset of the TTL field from `start`.
    package var ttlAt: Int16 = 0
    /// Offset from `start` of a compression pointer to aim at the group's name in the question;
    /// -1 when the record has none.
    package var pointerAt: Int16 = -1

    package var exists: Bool { length > 0 }
}

/// A member as its group's answers need it.
package struct RenderedMember: Sendable {
    /// Its id as one wire label (length octet first), at `labelStart` in the group's `labels`.
    package var labelStart: Int32
    package var labelLength: UInt8
    package var healthy: Bool
    package var isV6: Bool
    package var expiresAt: UnixMillis
    /// Everything but the expiry that the records show: a change of it needs a new rendering,
    /// a heartbeat (expiry only) does not.
    package var fingerprint: Int
    /// A or AAAA with the question as owner (healthy members only).
    package var address = RecordSlice()
    /// SRV with the question as owner (healthy members with a port).
    package var service = RecordSlice()
    /// A or AAAA of the SRV target, `<id>.<group>.<domain>`.
    package var target = RecordSlice()
}

/// Members in their stored order, and where the next answer starts (the rotation).
package struct AnswerList: Sendable {
    package var members: [Int32] = []
    package var next: Int32 = 0
    /// Octets of the answer section's records (and of the additional section's, for SRV):
    /// the same in every rotation.
    package var answerBytes = 0
    package var additionalBytes = 0

    /// The start for this answer; moves the next one on by one place.
    package mutating func rotate() -> Int {
        let start = Int(next)
        if members.count > 1 { next = Int32((start + 1) % members.count) }
        return start
    }
}

/// A `_<service>._<proto>` name of a group: some member offers it (healthy or not).
package struct RenderedService: Sendable {
    /// `_<service>` and `_<proto>` as wire labels, lower case, at `keyStart` in `labels`.
    package var keyStart: Int32
    package var keyLength: UInt8
    /// Index into the group's `lists`.
    package var list: Int32
}

/// Hash → entry for names looked up straight from a query's bytes, without allocating: entries
/// with equal hashes are chained, and the caller confirms each candidate against the bytes.
package struct LabelTable: Sendable {
    private var first: [UInt64: Int32] = [:]
    private var chain: [Int32] = []

    package init() {}

    /// Adds entry number `chain.count` under `hash`; entries must be added in order 0, 1, 2….
    package mutating func append(hash: UInt64) {
        chain.append(first[hash] ?? -1)
        first[hash] = Int32(chain.count - 1)
    }

    /// The first entry under `hash` that `matches`.
    package func find(hash: UInt64, _ matches: (Int) -> Bool) -> Int? {
        guard var entry = first[hash] else { return nil }
        while entry >= 0 {
            if matches(Int(entry)) { return Int(entry) }
            entry = chain[Int(entry)]
        }
        return nil
    }

    /// FNV-1a over `bytes` in lower case.
    @inline(__always)
    package static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(DomainName.lower(byte))) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    /// Octets held, counted as Swift lays them out (a dictionary's slot as key + value + a
    /// control octet, at its 75 % load).
    var approximateBytes: Int {
        RenderedGroup.arrayBytes(chain.capacity, of: Int32.self) + first.capacity * 13 + 48
    }
}

/// One group's records and answers.
package struct RenderedGroup: Sendable {
    /// The group's name as one wire label, lower case.
    package let key: [UInt8]
    package var buffer: [UInt8]
    /// Member ids and service keys, as wire labels.
    package var labels: [UInt8]
    package var members: [RenderedMember]
    package var memberTable: LabelTable
    /// `Lists.a`, `.aaaa`, `.any`, `.srv`, then one per `services` entry.
    package var lists: [AnswerList]
    package var services: [RenderedService]
    package var serviceTable: LabelTable

    /// The fixed places in `lists`.
    package enum Lists {
        package static let a = 0
        package static let aaaa = 1
        package static let any = 2
        package static let srv = 3
    }

    /// Writes the records of `members` (a group's, sorted by id) under `domain`; nil when the
    /// group's name cannot be a DNS name there (it could never be asked for). A member whose
    /// label or records cannot be written is left out of the answers that need them: never the
    /// whole group. Members of `previous` (the group's last rendering) whose records would not
    /// change are copied from it instead of written again: a change costs one member's writing
    /// and a copy of the others' bytes.
    package static func render(
        group: String, members: [Member], domain: DomainName, reusing previous: RenderedGroup? = nil
    ) -> RenderedGroup? {
        guard let key = label(group), let groupName = DomainName(wire: key + domain.wire) else { return nil }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(members.count * (64 + 2 * groupName.wire.count))
        var labels: [UInt8] = []
        var rendered: [RenderedMember] = []
        var memberTable = LabelTable()
        var sources: [Member] = []
        rendered.reserveCapacity(members.count)
        sources.reserveCapacity(members.count)
        for member in members {
            guard let id = label(member.id) else { continue }
            var entry = RenderedMember(
                labelStart: Int32(labels.count), labelLength: UInt8(id.count), healthy: member.isHealthy,
                isV6: member.address.isV6, expiresAt: member.expiresAt, fingerprint: fingerprint(member))
            labels += id
            id.withUnsafeBytes { memberTable.append(hash: LabelTable.hash($0)) }
            if member.isHealthy {
                if let previous, let old = id.withUnsafeBytes({ previous.member($0) }),
                    previous.members[old].fingerprint == entry.fingerprint
                {
                    let kept = previous.members[old]
                    entry.address = copy(kept.address, from: previous.buffer, to: &buffer)
                    entry.service = copy(kept.service, from: previous.buffer, to: &buffer)
                    entry.target = copy(kept.target, from: previous.buffer, to: &buffer)
                } else {
                    writeRecords(of: member, id: id, groupName: groupName, into: &buffer, entry: &entry)
                }
            }
            rendered.append(entry)
            sources.append(member)
        }

        var lists = [AnswerList](repeating: AnswerList(), count: 4)
        var services: [RenderedService] = []
        var serviceTable = LabelTable()
        for (index, member) in rendered.enumerated() {
            let address = member.address
            if address.exists {
                let list = member.isV6 ? Lists.aaaa : Lists.a
                lists[list].add(Int32(index), answer: address)
                lists[Lists.any].add(Int32(index), answer: address)
            }
            if member.service.exists {
                lists[Lists.srv].add(Int32(index), answer: member.service, additional: member.target)
            }
            // `_<service>._<proto>` names exist for every member offering them, healthy or not.
            let source = sources[index]
            guard source.port != nil, let proto = label("_" + source.proto) else { continue }
            var offered: [String] = []
            for name in [source.service].compactMap({ $0 }) + source.tags where !offered.contains(name) {
                offered.append(name)
                guard let service = label("_" + name) else { continue }
                let key = service + proto
                let found = key.withUnsafeBytes { wanted in
                    serviceTable.find(hash: LabelTable.hash(wanted)) { entry in
                        Self.equal(labels, services[entry].keyStart, services[entry].keyLength, wanted)
                    }
                }
                let entry: Int
                if let found {
                    entry = found
                } else {
                    services.append(
                        RenderedService(
                            keyStart: Int32(labels.count), keyLength: UInt8(key.count), list: Int32(lists.count)))
                    labels += key
                    lists.append(AnswerList())
                    key.withUnsafeBytes { serviceTable.append(hash: LabelTable.hash($0)) }
                    entry = services.count - 1
                }
                if member.service.exists {
                    lists[Int(services[entry].list)].add(
                        Int32(index), answer: member.service, additional: member.target)
                }
            }
        }
        for index in lists.indices { lists[index].members = compact(lists[index].members) }
        return RenderedGroup(
            key: key, buffer: compact(buffer), labels: compact(labels), members: compact(rendered),
            memberTable: memberTable, lists: compact(lists), services: compact(services), serviceTable: serviceTable)
    }

    /// Octets this group holds (`approximateBytes` of the zone adds them up).
    package var approximateBytes: Int {
        var total = MemoryLayout<RenderedGroup>.stride + Self.arrayBytes(key.capacity, of: UInt8.self)
        total += Self.arrayBytes(buffer.capacity, of: UInt8.self) + Self.arrayBytes(labels.capacity, of: UInt8.self)
        total += Self.arrayBytes(members.capacity, of: RenderedMember.self) + memberTable.approximateBytes
        total += Self.arrayBytes(lists.capacity, of: AnswerList.self)
        for list in lists { total += Self.arrayBytes(list.members.capacity, of: Int32.self) }
        total += Self.arrayBytes(services.capacity, of: RenderedService.self) + serviceTable.approximateBytes
        return total
    }

    /// An array's heap block: a 32-octet header and its elements (none for an empty array).
    static func arrayBytes<Element>(_ capacity: Int, of: Element.Type) -> Int {
        capacity == 0 ? 0 : 32 + capacity * MemoryLayout<Element>.stride
    }

    // MARK: Lookups from a query's bytes

    /// The member whose id is the wire label `label` (any letter case).
    package func member(_ label: UnsafeRawBufferPointer) -> Int? {
        memberTable.find(hash: LabelTable.hash(label)) { entry in
            Self.equal(labels, members[entry].labelStart, members[entry].labelLength, label)
        }
    }

    /// The list of the `_<service>._<proto>` name whose two wire labels are `key`.
    package func serviceList(_ key: UnsafeRawBufferPointer) -> Int? {
        serviceTable.find(hash: LabelTable.hash(key)) { entry in
            Self.equal(labels, services[entry].keyStart, services[entry].keyLength, key)
        }.map { Int(services[$0].list) }
    }

    /// Whether `bytes` (any letter case) equal the lower-case `length` octets at `start` of `stored`.
    static func equal(_ stored: [UInt8], _ start: Int32, _ length: UInt8, _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == Int(length) else { return false }
        var index = Int(start)
        for byte in bytes {
            guard DomainName.lower(byte) == stored[index] else { return false }
            index += 1
        }
        return true
    }

    // MARK: Writing

    /// A copy of `array` without the spare capacity its growth left.
    private static func compact<Element>(_ array: [Element]) -> [Element] { Array(array[...]) }

    /// `text` as one wire label, or nil when it cannot be one (empty, or over 63 octets).
    static func label(_ text: String) -> [UInt8]? {
        let bytes = Array(text.utf8)
        guard (1...DomainName.maxLabelLength).contains(bytes.count) else { return nil }
        return [UInt8(bytes.count)] + bytes
    }

    /// Writes `member`'s records (address; SRV and its target's address when it has a port) after
    /// a question for the group's name, so that owners compress to the question as they will in
    /// a reply, and appends them to `buffer`.
    private static func writeRecords(
        of member: Member, id: [UInt8], groupName: DomainName, into buffer: inout [UInt8], entry: inout RenderedMember
    ) {
        var writer = MessageWriter(id: 0, compression: .exactCase, reservingCapacity: 128 + 2 * groupName.wire.count)
        do throws(MessageWriteError) {
            try writer.add(Question(name: groupName, type: .a))
        } catch {
            return
        }
        let base = writer.bytes.count
        let type: RecordType = member.address.isV6 ? .aaaa : .a
        var address = write(
            &writer, ResourceRecord(name: groupName, type: type, ttl: 0, rdata: member.address.bytes), to: .answer)
        var service = RecordSlice()
        var target = RecordSlice()
        if address.exists, let port = member.port, let targetName = DomainName(wire: id + groupName.wire) {
            var rdata: [UInt8] = []
            rdata.reserveCapacity(6 + targetName.wire.count)
            rdata.appendU16(0)  // priority: all equal
            rdata.appendU16(1)  // weight: all equal; the order rotates instead
            rdata.appendU16(port)
            rdata += targetName.wire
            service = write(&writer, ResourceRecord(name: groupName, type: .srv, ttl: 0, rdata: rdata), to: .authority)
            if service.exists {
                target = write(
                    &writer, ResourceRecord(name: targetName, type: type, ttl: 0, rdata: member.address.bytes),
                    to: .additional)
                // An SRV whose target cannot be answered is left out with it.
                if target.exists {
                    target.pointerAt =
                        ownerPointer(in: writer.bytes, at: Int(target.start)).map { Int16($0 - Int(target.start)) } ?? -1
                } else {
                    service = RecordSlice()
                }
            }
        }
        // Offsets from the writer's bytes to `buffer`'s.
        let shift = Int32(buffer.count - base)
        if address.exists { address.start += shift }
        if service.exists { service.start += shift }
        if target.exists { target.start += shift }
        buffer.append(contentsOf: writer.bytes[base...])
        entry.address = address
        entry.service = service
        entry.target = target
    }

    /// Appends `slice`'s bytes from `old` to `buffer`; the slice as it lies there.
    private static func copy(_ slice: RecordSlice, from old: [UInt8], to buffer: inout [UInt8]) -> RecordSlice {
        guard slice.exists else { return RecordSlice() }
        var moved = slice
        moved.start = Int32(buffer.count)
        buffer.append(contentsOf: old[Int(slice.start)..<Int(slice.start + slice.length)])
        return moved
    }

    /// Adds `record`; an empty slice when the writer refuses it.
    private static func write(
        _ writer: inout MessageWriter, _ record: ResourceRecord, to section: MessageSection
    ) -> RecordSlice {
        let start = writer.bytes.count
        do throws(MessageWriteError) {
            try writer.add(record, to: section)
        } catch {
            return RecordSlice()
        }
        guard let ttl = writer.ttlOffsets.last, writer.bytes.count - start <= Int(UInt16.max) else {
            return RecordSlice()
        }
        return RecordSlice(start: Int32(start), length: Int32(writer.bytes.count - start), ttlAt: Int16(ttl - start))
    }

    /// Where the owner name at `start` ends in a compression pointer, if it does.
    static func ownerPointer(in bytes: [UInt8], at start: Int) -> Int? {
        var offset = start
        while offset < bytes.count {
            let length = Int(bytes[offset])
            if length == 0 { return nil }
            if length & 0xC0 == 0xC0 { return offset }
            offset += 1 + length
        }
        return nil
    }

    /// What the records show of `member`, but for its expiry.
    static func fingerprint(_ member: Member) -> Int {
        var hasher = Hasher()
        hasher.combine(member.address)
        hasher.combine(member.port)
        hasher.combine(member.service)
        hasher.combine(member.proto)
        hasher.combine(member.tags)
        hasher.combine(member.isHealthy)
        return hasher.finalize()
    }
}

extension AnswerList {
    fileprivate mutating func add(_ member: Int32, answer: RecordSlice, additional: RecordSlice = RecordSlice()) {
        members.append(member)
        answerBytes += Int(answer.length)
        additionalBytes += Int(additional.length)
    }
}
