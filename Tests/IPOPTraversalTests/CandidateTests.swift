import IPOPWire
import Testing
@testable import IPOPTraversal

@Suite struct CandidateTests {
    @Test func priorityFormula() {
        // (2^24)·126 + (2^8)·65535 + (256 − 1)
        #expect(Candidate.priority(type: .host) == 2_130_706_431)
        #expect(Candidate.priority(type: .peerReflexive) == 1_862_270_975)
        #expect(Candidate.priority(type: .serverReflexive) == 1_694_498_815)
        #expect(Candidate.priority(type: .relayed) == 16_777_215)
        #expect(Candidate.priority(type: .host, localPreference: 0, componentID: 2) == 126 << 24 + 254)
    }

    @Test func pairPriorityFormula() {
        // 2^32·MIN(G,D) + 2·MAX(G,D) + (G>D ? 1 : 0)
        #expect(CandidatePair.priority(controlling: 10, controlled: 20) == (10 << 32) + 40)
        #expect(CandidatePair.priority(controlling: 20, controlled: 10) == (10 << 32) + 41)
        // Out-of-range (wire-supplied) priorities are clamped, never overflow.
        #expect(CandidatePair.priority(controlling: .max, controlled: .max)
                == CandidatePair.priority(controlling: 0x7FFF_FFFF, controlled: 0x7FFF_FFFF))
        let local = Candidate(type: .host, endpoint: ep("10.0.0.1:1"))
        let remote = Candidate(type: .relayed, endpoint: ep("192.0.2.1:2"))
        #expect(CandidatePair(local: local, remote: remote, controlling: true).priority
                == CandidatePair.priority(controlling: local.priority, controlled: remote.priority))
        #expect(CandidatePair(local: local, remote: remote, controlling: false).priority
                == CandidatePair.priority(controlling: remote.priority, controlled: local.priority))
    }

    @Test func textRoundTrip() throws {
        let candidates = [
            Candidate(type: .host, endpoint: ep("10.0.0.2:5800")),
            Candidate(type: .serverReflexive, endpoint: ep("203.0.113.7:61022")),
            Candidate(type: .peerReflexive, endpoint: ep("203.0.113.7:61023")),
            Candidate(type: .relayed, endpoint: ep("198.51.100.9:49152"), localPreference: 7),
        ]
        #expect(candidates[0].description == "host 10.0.0.2:5800 2130706431")
        let text = Candidate.encodeList(candidates)
        #expect(text == "host 10.0.0.2:5800 2130706431;srflx 203.0.113.7:61022 1694498815;"
                + "prflx 203.0.113.7:61023 1862270975;relay 198.51.100.9:49152 2047")
        #expect(try Candidate.parseList(text) == candidates)
        #expect(try Candidate.parseList(" host  10.0.0.2:5800 2130706431 ; ;") == [candidates[0]])
        #expect(try Candidate.parseList("") == [])
    }

    @Test(arguments: [
        ("", CandidateParseError.empty),
        ("host 10.0.0.2:5800", .wrongFieldCount(2)),
        ("host 10.0.0.2:5800 1 2", .wrongFieldCount(4)),
        ("stun 10.0.0.2:5800 1", .unknownType("stun")),
        ("HOST 10.0.0.2:5800 1", .unknownType("HOST")),
        ("host 10.0.0.256:5800 1", .invalidEndpoint("10.0.0.256:5800")),
        ("host 10.0.0.2:0 1", .invalidEndpoint("10.0.0.2:0")),
        ("host 10.0.0.2:+80 1", .invalidEndpoint("10.0.0.2:+80")),
        ("host 10.0.0.2:65536 1", .invalidEndpoint("10.0.0.2:65536")),
        ("host [::1]:80 1", .invalidEndpoint("[::1]:80")),
        ("host 10.0.0.2 1", .invalidEndpoint("10.0.0.2")),
        ("host 10.0.0.2:80 0", .invalidPriority("0")),
        ("host 10.0.0.2:80 2147483648", .invalidPriority("2147483648")),
        ("host 10.0.0.2:80 +5", .invalidPriority("+5")),
        ("host 10.0.0.2:80 99999999999999999999", .invalidPriority("99999999999999999999")),
    ])
    func parseErrors(text: String, error: CandidateParseError) {
        #expect(throws: error) { try Candidate(parsing: text) }
    }

    @Test func listLimits() {
        let one = "host 10.0.0.2:5800 1"
        let many = Array(repeating: one, count: 33).joined(separator: ";")
        #expect(throws: CandidateParseError.tooManyCandidates(33)) { try Candidate.parseList(many) }
        let long = String(repeating: " ", count: 5000)
        #expect(throws: CandidateParseError.tooLong(5000)) { try Candidate.parseList(long) }
        #expect(throws: CandidateParseError.wrongFieldCount(1)) { try Candidate.parseList("\(one);junk") }
    }

    @Test func pairOrdering() {
        let host = Candidate(type: .host, endpoint: ep("10.0.0.1:1"))
        let relay = Candidate(type: .relayed, endpoint: ep("192.0.2.1:2"))
        let remoteHost = Candidate(type: .host, endpoint: ep("10.0.0.9:1"))
        let remoteSrflx = Candidate(type: .serverReflexive, endpoint: ep("203.0.113.9:1"))
        let remoteRelay = Candidate(type: .relayed, endpoint: ep("192.0.2.9:2"))
        let pairs = [
            CandidatePair(local: relay, remote: remoteHost, controlling: true),
            CandidatePair(local: host, remote: remoteRelay, controlling: true),
            CandidatePair(local: host, remote: remoteSrflx, controlling: true),
            CandidatePair(local: host, remote: remoteHost, controlling: true),
        ].sorted(by: CandidatePair.checkOrder)
        #expect(pairs.map(\.isDirect) == [true, true, false, false])
        #expect(pairs[0].remote == remoteHost)
        #expect(pairs[1].remote == remoteSrflx)
        #expect(pairs[2].path == .socket && pairs[2].remote == remoteRelay)
        #expect(pairs[3].path == .relay)

        // Preference among working pairs: direct first even if slower, then RTT.
        var slowDirect = CandidatePair(local: host, remote: remoteSrflx, controlling: true)
        slowDirect.rtt = .milliseconds(90)
        var fastDirect = CandidatePair(local: host, remote: remoteHost, controlling: true)
        fastDirect.rtt = .milliseconds(2)
        var fastRelay = CandidatePair(local: relay, remote: remoteHost, controlling: true)
        fastRelay.rtt = .milliseconds(1)
        let preferred = [fastRelay, slowDirect, fastDirect].sorted(by: CandidatePair.preferenceOrder)
        #expect(preferred == [fastDirect, slowDirect, fastRelay])
    }
}
