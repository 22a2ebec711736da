// swift-tools-version:6.0
import PackageDescription

// Dependency direction (nothing points back up):
//   ipop -> IPOPNode -> (IPOPSwitch, IPOPLink, IPOPLinux) -> IPOPWire -> nothing
// Only IPOPLinux and the executable touch the kernel (through CLinuxNet).
let package = Package(
    name: "ipop-swift",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ipop", targets: ["ipop"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // C shim: TUN/TAP and bridge ioctls, recvmmsg/sendmmsg, epoll (ioctl is variadic).
        .target(name: "CLinuxNet"),
        // Pure codecs: MAC, Ethernet/802.1Q, ARP, IPv4/IPv6 peeks, the link packet format.
        .target(name: "IPOPWire"),
        // Pure: MAC learning table and the L2 forwarding decision.
        .target(name: "IPOPSwitch", dependencies: ["IPOPWire"]),
        // Pure: Noise IK handshake, transport sessions, replay window, link timers.
        .target(name: "IPOPLink", dependencies: [
            "IPOPWire",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // The only module that talks to the kernel.
        .target(name: "IPOPLinux", dependencies: ["CLinuxNet", "IPOPWire"]),
        // The wiring: config, overlays, data paths, control socket.
        .target(name: "IPOPNode", dependencies: [
            "IPOPWire", "IPOPSwitch", "IPOPLink", "IPOPLinux",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "ipop", dependencies: [
            "IPOPNode", "IPOPLink",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .testTarget(name: "IPOPWireTests", dependencies: ["IPOPWire"]),
        .testTarget(name: "IPOPSwitchTests", dependencies: ["IPOPSwitch", "IPOPWire"]),
        .testTarget(name: "IPOPLinkTests", dependencies: [
            "IPOPLink", "IPOPWire",
            .product(name: "Crypto", package: "swift-crypto"),
        ], resources: [.copy("Resources")]),
        .testTarget(name: "IPOPNodeTests", dependencies: ["IPOPNode"]),
    ]
)
