import IPOPWire
import Testing
@testable import IPOPTraversal

@Suite struct RFC5769Tests {
    @Test func vectorFileHoldsAllFourSamples() throws {
        #expect(try loadStunVectors().map(\.section) == ["2.1", "2.2", "2.3", "2.4"])
    }

    @Test(arguments: ["2.1", "2.2", "2.3", "2.4"])
    func sampleParsesAndValidates(section: String) throws {
        let vector = try #require(try loadStunVectors().first { $0.section == section })
        let bytes = vector.bytes
        #expect(StunMessage.isStunPacket(bytes))
        let message = try StunMessage.decode(bytes)
        #expect(message.transactionID.bytes == Array(bytes[8..<20]))
        #expect(message.unknownComprehensionRequired.isEmpty)
        #expect(message.software == vector.software)
        if let username = vector.username { #expect(message.username == username) }
        if let realm = vector.realm { #expect(message.realm == realm) }
        if let nonce = vector.nonce { #expect(message.nonce == nonce) }

        #expect(StunMessage.checkIntegrity(bytes, key: vector.key) == (vector.message_integrity_valid ? .valid : .invalid))
        #expect(StunMessage.checkIntegrity(bytes, key: .shortTerm(password: "wrong")) == .invalid)
        switch vector.fingerprint_valid {
        case true?: #expect(StunMessage.checkFingerprint(bytes) == .valid)
        case false?: #expect(StunMessage.checkFingerprint(bytes) == .invalid)
        case nil: #expect(StunMessage.checkFingerprint(bytes) == .absent)
        }
    }

    @Test func requestTypesAndAttributes() throws {
        let vectors = try loadStunVectors()
        let request = try StunMessage.decode(vectors[0].bytes)
        #expect(request.type == .bindingRequest)
        #expect(request.attributes.map(\.type) == [0x8022, 0x0024, 0x8029, 0x0006, 0x0008, 0x8028])
        #expect(request.attributes[1] == .priority(0x6E00_01FF))
        #expect(request.attributes[2] == .iceControlled(tieBreaker: 0x932F_F9B1_5126_3B36))
        let longTerm = try StunMessage.decode(vectors[3].bytes)
        #expect(longTerm.type == .bindingRequest)
        #expect(longTerm.attributes.map(\.type) == [0x0006, 0x0015, 0x0014, 0x0008])
    }

    @Test func ipv4ResponseMapsToPublishedAddress() throws {
        let vector = try loadStunVectors()[1]
        let message = try StunMessage.decode(vector.bytes)
        #expect(message.type == .bindingSuccess)
        #expect(message.mappedAddress == .ipv4(ep("192.0.2.1:32853")))
        #expect(message.mappedAddress?.endpoint?.description == "\(vector.xor_mapped_address ?? ""):\(vector.port ?? 0)")
    }

    @Test func ipv6ResponseMapsToPublishedAddress() throws {
        let vector = try loadStunVectors()[2]
        let message = try StunMessage.decode(vector.bytes)
        let expected = try #require(IPv6Address("2001:db8:1234:5678:11:2233:4455:6677"))
        #expect(message.mappedAddress == .ipv6(expected, port: 32853))
        #expect(message.mappedAddress?.endpoint == nil)
        #expect(vector.xor_mapped_address.flatMap(IPv6Address.init) == expected)
    }

    /// Re-encoding each sample (integrity and fingerprint recomputed from the key)
    /// reproduces the published bytes. §2.1 pads with spaces, the others with zeros.
    @Test(arguments: ["2.1", "2.2", "2.3", "2.4"])
    func reencodingReproducesBytes(section: String) throws {
        let vector = try #require(try loadStunVectors().first { $0.section == section })
        let bytes = vector.bytes
        let message = try StunMessage.decode(bytes)
        let hasFingerprint = message.attribute(StunAttributeType.fingerprint) != nil
        let padding: UInt8 = section == "2.4" ? 0x00 : 0x20
        let encoded = message.encode(integrity: vector.key, fingerprint: hasFingerprint, padding: padding)
        #expect(Hex.encode(encoded) == vector.hex)
    }

    /// Every proper prefix of every sample is rejected with a typed error (no trap).
    @Test func everyPrefixIsRejected() throws {
        for vector in try loadStunVectors() {
            let bytes = vector.bytes
            for length in 0..<bytes.count {
                let prefix = Array(bytes[0..<length])
                #expect(throws: StunDecodeError.self) { try StunMessage.decode(prefix) }
                #expect(StunMessage.checkFingerprint(prefix) != .valid)
                #expect(StunMessage.checkIntegrity(prefix, key: vector.key) != .valid)
                if length < 20 { #expect(!StunMessage.isStunPacket(prefix)) }
            }
        }
    }

    /// Prefixes whose length field is patched to match still never trap: either a typed
    /// error or a (shorter) message.
    @Test func prefixesWithConsistentLengthNeverTrap() throws {
        for vector in try loadStunVectors() {
            let bytes = vector.bytes
            for length in stride(from: 20, to: bytes.count, by: 1) {
                var prefix = Array(bytes[0..<length])
                prefix[2] = UInt8((length - 20) >> 8)
                prefix[3] = UInt8((length - 20) & 0xFF)
                _ = try? StunMessage.decode(prefix)
                _ = StunMessage.checkIntegrity(prefix, key: vector.key)
                _ = StunMessage.checkFingerprint(prefix)
            }
        }
    }

    @Test func singleBitFlipsBreakFingerprintOrIntegrity() throws {
        let vector = try loadStunVectors()[1]
        let bytes = vector.bytes
        for index in 20..<bytes.count {
            var flipped = bytes
            flipped[index] ^= 0x01
            let ok = StunMessage.checkFingerprint(flipped) == .valid
                && StunMessage.checkIntegrity(flipped, key: vector.key) == .valid
            #expect(!ok, "flip at \(index) went unnoticed")
        }
    }
}

@Suite struct StunCodecTests {
    @Test func crc32CheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test func messageTypeInterleaving() {
        let cases: [(StunMethod, StunClass, UInt16)] = [
            (.binding, .request, 0x0001), (.binding, .indication, 0x0011),
            (.binding, .successResponse, 0x0101), (.binding, .errorResponse, 0x0111),
            (.allocate, .request, 0x0003), (.allocate, .errorResponse, 0x0113),
            (.send, .indication, 0x0016), (.data, .indication, 0x0017),
            (.channelBind, .successResponse, 0x0109), (StunMethod(rawValue: 0xFFF), .errorResponse, 0x3FFF),
        ]
        for (method, cls, raw) in cases {
            let type = StunMessageType(method: method, messageClass: cls)
            #expect(type.rawValue == raw)
            #expect(StunMessageType(rawValue: raw) == type)
        }
        #expect(StunMessageType(rawValue: 0x4001) == nil)
        #expect(StunMessageType(rawValue: 0x8001) == nil)
        for raw in UInt16(0)...0x3FFF {
            #expect(StunMessageType(rawValue: raw)?.rawValue == raw)
        }
    }

    @Test func allAttributesRoundTrip() throws {
        var rng = SplitMix64(seed: 7)
        let id = TransactionID.random(using: &rng)
        let v6 = try #require(IPv6Address("2001:db8::1"))
        let attributes: [StunAttribute] = [
            .mappedAddress(.ipv4(ep("10.1.2.3:4000"))),
            .mappedAddress(.ipv6(v6, port: 9)),
            .xorMappedAddress(.ipv4(ep("192.0.2.1:32853"))),
            .xorMappedAddress(.ipv6(v6, port: 65535)),
            .username("alice:bob"), .realm("example.org"), .nonce("abc"), .software("ipop-swift"),
            .errorCode(code: 438, reason: "Stale Nonce"), .unknownAttributes([0x0031, 0x7FFF]),
            .channelNumber(0x4001), .lifetime(600), .xorPeerAddress(.ipv4(ep("198.51.100.2:5"))),
            .data([1, 2, 3, 4, 5]), .data([]), .xorRelayedAddress(.ipv4(ep("203.0.113.9:49152"))),
            .requestedTransport(17), .dontFragment, .priority(12345), .useCandidate,
            .iceControlled(tieBreaker: 1), .iceControlling(tieBreaker: .max),
            .other(type: 0x7ABC, value: [9, 9, 9]), .other(type: 0xC001, value: []),
        ]
        let message = StunMessage(type: .bindingSuccess, transactionID: id, attributes: attributes)
        let key = StunKey.shortTerm(password: "secret")
        let bytes = message.encode(integrity: key, fingerprint: true)
        #expect(bytes.count % 4 == 0)
        let decoded = try StunMessage.decode(bytes)
        #expect(Array(decoded.attributes.dropLast(2)) == attributes)
        #expect(decoded.attributes.suffix(2).map(\.type) == [0x0008, 0x8028])
        #expect(StunMessage.checkIntegrity(bytes, key: key) == .valid)
        #expect(StunMessage.checkFingerprint(bytes) == .valid)
        #expect(decoded.unknownComprehensionRequired == [0x7ABC])
        #expect(decoded.errorCode?.code == 438)
    }

    @Test func attributesAfterIntegrityAreIgnoredAndAfterFingerprintRejected() throws {
        let id = TransactionID(high: 1, low: 2)
        let key = StunKey.shortTerm(password: "k")
        var bytes = StunMessage(type: .bindingRequest, transactionID: id, attributes: [.software("x")])
            .encode(integrity: key)
        // Append a SOFTWARE attribute after MESSAGE-INTEGRITY and fix the length.
        bytes += [0x80, 0x22, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64]
        bytes[3] = UInt8(bytes.count - 20)
        let decoded = try StunMessage.decode(bytes)
        #expect(decoded.software == "x")
        #expect(decoded.attributes.count == 2)
        #expect(StunMessage.checkIntegrity(bytes, key: key) == .valid)

        var afterFP = StunMessage(type: .bindingRequest, transactionID: id).encode(fingerprint: true)
        afterFP += [0x80, 0x22, 0x00, 0x00]
        afterFP[3] = UInt8(afterFP.count - 20)
        #expect(throws: StunDecodeError.attributeAfterFingerprint) { try StunMessage.decode(afterFP) }
        #expect(StunMessage.checkFingerprint(afterFP) == .invalid)
    }

    @Test func typedErrors() {
        let id = TransactionID(high: 0, low: 0)
        let good = StunMessage(type: .bindingRequest, transactionID: id, attributes: [.lifetime(1)]).encode()
        #expect(throws: StunDecodeError.truncatedHeader) { try StunMessage.decode(Array(good[0..<19])) }
        var badCookie = good
        badCookie[4] = 0
        #expect(throws: StunDecodeError.notStun) { try StunMessage.decode(badCookie) }
        var topBits = good
        topBits[0] = 0x40
        #expect(throws: StunDecodeError.notStun) { try StunMessage.decode(topBits) }
        var misaligned = good
        misaligned[3] = 7
        #expect(throws: StunDecodeError.misalignedLength(7)) { try StunMessage.decode(misaligned) }
        #expect(throws: StunDecodeError.lengthMismatch(declared: 8, actual: 12)) {
            try StunMessage.decode(good + [0, 0, 0, 0])
        }
        var longAttribute = good
        longAttribute[23] = 8
        #expect(throws: StunDecodeError.truncatedAttribute(type: 0x000D)) { try StunMessage.decode(longAttribute) }
        var badLifetime = good
        badLifetime[23] = 3
        #expect(throws: StunDecodeError.invalidAttribute(type: 0x000D)) { try StunMessage.decode(badLifetime) }
        let badUTF8 = StunMessage(type: .bindingRequest, transactionID: id,
                                  attributes: [.other(type: 0x0006, value: [0xFF, 0xFE])]).encode()
        #expect(throws: StunDecodeError.invalidAttribute(type: 0x0006)) { try StunMessage.decode(badUTF8) }
        let badFamily = StunMessage(type: .bindingRequest, transactionID: id,
                                    attributes: [.other(type: 0x0020, value: [0, 3, 0, 0, 0, 0, 0, 0])]).encode()
        #expect(throws: StunDecodeError.invalidAttribute(type: 0x0020)) { try StunMessage.decode(badFamily) }
        let badError = StunMessage(type: .bindingError, transactionID: id,
                                   attributes: [.other(type: 0x0009, value: [0, 0, 7, 0])]).encode()
        #expect(throws: StunDecodeError.invalidAttribute(type: 0x0009)) { try StunMessage.decode(badError) }
        let longUsername = StunMessage(type: .bindingRequest, transactionID: id,
                                       attributes: [.username(String(repeating: "a", count: 513))]).encode()
        #expect(throws: StunDecodeError.invalidAttribute(type: 0x0006)) { try StunMessage.decode(longUsername) }
    }

    @Test func randomGarbageNeverTraps() {
        var rng = SplitMix64(seed: 42)
        let seeds = (try? loadStunVectors().map(\.bytes)) ?? []
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0, let seed = seeds.randomElement(using: &rng) {
                bytes = seed
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            } else {
                bytes = (0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if bytes.count >= 8, round % 3 == 0 {
                    bytes[0] &= 0x3F
                    bytes[4...7] = [0x21, 0x12, 0xA4, 0x42]
                    bytes[2] = 0
                    bytes[3] = UInt8(max(0, bytes.count - 20) & 0xFC)
                }
            }
            _ = try? StunMessage.decode(bytes)
            _ = StunMessage.checkFingerprint(bytes)
            _ = StunMessage.checkIntegrity(bytes, key: .shortTerm(password: "x"))
            _ = StunMessage.isStunPacket(bytes)
            _ = try? ChannelData.decode(bytes)
        }
    }

    @Test func demultiplexing() throws {
        let stun = try loadStunVectors()[0].bytes
        #expect(StunMessage.isStunPacket(stun))
        #expect(StunMessage.isStunPacket(stun[...]))
        #expect(!ChannelData.looksLikeChannelData(stun))
        // IPOP link packets: first byte is a message type 1…4, no cookie.
        for type: UInt8 in 1...4 {
            var link = [UInt8](repeating: 0xAB, count: 64)
            link[0] = type
            #expect(!StunMessage.isStunPacket(link))
            #expect(!ChannelData.looksLikeChannelData(link))
        }
        let channel = ChannelData(channel: 0x4000, payload: [1, 2, 3]).encode()
        #expect(ChannelData.looksLikeChannelData(channel))
        #expect(!StunMessage.isStunPacket(channel))
        var cookieButTopBits = stun
        cookieButTopBits[0] |= 0x80
        #expect(!StunMessage.isStunPacket(cookieButTopBits))
    }

    @Test func longTermKeyIsMD5OfUserRealmPassword() {
        // MD5("user:realm:pass") = 8493fbc53ba582fb4c044c456bdc40eb
        let key = StunKey.longTerm(username: "user", realm: "realm", password: "pass")
        #expect(Hex.encode(key.bytes) == "8493fbc53ba582fb4c044c456bdc40eb")
    }
}
