// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "baton",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "baton", targets: ["baton"]),
        .library(name: "BatonCore", targets: ["BatonCore"]),
        .library(name: "BatonProxy", targets: ["BatonProxy"]),
        .library(name: "BatonTesting", targets: ["BatonTesting"]),
        .library(name: "BatonRollout", targets: ["BatonRollout"]),
        .library(name: "BatonProbe", targets: ["BatonProbe"]),
        .executable(name: "TranslateApp", targets: ["TranslateApp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // ExternalLoading is off: only local $refs are resolved, and the build is faster.
        .package(url: "https://github.com/mattpolzin/OpenAPIKit.git", from: "6.4.0", traits: []),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .target(
            name: "BatonCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "BatonRollout",
            dependencies: [
                "BatonCompat",
                "BatonCore",
                "BatonMigrate",
                "BatonProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "BatonProbe",
            dependencies: [
                "BatonCore",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "BatonMigrate",
            dependencies: ["BatonCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "BatonCompat",
            dependencies: ["BatonCore", "BatonMigrate",
                .product(name: "OpenAPIKit", package: "OpenAPIKit"),
                .product(name: "OpenAPIKit30", package: "OpenAPIKit"),
                .product(name: "OpenAPIKitCompat", package: "OpenAPIKit"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "BatonDemo",
            dependencies: ["BatonCore", "BatonProxy", "BatonRollout", "BatonProbe", "BatonMigrate"]
        ),
        .executableTarget(
            name: "TranslateApp",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "BatonProxy",
            dependencies: [
                "BatonCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "BatonTesting",
            dependencies: [
                "BatonCore",
                "BatonProxy",
                "BatonRollout",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "baton",
            dependencies: [
                "BatonCore",
                "BatonProxy",
                "BatonRollout",
                "BatonProbe",
                "BatonDemo",
                "BatonMigrate",
                "BatonCompat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "baton-bench",
            dependencies: [
                "BatonTesting", "BatonRollout", "BatonCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "baton-test-backend",
            dependencies: [
                "BatonTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "BatonCoreTests", dependencies: ["BatonCore"]),
        .testTarget(
            name: "BatonCompatTests",
            dependencies: ["BatonCompat", "BatonCore"]
        ),
        .testTarget(
            name: "BatonMigrateTests",
            dependencies: ["BatonMigrate", "BatonCore", "BatonTesting"]
        ),
        .testTarget(
            name: "BatonDemoTests",
            dependencies: ["BatonCore", "BatonProbe", "BatonDemo", "BatonRollout"]
        ),
        .testTarget(
            name: "TranslateAppTests",
            dependencies: ["BatonTesting", "BatonCore", "BatonProbe", "BatonMigrate", "BatonDemo", "BatonProxy"]
        ),
        .testTarget(
            name: "BatonProbeTests",
            dependencies: ["BatonProbe", "BatonTesting", "BatonCore"]
        ),
        .testTarget(
            name: "BatonRolloutTests",
            dependencies: ["BatonRollout", "BatonProxy", "BatonTesting", "BatonCore"]
        ),
        .testTarget(
            name: "BatonProxyTests",
            dependencies: [
                "BatonProxy", "BatonTesting", "BatonCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
    ]
)
