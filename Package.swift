// swift-tools-version: 6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Test builds only (debug): a query that makes the process trap, armed by the environment
    // variable RESOLVERD_CRASH_SWITCH=1, so tests can kill a worker from inside (Workers/).
    .define("RESOLVERD_CRASH_SWITCH", .when(configuration: .debug)),
]

let package = Package(
    name: "resolverd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "resolverd", targets: ["resolverd"]),
        .executable(name: "dig-lite", targets: ["dig-lite"]),
        .library(name: "Resolver", targets: ["Resolver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .systemLibrary(
            name: "CLDNS",
            pkgConfig: "ldns",
            providers: [.apt(["libldns-dev"])]
        ),
        // recvmmsg/sendmmsg for the UDP fast path, epoll and eventfd for upstream UDP (Swift's
        // Glibc module lacks them).
        .target(name: "CBatchIO"),
        // Names, types, addresses, the message reader and writer, canonical forms (RFC 4034 §6):
        // no Foundation, no NIO, no ldns.
        .target(name: "DNSWire", swiftSettings: swiftSettings),
        // Pure policy, told the time: the recursion state machine, what a server's response
        // means, server selection, the record and answer caches, member lifecycle. NIOCore only
        // for its value types (ByteBuffer, NIODeadline, TimeAmount): no sockets, no threads, no
        // clock read but through an injected ResolverClock.
        .target(
            name: "ResolverCore",
            dependencies: ["DNSWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Resolver",
            dependencies: [
                "DNSWire",
                "ResolverCore",
                "CLDNS",
                "CBatchIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "resolverd",
            dependencies: [
                "Resolver",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "dig-lite",
            dependencies: [
                "Resolver",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Fake authoritative/upstream DNS servers with set delays and losses, shared by the
        // integration tests (in process) and by `fake-dns` (for bench/ and network namespaces).
        .target(
            name: "FakeDNS",
            dependencies: [
                "Resolver",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
            ],
            path: "Tests/FakeDNS",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "fake-dns",
            dependencies: [
                "FakeDNS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tests/fake-dns",
            swiftSettings: swiftSettings
        ),
        // Wire fragments built byte by byte and a seeded random source, for both unit test targets.
        .target(name: "WireTestSupport", dependencies: ["DNSWire"], path: "Tests/WireTestSupport", swiftSettings: swiftSettings),
        .testTarget(
            name: "DNSWireTests",
            dependencies: ["DNSWire", "WireTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ResolverTests",
            dependencies: ["Resolver", "ResolverCore", "DNSWire", "WireTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Resolver",
                "FakeDNS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Fuzz targets (Fuzz/, run by scripts/fuzz.sh): added only when RESOLVERD_FUZZ=1, so ordinary
// builds and tests never see them. Each is a libFuzzer entry point (LLVMFuzzerTestOneInput)
// without a main of its own; libFuzzer's runtime brings one when built with --sanitize=fuzzer.
if Context.environment["RESOLVERD_FUZZ"] == "1" {
    for name in ["fuzz-query-reader", "fuzz-codec", "fuzz-response", "fuzz-config", "fuzz-api-json"] {
        package.targets.append(
            .executableTarget(
                name: name,
                dependencies: [
                    "Resolver",
                    .product(name: "NIOCore", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"),
                    .product(name: "Logging", package: "swift-log"),
                ],
                path: "Fuzz/\(name)",
                swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
            )
        )
    }
}
