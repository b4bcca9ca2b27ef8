// Fuzz/fuzz-api-json: libFuzzer target for the HTTP API's JSON bodies. The input is a request
// body, given to every decoder that reads one: a registration (PUT /v1/groups/{group}/members/
// {id}, Registration.member), a cache flush (POST /v1/cache/flush, AdminAPI.flush), and the
// registry feed's change records (supervisor → workers, RegistryChangeRecord). Each must decode
// or name the bad field, never trap. A registration that is accepted must survive the feed's JSON
// unchanged, and the cluster zone's answers about it must encode.

import Foundation

@testable import Resolver

private let now: UnixMillis = 1_700_000_000_000
private let clusterDomain = DomainName("cluster.internal.") ?? .root

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Data(bytes: data, count: size)

    do {
        let member = try Registration.member(group: "web", id: "a1", body: body, now: now)
        checkFeedRoundTrip(member)
        checkClusterAnswers(member)
    } catch {
        _ = error.description
    }

    _ = try? AdminAPI.flush(from: body)

    if let record = try? JSONDecoder().decode(RegistryChangeRecord.self, from: body) {
        _ = try? record.change()
    }
    return 0
}

/// The registry sends members to worker processes as MemberRecord JSON: nothing may change.
private func checkFeedRoundTrip(_ member: Member) {
    do {
        let json = try JSONEncoder().encode(RegistryChangeRecord(.put(member)))
        let change = try JSONDecoder().decode(RegistryChangeRecord.self, from: json).change()
        guard case .put(let back) = change, back == member else {
            fatalError("member changed on its way through the registry feed")
        }
    } catch {
        fatalError("registry feed cannot carry an accepted member: \(error)")
    }
}

/// What DNS clients see of the member: its group's A/AAAA/SRV, its own name, its services.
private func checkClusterAnswers(_ member: Member) {
    let registry = ServiceRegistry(store: MirrorStore(), policy: RegistryPolicy(), clock: WallClock { now })
    registry.mirror(all: [member])
    let cluster = ClusterAnswers(domain: clusterDomain, registry: registry)
    var names = ["\(member.group).cluster.internal.", "\(member.id).\(member.group).cluster.internal."]
    for service in [member.service].compactMap({ $0 }) + member.tags {
        names.append("_\(service)._\(member.proto).\(member.group).cluster.internal.")
    }
    for text in names {
        // Finding F2 (Fuzz/README.md) was a 63-octet service or tag, accepted though its SRV
        // owner `_<service>` cannot be a label; every name of an accepted member must exist.
        guard let name = DomainName(text) else { fatalError("no DNS name for an accepted member: \(text)") }
        for type in [RecordType.a, .aaaa, .srv, .any] {
            let question = Question(name: name, type: type)
            guard let answer = cluster.answer(question) else { fatalError("cluster zone does not answer \(question)") }
            let message = DNSMessage(
                id: 1, flags: [.qr, .aa], rcode: answer.rcode, questions: [question], answers: answer.answers,
                authorities: answer.authorities, additionals: answer.additionals)
            do {
                _ = try DNSCodec.encode(message)
            } catch {
                fatalError("cluster answer for \(question) does not encode: \(error)")
            }
        }
    }
}
