import Testing
@testable import IPOPNode

/// The one UDP socket carries link messages, STUN and TURN ChannelData; the node tells them apart
/// by their first bytes (Node+Traversal.swift).
@Suite struct TraversalDemuxTests {
    func isStun(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Node.isStun($0, length: bytes.count) }
    }

    @Test func stunMessagesAreRecognised() {
        // Binding request, no attributes (RFC 8489 header: type, length 0, cookie, transaction id).
        let request: [UInt8] = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42] + Array(repeating: 7, count: 12)
        #expect(isStun(request))
        // Binding success (first byte 0x01, like a link initiation) with an 8-byte attribute.
        let success: [UInt8] = [0x01, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42] + Array(repeating: 7, count: 12)
            + [0x00, 0x20, 0x00, 0x04, 1, 2, 3, 4]
        #expect(isStun(success))
    }

    @Test func linkMessagesAreNeverStunEvenWithTheCookie() {
        // Link messages have zero bytes 1...3, so a STUN length of 0: only a 20-byte datagram could
        // match, and no link message is that short. Even an overlay tag equal to the cookie is safe.
        for (type, size) in [(UInt8(1), 136), (2, 76), (4, 32), (4, 1312)] {
            var message = [UInt8](repeating: 0, count: size)
            message[0] = type
            message[4...7] = [0x21, 0x12, 0xA4, 0x42]
            #expect(!isStun(message), "type \(type), \(size) bytes")
        }
    }

    @Test func truncatedOrWrongLengthIsNotStun() {
        let header: [UInt8] = [0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42] + Array(repeating: 7, count: 12)
        #expect(!isStun(header))                        // declares 4 bytes of attributes, has none
        #expect(!isStun(Array(header.prefix(19))))
        var channelData = header + [0, 0, 0, 0]
        channelData[0] = 0x40                           // ChannelData: first two bits 01
        #expect(!isStun(channelData))
    }
}
