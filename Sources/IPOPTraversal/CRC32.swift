/// CRC-32 as used by the STUN FINGERPRINT attribute (RFC 8489 §14.7 refers to the
/// CRC-32 of ITU-T V.42 / ISO 3309 / Ethernet): reflected polynomial 0xEDB88320,
/// initial value 0xFFFFFFFF, final XOR 0xFFFFFFFF. Check value: CRC-32("123456789") = 0xCBF43926.
///
/// This is an error-detection checksum, not cryptography. Byte-at-a-time with a
/// 256-entry table built once at first use.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 {
            value = value & 1 == 1 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1
        }
        return value
    }

    static func checksum<C: Sequence>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        let table = CRC32.table
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
        }
        return crc ^ 0xFFFF_FFFF
    }
}
