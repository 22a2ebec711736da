import IPOPWire
@testable import IPOPTraversal

/// A minimal in-memory TURN server (RFC 8656, UDP, long-term credentials, one
/// allocation) for driving `TurnClient` in tests. Written against the spec, using the
/// module's codec.
struct FakeTurnServer {
    let address: Endpoint
    let relayed: Endpoint
    var realm = "ipop.test"
    var nonce = "nonce-1"
    var users: [String: String]
    /// Where the client's requests come from (its server-reflexive address).
    var clientAddress: Endpoint
    var allocated = false
    var allocationExpires: ContinuousClock.Instant?
    var permissions: [UInt32: ContinuousClock.Instant] = [:]
    var channels: [UInt16: Endpoint] = [:]
    /// Requests seen, in order.
    var requests: [StunMessage] = []
    /// If set, the next authenticated request gets 438 and this becomes the nonce.
    var rotateNonceTo: String?
    /// If set, success responses carry a MESSAGE-INTEGRITY computed with this wrong key.
    var corruptIntegrity = false

    init(address: Endpoint, relayed: Endpoint, clientAddress: Endpoint, users: [String: String]) {
        self.address = address
        self.relayed = relayed
        self.clientAddress = clientAddress
        self.users = users
    }

    /// Answers one request from the client (nil for indications it consumed).
    mutating func handle(_ bytes: [UInt8], now: ContinuousClock.Instant) -> [UInt8]? {
        guard let message = try? StunMessage.decode(bytes) else { return nil }
        if message.type.messageClass == .indication { return nil }
        requests.append(message)
        let method = message.type.method
        func error(_ code: Int, _ reason: String, _ extra: [StunAttribute] = [],
                   key: StunKey? = nil) -> [UInt8] {
            StunMessage(type: StunMessageType(method: method, messageClass: .errorResponse),
                        transactionID: message.transactionID,
                        attributes: [.errorCode(code: code, reason: reason)] + extra)
                .encode(integrity: key, fingerprint: true)
        }
        guard let username = message.username, message.realm != nil,
              StunMessage.checkIntegrity(bytes, key: .shortTerm(password: "")) != .absent else {
            return error(401, "Unauthorized", [.realm(realm), .nonce(nonce)])
        }
        guard let password = users[username], message.realm == realm else {
            return error(401, "Unauthorized", [.realm(realm), .nonce(nonce)])
        }
        let key = StunKey.longTerm(username: username, realm: realm, password: password)
        guard StunMessage.checkIntegrity(bytes, key: key) == .valid else {
            return error(401, "Unauthorized", [.realm(realm), .nonce(nonce)])
        }
        if let fresh = rotateNonceTo {
            rotateNonceTo = nil
            nonce = fresh
            return error(438, "Stale Nonce", [.realm(realm), .nonce(nonce)])
        }
        guard message.nonce == nonce else {
            return error(438, "Stale Nonce", [.realm(realm), .nonce(nonce)])
        }
        var attributes: [StunAttribute] = []
        switch method {
        case .allocate:
            guard !allocated else { return error(437, "Allocation Mismatch", key: key) }
            let lifetime = min(message.lifetime ?? 600, 3600)
            allocated = true
            allocationExpires = now.advanced(by: .seconds(Int64(lifetime)))
            attributes = [.xorRelayedAddress(.ipv4(relayed)), .xorMappedAddress(.ipv4(clientAddress)),
                          .lifetime(lifetime)]
        case .refresh:
            guard allocated else { return error(437, "Allocation Mismatch", key: key) }
            let lifetime = min(message.lifetime ?? 600, 3600)
            if lifetime == 0 { allocated = false }
            allocationExpires = now.advanced(by: .seconds(Int64(lifetime)))
            attributes = [.lifetime(lifetime)]
        case .createPermission:
            guard allocated, let peer = message.xorPeerAddress?.endpoint else { return error(400, "Bad Request", key: key) }
            permissions[peer.address] = now.advanced(by: .seconds(300))
        case .channelBind:
            guard allocated, let peer = message.xorPeerAddress?.endpoint else { return error(400, "Bad Request", key: key) }
            var number: UInt16?
            for case .channelNumber(let value) in message.attributes { number = value }
            guard let number, ChannelData.channelRange.contains(number) else { return error(400, "Bad Request", key: key) }
            if let bound = channels[number], bound != peer { return error(400, "Bad Request", key: key) }
            channels[number] = peer
            permissions[peer.address] = now.advanced(by: .seconds(300))
        default:
            return error(400, "Bad Request", key: key)
        }
        let response = StunMessage(type: StunMessageType(method: method, messageClass: .successResponse),
                                   transactionID: message.transactionID, attributes: attributes)
        return response.encode(integrity: corruptIntegrity ? .shortTerm(password: "bogus") : key, fingerprint: true)
    }

    /// What the relay sends to the peer for a client datagram (Send indication or
    /// ChannelData), honouring permissions; nil if dropped.
    func relayToPeer(_ bytes: [UInt8], now: ContinuousClock.Instant) -> (payload: [UInt8], peer: Endpoint)? {
        if ChannelData.looksLikeChannelData(bytes) {
            guard let frame = try? ChannelData.decode(bytes), let peer = channels[frame.channel] else { return nil }
            return (frame.payload, peer)
        }
        guard let message = try? StunMessage.decode(bytes), message.type.method == .send,
              message.type.messageClass == .indication,
              let peer = message.xorPeerAddress?.endpoint, let data = message.data,
              let expiry = permissions[peer.address], now < expiry else { return nil }
        return (data, peer)
    }

    /// What the relay sends to the client for data from `peer`; nil if no permission.
    func relayFromPeer(_ payload: [UInt8], peer: Endpoint, now: ContinuousClock.Instant,
                       id: TransactionID = TransactionID(high: 7, low: 7)) -> [UInt8]? {
        guard let expiry = permissions[peer.address], now < expiry else { return nil }
        if let number = channels.first(where: { $0.value == peer })?.key {
            return ChannelData(channel: number, payload: payload).encode(padded: true)
        }
        return StunMessage(type: StunMessageType(method: .data, messageClass: .indication), transactionID: id,
                           attributes: [.xorPeerAddress(.ipv4(peer)), .data(payload)]).encode()
    }
}
