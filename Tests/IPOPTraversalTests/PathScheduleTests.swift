import IPOPWire
import Testing
@testable import IPOPTraversal

@Suite struct PathScheduleTests {
    let host = Candidate(type: .host, endpoint: ep("10.0.0.1:5800"))
    let relay = Candidate(type: .relayed, endpoint: ep("198.51.100.1:49152"))
    let peerSrflx = Candidate(type: .serverReflexive, endpoint: ep("203.0.113.2:5800"))
    let peerRelay = Candidate(type: .relayed, endpoint: ep("198.51.100.1:49153"))
    let t0 = ContinuousClock.now

    func pair(_ local: Candidate, _ remote: Candidate, rttMs: Int?) -> CandidatePair {
        var p = CandidatePair(local: local, remote: remote, controlling: true)
        p.rtt = rttMs.map { .milliseconds($0) }
        p.state = .succeeded
        return p
    }

    @Test func linkPathFollowsThePair() {
        let server = ep("198.51.100.1:3478")
        #expect(LinkPath(pair: pair(host, peerSrflx, rttMs: 1), turnServer: nil) == .direct(ep("203.0.113.2:5800")))
        #expect(LinkPath(pair: pair(host, peerRelay, rttMs: 1), turnServer: nil) == .peerRelay(ep("198.51.100.1:49153")))
        #expect(LinkPath(pair: pair(relay, peerSrflx, rttMs: 1), turnServer: server)
                == .relay(server: server, peer: ep("203.0.113.2:5800")))
        #expect(LinkPath(pair: pair(relay, peerSrflx, rttMs: 1), turnServer: nil) == nil)
        #expect(LinkPath.direct(ep("1.2.3.4:5")).kind == "direct")
        #expect(LinkPath.peerRelay(ep("1.2.3.4:5")).kind == "relay")
        #expect(LinkPath.relay(server: server, peer: ep("1.2.3.4:5")).peerEndpoint == ep("1.2.3.4:5"))
    }

    @Test func directBeatsRelayWhateverTheRTT() {
        let direct = pair(host, peerSrflx, rttMs: 50)
        let relayed = pair(relay, peerSrflx, rttMs: 1)
        #expect(PathSchedule.isBetter(direct, than: relayed, rttMargin: 0.8))
        #expect(!PathSchedule.isBetter(relayed, than: direct, rttMargin: 0.8))
        #expect(PathSchedule.isBetter(relayed, than: nil, rttMargin: 0.8))
    }

    @Test func lowerRTTWinsOnlyByAMargin() {
        let a = pair(host, peerSrflx, rttMs: 10)
        let b = pair(host, Candidate(type: .host, endpoint: ep("10.0.0.2:5800")), rttMs: 9)
        let c = pair(host, Candidate(type: .host, endpoint: ep("10.0.0.3:5800")), rttMs: 5)
        #expect(!PathSchedule.isBetter(b, than: a, rttMargin: 0.8))   // 9 ms vs 10 ms: noise
        #expect(PathSchedule.isBetter(c, than: a, rttMargin: 0.8))
        #expect(!PathSchedule.isBetter(a, than: a, rttMargin: 0.8))
    }

    @Test func relayPathIsRetriedForDirectThenMoves() {
        var s = PathSchedule(configuration: .init(directRetry: .seconds(30)))
        let relayed = pair(relay, peerSrflx, rttMs: 2)
        #expect(s.checkFinished(selected: relayed, pathWorks: false, now: t0) == .switchTo(relayed))
        #expect(s.current == relayed)
        #expect(!s.checkDue(now: t0 + .seconds(29)))
        #expect(s.checkDue(now: t0 + .seconds(30)))
        s.checkStarted()
        #expect(!s.checkDue(now: t0 + .seconds(31)))
        // The re-try finds the relay again: keep it, try again later.
        #expect(s.checkFinished(selected: relayed, pathWorks: true, now: t0 + .seconds(40)) == .keep)
        #expect(s.checkDue(now: t0 + .seconds(70)))
        // Then a direct path opens: move to it, and stop re-trying.
        let direct = pair(host, peerSrflx, rttMs: 3)
        s.checkStarted()
        #expect(s.checkFinished(selected: direct, pathWorks: true, now: t0 + .seconds(80)) == .switchTo(direct))
        #expect(s.nextCheck == nil)
        #expect(!s.checkDue(now: t0 + .seconds(1000)))
    }

    @Test func failedChecksBackOffButKeepAWorkingPath() {
        var s = PathSchedule(configuration: .init(failureBackoff: .seconds(5), failureBackoffCap: .seconds(12)))
        let relayed = pair(relay, peerRelay, rttMs: 2)
        _ = s.checkFinished(selected: relayed, pathWorks: false, now: t0)
        #expect(s.checkFinished(selected: nil, pathWorks: true, now: t0) == .keep)
        #expect(s.current == relayed)
        #expect(s.nextCheck == t0 + .seconds(5))
        _ = s.checkFinished(selected: nil, pathWorks: true, now: t0)
        #expect(s.nextCheck == t0 + .seconds(10))
        _ = s.checkFinished(selected: nil, pathWorks: false, now: t0)
        #expect(s.nextCheck == t0 + .seconds(12))
        #expect(s.current == nil)
        // A success resets the backoff; a link that is down takes whatever works.
        let direct = pair(host, peerSrflx, rttMs: 3)
        #expect(s.checkFinished(selected: direct, pathWorks: false, now: t0) == .switchTo(direct))
        s.pathLost(now: t0 + .seconds(1))
        #expect(s.current == nil && s.checkDue(now: t0 + .seconds(1)))
        #expect(s.checkFinished(selected: nil, pathWorks: false, now: t0 + .seconds(2)) == .keep)
        #expect(s.nextCheck == t0 + .seconds(7))
    }

    @Test func aLostOfferIsSentAgain() {
        var s = PathSchedule()
        s.pathLost(now: t0)
        #expect(s.checkDue(now: t0))
        s.offerSent(now: t0, timeout: .seconds(5))
        #expect(!s.checkDue(now: t0 + .seconds(4)))
        #expect(s.checkDue(now: t0 + .seconds(5)))   // no answer: ask again
        s.offerSent(now: t0 + .seconds(5), timeout: .seconds(5))
        s.checkStarted()                              // the answer came: the check runs
        #expect(!s.checkDue(now: t0 + .seconds(60)))
    }

    @Test func earlySuccessIsTakenOnlyWithoutAPath() {
        var s = PathSchedule()
        let direct = pair(host, peerSrflx, rttMs: 3)
        #expect(s.early(direct) == .switchTo(direct))
        #expect(s.early(pair(host, peerRelay, rttMs: 1)) == .keep)
    }
}
