import Crypto
import Foundation
import Testing
@testable import IPOPLink

private struct VectorFile: Decodable {
    let source: String
    let vectors: [Vector]
}

private struct Vector: Decodable {
    struct Message: Decodable {
        let payload: String
        let ciphertext: String
    }
    let protocol_name: String
    let init_prologue: String
    let init_psks: [String]?
    let init_static: String
    let init_ephemeral: String
    let init_remote_static: String
    let resp_prologue: String
    let resp_psks: [String]?
    let resp_static: String
    let resp_ephemeral: String
    let handshake_hash: String
    let messages: [Message]
}

private func loadVectors() throws -> [Vector] {
    let url = try #require(Bundle.module.url(forResource: "noise-ik-sha256", withExtension: "json",
                                             subdirectory: "Resources"))
    return try JSONDecoder().decode(VectorFile.self, from: Data(contentsOf: url)).vectors
}

private func privateKey(_ hex: String) throws -> Curve25519.KeyAgreement.PrivateKey {
    try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: Hex.decode(hex))
}

@Suite struct NoiseVectorTests {
    @Test func vectorFileHoldsBothSuites() throws {
        let names = Set(try loadVectors().map(\.protocol_name))
        #expect(names == [NoiseHandshake.protocolName(psk: false), NoiseHandshake.protocolName(psk: true)])
    }

    @Test(arguments: [false, true])
    func handshakeAndTransportMatchCacophonyVectors(psk: Bool) throws {
        let vector = try #require(try loadVectors().first { $0.protocol_name == NoiseHandshake.protocolName(psk: psk) })
        let initPSK = vector.init_psks?.first.map { SymmetricKey(data: Hex.decode($0)) }
        let respPSK = vector.resp_psks?.first.map { SymmetricKey(data: Hex.decode($0)) }
        #expect((initPSK != nil) == psk)

        var initiator = try NoiseHandshake(
            role: .initiator, prologue: Hex.decode(vector.init_prologue),
            localStatic: privateKey(vector.init_static),
            remoteStatic: Curve25519.KeyAgreement.PublicKey(rawRepresentation: Hex.decode(vector.init_remote_static)),
            psk: initPSK, localEphemeral: privateKey(vector.init_ephemeral))
        var responder = try NoiseHandshake(
            role: .responder, prologue: Hex.decode(vector.resp_prologue),
            localStatic: privateKey(vector.resp_static),
            psk: respPSK, localEphemeral: privateKey(vector.resp_ephemeral))

        // Message 1: initiator -> responder.
        let m1 = vector.messages[0]
        let c1 = try initiator.writeMessage(payload: Hex.decode(m1.payload))
        #expect(Hex.encode(c1) == m1.ciphertext)
        #expect(try responder.readMessage(c1) == Hex.decode(m1.payload))
        #expect(responder.remoteStaticKey?.rawRepresentation == (try privateKey(vector.init_static)).publicKey.rawRepresentation)

        // Message 2: responder -> initiator.
        let m2 = vector.messages[1]
        let c2 = try responder.writeMessage(payload: Hex.decode(m2.payload))
        #expect(Hex.encode(c2) == m2.ciphertext)
        #expect(try initiator.readMessage(c2) == Hex.decode(m2.payload))

        #expect(initiator.isComplete && responder.isComplete)
        #expect(Hex.encode(initiator.handshakeHash) == vector.handshake_hash)
        #expect(Hex.encode(responder.handshakeHash) == vector.handshake_hash)

        // Transport: alternating initiator / responder, one counter per direction.
        let initKeys = try initiator.split()
        let respKeys = try responder.split()
        var counters: [UInt64] = [0, 0]
        for (index, message) in vector.messages.enumerated().dropFirst(2) {
            let fromInitiator = index % 2 == 0
            let sender = try #require(TransportCipher(key: fromInitiator ? initKeys.sending : respKeys.sending))
            let receiver = try #require(TransportCipher(key: fromInitiator ? respKeys.receiving : initKeys.receiving))
            let direction = fromInitiator ? 0 : 1
            let payload = Hex.decode(message.payload)
            var buffer = payload + [UInt8](repeating: 0, count: TransportCipher.tagSize)
            try buffer.withUnsafeMutableBytes { try sender.seal(counter: counters[direction], buffer: $0) }
            #expect(Hex.encode(buffer) == message.ciphertext)
            let opened = try buffer.withUnsafeMutableBytes { try receiver.open(counter: counters[direction], buffer: $0) }
            #expect(Array(buffer[..<opened]) == payload)
            counters[direction] += 1
        }
    }

    @Test func wrongPrologueFailsToDecryptMessageOne() throws {
        let a = Curve25519.KeyAgreement.PrivateKey(), b = Curve25519.KeyAgreement.PrivateKey()
        var initiator = try NoiseHandshake(role: .initiator, prologue: [1], localStatic: a, remoteStatic: b.publicKey)
        var responder = try NoiseHandshake(role: .responder, prologue: [2], localStatic: b)
        let m1 = try initiator.writeMessage(payload: [])
        #expect(throws: NoiseError.decryptionFailed) { try responder.readMessage(m1) }
    }

    @Test func differentPSKFailsAtMessageTwo() throws {
        let a = Curve25519.KeyAgreement.PrivateKey(), b = Curve25519.KeyAgreement.PrivateKey()
        var initiator = try NoiseHandshake(role: .initiator, prologue: [], localStatic: a, remoteStatic: b.publicKey,
                                           psk: SymmetricKey(size: .bits256))
        var responder = try NoiseHandshake(role: .responder, prologue: [], localStatic: b, psk: SymmetricKey(size: .bits256))
        _ = try responder.readMessage(try initiator.writeMessage(payload: []))
        let m2 = try responder.writeMessage(payload: [])
        #expect(throws: NoiseError.decryptionFailed) { try initiator.readMessage(m2) }
    }

    @Test func badInputThrowsTypedErrors() throws {
        let a = Curve25519.KeyAgreement.PrivateKey(), b = Curve25519.KeyAgreement.PrivateKey()
        #expect(throws: NoiseError.missingRemoteStatic) {
            _ = try NoiseHandshake(role: .initiator, prologue: [], localStatic: a)
        }
        #expect(throws: NoiseError.invalidLength(field: "psk", expected: 32, actual: 16)) {
            _ = try NoiseHandshake(role: .responder, prologue: [], localStatic: a, psk: SymmetricKey(size: .bits128))
        }
        var responder = try NoiseHandshake(role: .responder, prologue: [], localStatic: b)
        #expect(throws: NoiseError.invalidLength(field: "message 1", expected: 96, actual: 10)) {
            try responder.readMessage([UInt8](repeating: 7, count: 10))
        }
        #expect(throws: NoiseError.wrongState) { try responder.writeMessage(payload: []) }
        #expect(throws: NoiseError.wrongState) { try responder.split() }
        var initiator = try NoiseHandshake(role: .initiator, prologue: [], localStatic: a, remoteStatic: b.publicKey)
        var m1 = try initiator.writeMessage(payload: [1, 2, 3])
        m1[40] ^= 1
        #expect(throws: NoiseError.decryptionFailed) { try responder.readMessage(m1) }
    }
}
