// swift-tools-version:6.0
import PackageDescription

// Dependency direction (nothing points back up):
//   ipop -> IPOPNode -> (IPOPSwitch, IPOPLink, IPOPTraversal, IPOPSignal, IPOPLinux) -> IPOPWire -> nothing
// Only IPOPLinux and the executable touch the kernel (through CLinuxNet).
let package = Package(
    name: "ipop-swift",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ipop", targets: ["ipop"]),
        .executable(name: "ipop-hotpath-bench", targets: ["ipop-hotpath-bench"]),
        .executable(name: "ipop-fuzz", targets: ["ipop-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // C shim: TUN/TAP and bridge ioctls, recvmmsg/sendmmsg, epoll (ioctl is variadic).
        .target(name: "CLinuxNet"),
        // Pure codecs: MAC, Ethernet/802.1Q, ARP, IPv4/IPv6 peeks, the link packet format.
        .target(name: "IPOPWire"),
        // Pure: MAC learning table and the L2 forwarding decision.
        .target(name: "IPOPSwitch", dependencies: ["IPOPWire"]),
        // C shim: in-place ChaCha20-Poly1305 from the BoringSSL swift-crypto links in (no allocation per frame).
        .target(name: "CTransportAEAD", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // Pure: Noise IK handshake, transport sessions, replay window, link timers.
        .target(name: "IPOPLink", dependencies: [
            "IPOPWire", "CTransportAEAD",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Pure: STUN/TURN codecs (RFC 8489/8656), candidates, connectivity checks, TURN client state.
        .target(name: "IPOPTraversal", dependencies: [
            "IPOPWire",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Signalling: XMPP client (RFC 6120/6121) on SwiftNIO + swift-nio-ssl, streaming XML reader.
        .target(name: "IPOPSignal", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The only module that talks to the kernel.
        .target(name: "IPOPLinux", dependencies: ["CLinuxNet", "IPOPWire"]),
        // The wiring: config, overlays, data paths, control socket.
        .target(name: "IPOPNode", dependencies: [
            "IPOPWire", "IPOPSwitch", "IPOPLink", "IPOPLinux", "IPOPSignal", "IPOPTraversal",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            // The metrics endpoint only (never the data path).
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // Test/benchmark support: counts malloc & co. in the executable that links it (interposition).
        .target(name: "CAllocCounter"),
        // The data path in memory (switch + seal + open + switch), for the micro-benchmark and its test.
        .target(name: "IPOPBench", dependencies: [
            "IPOPWire", "IPOPSwitch", "IPOPLink",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "ipop-hotpath-bench", dependencies: ["IPOPBench", "CAllocCounter"]),
        // Fuzzing: every parser a stranger can reach, behind one entry point (scripts/fuzz).
        .target(name: "IPOPFuzz", dependencies: [
            "IPOPWire", "IPOPSwitch", "IPOPLink", "IPOPTraversal", "IPOPSignal", "IPOPNode",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "ipop-fuzz", dependencies: ["IPOPFuzz"]),
        .executableTarget(name: "ipop", dependencies: [
            "IPOPNode", "IPOPLink",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "IPOPWireTests", dependencies: ["IPOPWire"], resources: [.copy("Resources")]),
        .testTarget(name: "IPOPSwitchTests", dependencies: ["IPOPSwitch", "IPOPWire"]),
        .testTarget(name: "IPOPLinkTests", dependencies: [
            "IPOPLink", "IPOPWire",
            .product(name: "Crypto", package: "swift-crypto"),
        ], resources: [.copy("Resources")]),
        .testTarget(name: "IPOPNodeTests", dependencies: ["IPOPNode"]),
        .testTarget(name: "IPOPLinuxTests", dependencies: ["IPOPLinux", "IPOPWire"]),
        .testTarget(name: "IPOPBenchTests", dependencies: ["IPOPBench", "CAllocCounter"]),
        .testTarget(name: "IPOPFuzzTests", dependencies: ["IPOPFuzz"]),
        .testTarget(name: "IPOPTraversalTests", dependencies: ["IPOPTraversal", "IPOPWire"],
                    resources: [.copy("Resources")]),
        .testTarget(name: "IPOPSignalTests", dependencies: [
            "IPOPSignal",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ]
)
