// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "unified-workflow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "uwf", targets: ["uwf"]),
        .library(name: "WorkflowClient", targets: ["WorkflowClient"]),
    ],
    traits: [
        // On by default. swift-otel (OTLP/HTTP only, no gRPC) and swift-protobuf cost about 45 s of a two-core build
        // (measured on a warm tree); `swift build --disable-default-traits` leaves them out: then spans go nowhere
        // and --otlp-endpoint is refused.
        .trait(name: "OTel", description: "Export traces over OTLP/HTTP with swift-otel (uwf serve --otlp-endpoint)."),
        .default(enabledTraits: ["OTel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        .target(
            name: "WorkflowPrimitive",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowWire",
            dependencies: ["WorkflowPrimitive"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowStore",
            dependencies: ["WorkflowPrimitive", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowStoreSQLite",
            dependencies: [
                "WorkflowStore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowStorePostgres",
            dependencies: [
                "WorkflowStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowObservability",
            dependencies: [
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowStoreTesting",
            dependencies: ["WorkflowStore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowIdentity",
            dependencies: [
                "WorkflowPrimitive", "WorkflowStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowRegistry",
            dependencies: [
                "WorkflowPrimitive", "WorkflowStore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowEngine",
            dependencies: [
                "WorkflowPrimitive", "WorkflowStore", "WorkflowRegistry", "WorkflowObservability",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowAPI",
            dependencies: [
                "WorkflowPrimitive", "WorkflowStore", "WorkflowRegistry", "WorkflowEngine", "WorkflowWire", "WorkflowIdentity",
                "WorkflowObservability",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowClient",
            dependencies: [
                "WorkflowPrimitive", "WorkflowWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowTestSupport",
            dependencies: [
                "WorkflowStorePostgres",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "WorkflowBench",
            dependencies: [
                "WorkflowPrimitive", "WorkflowEngine",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "uwf",
            dependencies: [
                "WorkflowPrimitive", "WorkflowStore", "WorkflowStoreSQLite", "WorkflowStorePostgres", "WorkflowRegistry",
                "WorkflowEngine", "WorkflowAPI", "WorkflowClient", "WorkflowBench", "WorkflowIdentity", "WorkflowObservability",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTel"])),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowPrimitiveTests",
            dependencies: ["WorkflowPrimitive"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowIdentityTests",
            dependencies: ["WorkflowIdentity"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowStoreTests",
            dependencies: ["WorkflowPrimitive", "WorkflowStore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowStoreSQLiteTests",
            dependencies: ["WorkflowStore", "WorkflowStoreSQLite", "WorkflowStoreTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowStorePostgresTests",
            dependencies: [
                "WorkflowStore", "WorkflowStorePostgres", "WorkflowStoreTesting", "WorkflowTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowEngineTests",
            dependencies: [
                "WorkflowPrimitive", "WorkflowStore", "WorkflowStoreSQLite", "WorkflowStorePostgres", "WorkflowRegistry",
                "WorkflowEngine", "WorkflowTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkflowAPITests",
            dependencies: [
                "WorkflowPrimitive", "WorkflowStore", "WorkflowStoreSQLite", "WorkflowRegistry", "WorkflowEngine",
                "WorkflowAPI", "WorkflowClient", "WorkflowTestSupport", "WorkflowIdentity", "WorkflowStorePostgres",
                "WorkflowObservability",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
