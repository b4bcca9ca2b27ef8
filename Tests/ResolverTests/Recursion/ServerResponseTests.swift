// Recursion/ServerResponse: what a server's response means, and what of it is believed —
// referrals, glue and bailiwick, lame servers, CNAME and DNAME chains, negative answers.

import Testing

@testable import Resolver

/// Records from presentation lines, for building responses.
func rr(_ text: String) throws -> ResourceRecord { try DNSCodec.record(fromPresentation: text) }

func name(_ text: String) throws -> DomainName { try #require(DomainName(text)) }

/// A response to `question` as a server would send it.
func response(
    to question: Question, rcode: ResponseCode = .noError, aa: Bool, answers: [String] = [], authorities: [String] = [],
    additionals: [String] = []
) throws -> DNSMessage {
    DNSMessage(
        id: 1, flags: aa ? [.qr, .aa] : [.qr], rcode: rcode, questions: [question], answers: try answers.map(rr),
        authorities: try authorities.map(rr), additionals: try additionals.map(rr))
}

@Suite("ServerResponse.classify")
struct ServerResponseTests {
    let soa = "inb.test. 300 IN SOA ns1.inb.test. nobody.invalid. 1 3600 1200 604800 60"

    func question(_ text: String, _ type: RecordType = .a) throws -> Question { Question(name: try name(text), type: type) }

    @Test func referralKeepsOnlyGlueForItsNameserversInsideTheSendingZone() throws {
        let asked = try question("www.inb.test.")
        let message = try response(
            to: asked, aa: false, authorities: ["inb.test. 86400 IN NS ns1.inb.test.", "inb.test. 86400 IN NS ns.other.lab."],
            additionals: [
                "ns1.inb.test. 86400 IN A 127.0.0.3",
                "ns.other.lab. 86400 IN A 6.6.6.6",  // outside test.: not the test. servers' to say
                "unrelated.test. 86400 IN A 6.6.6.7",  // not a nameserver of the referral
            ])
        let classified = ServerResponse.classify(message, question: asked, zone: try name("test."))
        guard case .referral(let cut, let ns, let glue) = classified else {
            Issue.record("expected a referral, got \(classified)")
            return
        }
        #expect(cut == (try name("inb.test.")))
        #expect(ns.count == 2)
        #expect(glue == [try rr("ns1.inb.test. 86400 IN A 127.0.0.3")])
    }

    @Test func upwardAndSidewaysReferralsAreLame() throws {
        let asked = try question("www.inb.test.")
        let upward = try response(to: asked, aa: false, authorities: [". 3600 IN NS a.root-servers.net."])
        #expect(!ServerResponse.classify(upward, question: asked, zone: try name("inb.test.")).isUsable)
        // The same zone again (a loop) and a zone not above the question.
        let same = try response(to: asked, aa: false, authorities: ["inb.test. 3600 IN NS ns1.inb.test."])
        #expect(!ServerResponse.classify(same, question: asked, zone: try name("inb.test.")).isUsable)
        let sideways = try response(to: asked, aa: false, authorities: ["other.test. 3600 IN NS ns1.other.test."])
        #expect(!ServerResponse.classify(sideways, question: asked, zone: try name("test.")).isUsable)
    }

    @Test func answersWithoutAAAreStillAnswers() throws {
        // RFC 2181 §5.4.1: lower credibility, not lame (Unbound and Knot Resolver use them).
        let asked = try question("www.inb.test.")
        let plain = try response(to: asked, aa: false, answers: ["www.inb.test. 300 IN A 192.0.2.1"])
        #expect(
            ServerResponse.classify(plain, question: asked, zone: try name("inb.test."))
                == .answer(chain: [], records: [try rr("www.inb.test. 300 IN A 192.0.2.1")]))
        // A priming reply without AA.
        let root = try question(".", .ns)
        let priming = try response(to: root, aa: false, answers: [". 86400 IN NS a.root-servers.test."])
        #expect(ServerResponse.classify(priming, question: root, zone: .root).isUsable)
        // An empty reply: NODATA that cannot be cached; but from a server offering recursion
        // without AA, a recursive resolver's cache talking (Unbound's REC_LAME).
        let empty = try response(to: asked, aa: false)
        #expect(ServerResponse.classify(empty, question: asked, zone: try name("inb.test.")) == .noData(chain: [], authority: []))
        var recursive = empty
        recursive.flags.insert(.ra)
        #expect(!ServerResponse.classify(recursive, question: asked, zone: try name("inb.test.")).isUsable)
        let refused = try response(to: asked, rcode: .refused, aa: false)
        #expect(!ServerResponse.classify(refused, question: asked, zone: try name("inb.test.")).isUsable)
        let servfail = try response(to: asked, rcode: .servFail, aa: true)
        #expect(!ServerResponse.classify(servfail, question: asked, zone: try name("inb.test.")).isUsable)
    }

    @Test func aReferralToItselfOrDataForAnotherZoneIsLameEvenWithAA() throws {
        let asked = try question("www.inb.test.", .aaaa)
        let zone = try name("inb.test.")
        let selfReferral = try response(
            to: asked, aa: true, authorities: ["inb.test. 3600 IN NS ns1.inb.test."],
            additionals: ["ns1.inb.test. 3600 IN A 127.0.0.4"])
        #expect(ServerResponse.classify(selfReferral, question: asked, zone: zone) == .lame(.referralToOwnZone(zone)))
        let foreign = try response(to: asked, aa: true, answers: ["www.hosts.lab. 300 IN AAAA 2001:db8::1"])
        #expect(ServerResponse.classify(foreign, question: asked, zone: zone) == .lame(.answerForAnotherName))
        // A referral below the zone but not towards the question.
        let away = try response(to: asked, aa: false, authorities: ["other.inb.test. 3600 IN NS ns1.other.inb.test."])
        #expect(!ServerResponse.classify(away, question: asked, zone: zone).isUsable)
    }

    @Test func recordsOffTheChainOrOutsideTheZoneAreDropped() throws {
        let asked = try question("www.inb.test.")
        let message = try response(
            to: asked, aa: true,
            answers: ["www.inb.test. 300 IN A 192.0.2.1", "www.hosts.lab. 300 IN A 6.6.6.6", "x.inb.test. 300 IN A 6.6.6.7"])
        #expect(
            ServerResponse.classify(message, question: asked, zone: try name("inb.test."))
                == .answer(chain: [], records: [try rr("www.inb.test. 300 IN A 192.0.2.1")]))
        // A forged answer for the question's name from a server outside its zone.
        #expect(!ServerResponse.classify(message, question: asked, zone: try name("other.test.")).isUsable)
    }

    @Test func aCNAMELeavingTheZoneIsAnAliasToFollow() throws {
        let asked = try question("start.inb.test.")
        let message = try response(
            to: asked, aa: true,
            answers: [
                "start.inb.test. 300 IN CNAME next.inb.test.", "next.inb.test. 300 IN CNAME mid.hosts.lab.",
                "mid.hosts.lab. 300 IN A 6.6.6.6",  // out of bailiwick: never believed
            ])
        let classified = ServerResponse.classify(message, question: asked, zone: try name("inb.test."))
        #expect(
            classified
                == .alias(
                    chain: [try rr("start.inb.test. 300 IN CNAME next.inb.test."), try rr("next.inb.test. 300 IN CNAME mid.hosts.lab.")],
                    target: try name("mid.hosts.lab.")))
    }

    @Test func aDNAMEIsSubstitutedHereNotTakenFromThePacket() throws {
        let asked = try question("www.d.inb.test.")
        let message = try response(
            to: asked, aa: true,
            answers: ["d.inb.test. 300 IN DNAME hosts.lab.", "www.d.inb.test. 300 IN CNAME evil.example."])
        guard case .alias(let chain, let target) = ServerResponse.classify(message, question: asked, zone: try name("inb.test."))
        else {
            Issue.record("expected an alias")
            return
        }
        #expect(target == (try name("www.hosts.lab.")))
        #expect(chain.count == 2)
        #expect(chain.last?.type == .cname)
        #expect(chain.last?.targetName == (try name("www.hosts.lab.")))
    }

    @Test func negativeAnswersCarryTheZonesSOAAndProofAsSent() throws {
        let asked = try question("nope.inb.test.")
        let zone = try name("inb.test.")
        let nx = try response(to: asked, rcode: .nxDomain, aa: true, authorities: [soa])
        #expect(ServerResponse.classify(nx, question: asked, zone: zone) == .nxdomain(chain: [], authority: [try rr(soa)]))
        let nodata = try response(to: try question("www.inb.test.", .aaaa), aa: true, authorities: [soa])
        #expect(
            ServerResponse.classify(nodata, question: try question("www.inb.test.", .aaaa), zone: zone)
                == .noData(chain: [], authority: [try rr(soa)]))
        // With DO: the NSEC records and the RRSIGs over them and the SOA come along, in order;
        // an RRSIG over something else and records of other zones do not.
        let nsec = "nope.inb.test. 300 IN NSEC x.inb.test. A RRSIG NSEC"
        let sigSOA = "inb.test. 300 IN RRSIG SOA 13 2 300 20300101000000 20200101000000 1 inb.test. AAAA"
        let sigNSEC = "nope.inb.test. 300 IN RRSIG NSEC 13 3 300 20300101000000 20200101000000 1 inb.test. AAAA"
        let sigA = "www.inb.test. 300 IN RRSIG A 13 3 300 20300101000000 20200101000000 1 inb.test. AAAA"
        let proved = try response(
            to: asked, rcode: .nxDomain, aa: true,
            authorities: [soa, sigSOA, nsec, sigNSEC, sigA, "lab. 300 IN NSEC z.lab. A"])
        #expect(
            ServerResponse.classify(proved, question: asked, zone: zone)
                == .nxdomain(chain: [], authority: try [soa, sigSOA, nsec, sigNSEC].map(rr)))
        // An SOA of another zone is not the zone's to give.
        let foreign = try response(
            to: asked, rcode: .nxDomain, aa: true,
            authorities: ["lab. 300 IN SOA ns.lab. nobody.invalid. 1 3600 1200 604800 60"])
        #expect(ServerResponse.classify(foreign, question: asked, zone: zone) == .nxdomain(chain: [], authority: []))
    }

    @Test func aCNAMELoopInOneResponseIsLame() throws {
        let asked = try question("a.inb.test.")
        let message = try response(
            to: asked, aa: true, answers: ["a.inb.test. 300 IN CNAME b.inb.test.", "b.inb.test. 300 IN CNAME a.inb.test."])
        #expect(!ServerResponse.classify(message, question: asked, zone: try name("inb.test.")).isUsable)
    }
}
