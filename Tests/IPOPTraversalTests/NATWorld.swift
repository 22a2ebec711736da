import IPOPWire
@testable import IPOPTraversal

// An in-memory "NAT world" for end-to-end connectivity-check tests.
//
// The model (RFC 4787 vocabulary):
// * Each node has one UDP socket on a host address inside its LAN. Nodes in the same LAN
//   reach each other's host addresses directly (1 ms one way); any other private address
//   is unreachable (dropped).
// * A node either has a public host address (no NAT) or sits behind a NAT with one public
//   IP. Mapping is endpoint-independent (EIM: one public port per internal endpoint) or
//   address-and-port-dependent (APDM, "symmetric": a fresh public port per destination
//   IP:port). Public ports are handed out sequentially from 40000. Filtering is
//   endpoint-independent (EIF: anyone may reach a mapping), address-dependent (ADF: only
//   IPs this mapping has sent to) or address-and-port-dependent (APDF: only the exact
//   IP:ports it has sent to), evaluated when a packet arrives. No hairpinning; mappings do
//   not expire during a test.
//   Full cone = EIM+EIF, restricted cone = EIM+ADF, port-restricted cone = EIM+APDF,
//   symmetric = APDM+APDF.
// * The public Internet delivers every packet after 10 ms (no loss, no reordering).
// * One STUN server answers Binding requests with the source address it saw.
// * Each node owns an address on a TURN relay. By default the relay is abstract (no TURN
//   framing, no permission checks): what a node sends on path `.relay` takes 10 ms to
//   reach the relay and leaves from the relay address; whatever reaches the relay address
//   is handed to the node 10 ms later, tagged `.relay`. With `useTurn`, every node runs a
//   real `TurnClient` against its own `FakeTurnServer` (permissions enforced) through its
//   NAT on the same socket, and relayed probes travel as Send indications / ChannelData.
//
// Consequence: a cone node's server-reflexive address is reachable by a symmetric peer
// (from the new mapping the peer's NAT makes towards it) iff the cone side's filtering
// lets that new source port in: EIF always, ADF once the cone side has sent anything to
// the peer's public IP (its own probes do that), APDF never.

enum NATMapping { case endpointIndependent, addressAndPortDependent }
enum NATFiltering { case endpointIndependent, addressDependent, addressAndPortDependent }

struct NATBehavior {
    var mapping: NATMapping
    var filtering: NATFiltering

    static let fullCone = NATBehavior(mapping: .endpointIndependent, filtering: .endpointIndependent)
    static let restrictedCone = NATBehavior(mapping: .endpointIndependent, filtering: .addressDependent)
    static let portRestrictedCone = NATBehavior(mapping: .endpointIndependent, filtering: .addressAndPortDependent)
    static let symmetric = NATBehavior(mapping: .addressAndPortDependent, filtering: .addressAndPortDependent)
}

final class SimNAT {
    let publicIP: UInt32
    let behavior: NATBehavior
    private var nextPort: UInt16 = 40000
    private struct Key: Hashable { var inside: Endpoint; var destination: Endpoint? }
    private var ports: [Key: UInt16] = [:]
    private var mappings: [UInt16: (inside: Endpoint, contacted: Set<Endpoint>)] = [:]

    init(publicIP: UInt32, behavior: NATBehavior) {
        self.publicIP = publicIP
        self.behavior = behavior
    }

    /// Translates an outgoing packet's source, creating the mapping if needed.
    func outbound(from inside: Endpoint, to destination: Endpoint) -> Endpoint {
        let key = Key(inside: inside, destination: behavior.mapping == .endpointIndependent ? nil : destination)
        let port: UInt16
        if let existing = ports[key] {
            port = existing
        } else {
            port = nextPort
            nextPort += 1
            ports[key] = port
            mappings[port] = (inside, [])
        }
        mappings[port]?.contacted.insert(destination)
        return Endpoint(address: publicIP, port: port)
    }

    /// The inside endpoint for a packet arriving at `port` from `source`, or nil if filtered.
    func inbound(to port: UInt16, from source: Endpoint) -> Endpoint? {
        guard let mapping = mappings[port] else { return nil }
        switch behavior.filtering {
        case .endpointIndependent:
            return mapping.inside
        case .addressDependent:
            return mapping.contacted.contains { $0.address == source.address } ? mapping.inside : nil
        case .addressAndPortDependent:
            return mapping.contacted.contains(source) ? mapping.inside : nil
        }
    }
}

final class SimNode {
    let name: String
    let host: Endpoint
    let lan: Int
    let nat: SimNAT?
    let relay: Endpoint
    var binding: StunBindingClient
    var checker: ConnectivityChecker?
    var turn: TurnClient?
    var turnServer: FakeTurnServer?

    init(name: String, host: Endpoint, lan: Int, nat: SimNAT?, relay: Endpoint, stunServer: Endpoint, seed: UInt64) {
        self.name = name
        self.host = host
        self.lan = lan
        self.nat = nat
        self.relay = relay
        binding = StunBindingClient(configuration: .init(servers: [stunServer]), random: SplitMix64(seed: seed))
    }

    /// Host, server-reflexive (if different) and relayed candidates.
    var candidates: [Candidate] {
        var result = [Candidate(type: .host, endpoint: host)]
        if let reflexive = binding.reflexiveAddress, reflexive != host {
            result.append(Candidate(type: .serverReflexive, endpoint: reflexive))
        }
        if turn == nil || turn?.relayedAddress == relay {
            result.append(Candidate(type: .relayed, endpoint: relay))
        }
        return result
    }
}

final class NATWorld {
    let stunServer = ep("198.51.100.1:3478")
    private(set) var nodes: [SimNode] = []
    private(set) var now: ContinuousClock.Instant
    let start: ContinuousClock.Instant
    /// Every datagram a node sent: (time since start in ms, node, path, destination).
    private(set) var sent: [(ms: Int, node: Int, path: TransportPath, to: Endpoint)] = []

    private enum Hop {
        case toNode(Int, from: Endpoint, path: TransportPath)
        case toPublic(from: Endpoint, to: Endpoint)
        case toRelay(node: Int, destination: Endpoint)
    }

    private struct Delivery {
        var at: ContinuousClock.Instant
        var sequence: Int
        var hop: Hop
        var bytes: [UInt8]
    }

    private var queue: [Delivery] = []
    private var sequence = 0
    let useTurn: Bool
    /// Relayed datagrams each TURN server forwarded to peers.
    private(set) var relayedCount = 0

    init(useTurn: Bool = false) {
        self.useTurn = useTurn
        now = ContinuousClock.now
        start = now
    }

    /// Adds a node; `behavior` nil means a public host address.
    @discardableResult
    func addNode(_ name: String, host: String, lan: Int, behavior: NATBehavior?, publicIP: String? = nil,
                 sharedNAT: SimNAT? = nil) -> Int {
        let index = nodes.count
        let nat = sharedNAT ?? behavior.map { SimNAT(publicIP: Endpoint.parseIPv4(publicIP ?? "") ?? 0, behavior: $0) }
        let turnIP = (Endpoint.parseIPv4("192.0.2.10") ?? 0) + UInt32(index)
        let relay = Endpoint(address: turnIP, port: 49152)
        let node = SimNode(name: name, host: ep(host), lan: lan, nat: nat, relay: relay,
                           stunServer: stunServer, seed: UInt64(100 + index))
        if useTurn {
            let server = Endpoint(address: turnIP, port: 3478)
            node.turnServer = FakeTurnServer(address: server, relayed: relay, clientAddress: node.host,
                                             users: [name: "pw-\(name)"])
            node.turn = TurnClient(configuration: .init(server: server, username: name, password: "pw-\(name)"),
                                   random: SplitMix64(seed: UInt64(200 + index)))
        }
        nodes.append(node)
        return index
    }

    var elapsedMs: Int {
        let (seconds, attoseconds) = (now - start).components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    // MARK: Sending

    private func schedule(_ hop: Hop, bytes: [UInt8], after ms: Int) {
        sequence += 1
        queue.append(Delivery(at: now.after(ms: ms), sequence: sequence, hop: hop, bytes: bytes))
    }

    /// A node sends from its socket (`.socket`) or through its relay (`.relay`).
    func send(from index: Int, _ bytes: [UInt8], to destination: Endpoint, path: TransportPath) {
        let node = nodes[index]
        sent.append((elapsedMs, index, path, destination))
        if path == .relay, var turn = node.turn, let server = node.turnServer {
            let wrapped = try? turn.wrap(bytes, to: destination)
            node.turn = turn
            if let wrapped { send(from: index, wrapped, to: server.address, path: .socket) }
            return
        }
        if path == .relay {
            schedule(.toRelay(node: index, destination: destination), bytes: bytes, after: 10)
            return
        }
        if let peer = nodes.firstIndex(where: { $0.host == destination && $0.lan == node.lan }) {
            schedule(.toNode(peer, from: node.host, path: .socket), bytes: bytes, after: 1)
            return
        }
        if let nat = node.nat, nat.publicIP == destination.address { return }   // no hairpinning
        let source = node.nat?.outbound(from: node.host, to: destination) ?? node.host
        schedule(.toPublic(from: source, to: destination), bytes: bytes, after: 10)
    }

    private func deliver(_ delivery: Delivery) {
        switch delivery.hop {
        case .toRelay(let index, let destination):
            schedule(.toPublic(from: nodes[index].relay, to: destination), bytes: delivery.bytes, after: 10)
        case .toPublic(let source, let destination):
            if destination == stunServer {
                guard let request = try? StunMessage.decode(delivery.bytes), request.type == .bindingRequest else { return }
                let response = StunMessage(type: .bindingSuccess, transactionID: request.transactionID,
                                           attributes: [.xorMappedAddress(.ipv4(source))]).encode(fingerprint: true)
                schedule(.toPublic(from: stunServer, to: source), bytes: response, after: 10)
            } else if let index = nodes.firstIndex(where: { $0.turnServer?.address == destination }),
                      var server = nodes[index].turnServer {
                // TURN server, client side: requests, Send indications, ChannelData.
                server.clientAddress = source
                if let answer = server.handle(delivery.bytes, now: now) {
                    schedule(.toPublic(from: server.address, to: source), bytes: answer, after: 10)
                } else if let (payload, peer) = server.relayToPeer(delivery.bytes, now: now) {
                    relayedCount += 1
                    schedule(.toPublic(from: server.relayed, to: peer), bytes: payload, after: 10)
                }
                nodes[index].turnServer = server
            } else if let index = nodes.firstIndex(where: { $0.relay == destination }) {
                if let server = nodes[index].turnServer {
                    // TURN server, peer side: permission-checked, framed for the client.
                    if let framed = server.relayFromPeer(delivery.bytes, peer: source, now: now) {
                        schedule(.toPublic(from: server.address, to: server.clientAddress), bytes: framed, after: 10)
                    }
                } else {
                    schedule(.toNode(index, from: source, path: .relay), bytes: delivery.bytes, after: 10)
                }
            } else if let index = nodes.firstIndex(where: { $0.nat == nil && $0.host == destination }) {
                arrive(at: index, delivery.bytes, from: source, path: .socket)
            } else {
                for (index, node) in nodes.enumerated() {
                    guard let nat = node.nat, nat.publicIP == destination.address,
                          let inside = nat.inbound(to: destination.port, from: source), inside == node.host else { continue }
                    arrive(at: index, delivery.bytes, from: source, path: .socket)
                    return
                }
            }
        case .toNode(let index, let source, let path):
            arrive(at: index, delivery.bytes, from: source, path: path)
        }
    }

    private func arrive(at index: Int, _ bytes: [UInt8], from source: Endpoint, path: TransportPath) {
        let node = nodes[index]
        if path == .socket, node.binding.receive(bytes, from: source, now: now) { return }
        if path == .socket, var turn = node.turn, source == turn.configuration.server {
            let inbound = try? turn.unwrap(bytes, from: source, now: now)
            node.turn = turn
            if case .data(let payload, let peer) = inbound { arrive(at: index, payload, from: peer, path: .relay) }
            return
        }
        guard var checker = node.checker else { return }
        let replies = checker.receive(bytes, from: source, path: path, now: now)
        node.checker = checker
        for probe in replies { send(from: index, probe.bytes, to: probe.destination, path: probe.path) }
    }

    // MARK: Running

    /// Advances time in 5 ms steps, delivering packets and ticking every state machine.
    func run(forMs duration: Int, until done: () -> Bool = { false }) {
        let end = now.after(ms: duration)
        while now < end, !done() {
            now = now.after(ms: 5)
            while let next = queue.indices.filter({ queue[$0].at <= now })
                .min(by: { (queue[$0].at, queue[$0].sequence) < (queue[$1].at, queue[$1].sequence) }) {
                deliver(queue.remove(at: next))
            }
            for (index, node) in nodes.enumerated() {
                for datagram in node.binding.tick(now: now) {
                    send(from: index, datagram.bytes, to: datagram.destination, path: .socket)
                }
                if var turn = node.turn {
                    let datagrams = turn.tick(now: now)
                    node.turn = turn
                    for bytes in datagrams { send(from: index, bytes, to: turn.configuration.server, path: .socket) }
                }
                if var checker = node.checker {
                    let probes = checker.tick(now: now)
                    node.checker = checker
                    for probe in probes { send(from: index, probe.bytes, to: probe.destination, path: probe.path) }
                }
            }
        }
    }

    /// Every node asks the STUN server for its reflexive address.
    func gather() {
        for (index, node) in nodes.enumerated() {
            for datagram in node.binding.start(now: now) {
                send(from: index, datagram.bytes, to: datagram.destination, path: .socket)
            }
            if var turn = node.turn {
                let datagrams = turn.start(now: now)
                node.turn = turn
                for bytes in datagrams { send(from: index, bytes, to: turn.configuration.server, path: .socket) }
            }
        }
        run(forMs: 1000) {
            self.nodes.allSatisfy { $0.binding.reflexiveAddress != nil && ($0.turn?.isAllocated ?? true) }
        }
    }

    /// Gathers, exchanges candidates between nodes `a` and `b` (a controlling) and runs
    /// both checkers until both finish (at most 12 s).
    func connect(_ a: Int, _ b: Int, key: StunKey = .shortTerm(password: "overlay-secret")) {
        gather()
        let localA = nodes[a].candidates
        let localB = nodes[b].candidates
        nodes[a].checker = ConnectivityChecker(
            configuration: .init(localID: nodes[a].name, remoteID: nodes[b].name, key: key, controlling: true),
            local: localA, remote: localB, random: SplitMix64(seed: 11))
        nodes[b].checker = ConnectivityChecker(
            configuration: .init(localID: nodes[b].name, remoteID: nodes[a].name, key: key, controlling: false),
            local: localB, remote: localA, random: SplitMix64(seed: 22))
        for index in [a, b] {
            guard var checker = nodes[index].checker else { continue }
            let probes = checker.start(now: now)
            nodes[index].checker = checker
            for probe in probes { send(from: index, probe.bytes, to: probe.destination, path: probe.path) }
        }
        run(forMs: 12_000) {
            [a, b].allSatisfy { self.nodes[$0].checker.map { $0.state != .checking } ?? true }
        }
    }
}
