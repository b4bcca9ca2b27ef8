// ServiceGroups/: the cluster zone on the query path. The zone's replies are written from groups
// rendered once per change (ResolverCore's `ClusterZone`, `RenderedGroup`); this file keeps them
// current and serves them:
// - the registry's observer re-renders each group a change touches (register, deregister, a
//   health change, a mirrored or etcd change, load, reset) from the registry's view, outside the
//   serving lock, and swaps the result in; a heartbeat (an expiry and nothing else changed) only
//   rewrites the member's expiry. A new rendering copies the records of the group's unchanged
//   members from the last one and writes only the changed member's;
// - a policy observer puts a reloaded `cluster.answer_ttl_s` in place (TTLs are written per
//   reply, so nothing needs rendering again);
// - `reply` runs on the listener's thread before the cache: a name outside the zone costs a
//   suffix comparison; one inside is answered under one short lock (rotation moves a list's
//   start, so it happens under the lock too).

import NIOCore
import Synchronization

/// Answers for the cluster zone.
public final class ClusterAnswers: Sendable {
    public let domain: DomainName
    let registry: ServiceRegistry
    private let zone: Mutex<ClusterZone>
    /// Serialises re-renderings, so a slower one cannot put an older view in place of a newer.
    private let rendering = Mutex<Void>(())
    private let domainLabels: Int
    private let renderCount = Atomic<Int>(0)

    public init(domain: DomainName, registry: ServiceRegistry) {
        self.domain = domain.lowercased
        self.registry = registry
        domainLabels = self.domain.labelCount
        zone = Mutex(ClusterZone(domain: self.domain, answerTTLSeconds: registry.policy.answerTTLSeconds))
        registry.observe { [weak self] changes in self?.apply(changes) }
        registry.observePolicy { [weak self] policy in
            self?.zone.withLock { $0.answerTTLSeconds = policy.answerTTLSeconds }
        }
        renderAll()
    }

    // MARK: Keeping it current

    /// Renders every group of the registry again (at start; a registry already loaded).
    func renderAll() {
        rendering.withLock { _ in
            let groups = registry.snapshot()
            let rendered = groups.map { RenderedGroup.render(group: $0.group, members: $0.members, domain: domain) }
            renderCount.add(groups.count, ordering: .relaxed)
            zone.withLock { zone in
                var fresh = ClusterZone(domain: domain, answerTTLSeconds: zone.answerTTLSeconds)
                for (index, group) in groups.enumerated() { fresh.install(rendered[index], for: group.group) }
                zone = fresh
            }
        }
    }

    /// Renders the groups `changes` touch again; renewals only move expiries.
    private func apply(_ changes: [RegistryChange]) {
        rendering.withLock { _ in
            var touched: [String] = []
            zone.withLock { zone in
                for change in changes {
                    switch change {
                    case .put(let member):
                        if !touched.contains(member.group), !zone.renew(member) { touched.append(member.group) }
                    case .delete(let group, _):
                        if !touched.contains(group) { touched.append(group) }
                    }
                }
            }
            guard !touched.isEmpty else { return }
            renderCount.add(touched.count, ordering: .relaxed)
            let previous = zone.withLock { zone in touched.map { zone.rendered($0) } }
            let rendered = touched.enumerated().map { index, group in
                registry.members(of: group).flatMap {
                    RenderedGroup.render(group: group, members: $0, domain: domain, reusing: previous[index])
                }
            }
            zone.withLock { zone in
                for (index, group) in touched.enumerated() { zone.install(rendered[index], for: group) }
            }
        }
    }

    /// Groups rendered so far (a heartbeat renders none).
    var renders: Int { renderCount.load(ordering: .relaxed) }

    /// Octets the rendered zone holds.
    public var approximateBytes: Int { zone.withLock { $0.approximateBytes } }

    // MARK: Serving

    /// The reply to `query` (read into `view`), or nil when its name is not in the zone.
    public func reply(
        query: UnsafeRawBufferPointer, view: QueryView, transport: Transport, allocator: ByteBufferAllocator
    ) -> ByteBuffer? {
        guard view.recordClass == .in else { return nil }
        let name = UnsafeRawBufferPointer(rebasing: query[DNSHeader.length..<view.nameEnd])
        switch ClusterName.locate(name, in: domain.wire, domainLabels: domainLabels) {
        case .outside:
            return nil
        case .inZone(let located):
            return serve(
                name: name, located: located, query: query, view: view, transport: transport, allocator: allocator)
        case .compressed:
            // A question name with a compression pointer (into the header: legal, if odd) is
            // read whole first.
            guard let expanded = try? WireNames.read(query, at: DNSHeader.length) else { return nil }
            return expanded.wire.withUnsafeBytes { name in
                guard case .inZone(let located) = ClusterName.locate(name, in: domain.wire, domainLabels: domainLabels)
                else { return nil }
                return serve(
                    name: name, located: located, query: query, view: view, transport: transport, allocator: allocator)
            }
        }
    }

    private func serve(
        name: UnsafeRawBufferPointer, located: ClusterName, query: UnsafeRawBufferPointer, view: QueryView,
        transport: Transport, allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        let now = registry.clock.now()
        let degraded = registry.isDegraded
        return zone.withLock { zone in
            zone.reply(
                name: name, located: located, query: query, view: view, now: now, degraded: degraded,
                transport: transport,
                allocator: allocator)
        }
    }

    /// The answer to `question` as records (for tests and tools; DNS goes through `reply`), or
    /// nil when it is not in the zone. Asked over TCP, without EDNS.
    public func answer(_ question: Question) -> LocalAnswer? {
        var query = MessageWriter(id: 0, flags: [.rd])
        do throws(MessageWriteError) {
            try query.add(question)
        } catch {
            return nil
        }
        let bytes = query.bytes
        return bytes.withUnsafeBytes { raw -> LocalAnswer? in
            guard let view = try? QueryReader.read(raw),
                let reply = reply(query: raw, view: view, transport: .tcp, allocator: ByteBufferAllocator()),
                let message = try? MessageReader.decode(
                    reply.getBytes(at: reply.readerIndex, length: reply.readableBytes) ?? [])
            else { return nil }
            return LocalAnswer(
                rcode: message.rcode, answers: message.answers, authorities: message.authorities,
                additionals: message.additionals)
        }
    }
}
