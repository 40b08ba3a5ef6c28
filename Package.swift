// swift-tools-version:6.0
import PackageDescription

// Data flows one way: raster -> patches -> tensors -> model -> scores -> stitched raster.
// See DESIGN.md for where each concept lives.
let package = Package(
    name: "TerraSeg",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "terraseg", targets: ["terraseg"]),
        .library(name: "GeoRaster", targets: ["GeoRaster"]),
        .library(name: "Tiling", targets: ["Tiling"]),
        .library(name: "Metrics", targets: ["Metrics"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Inference", targets: ["Inference"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Models", targets: ["Models"]),
        .executable(name: "terraseg-bench", targets: ["terraseg-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries. Only GeoRaster imports CGDAL; only Engine/DNNL imports CDNNL.
        .systemLibrary(
            name: "CGDAL", path: "Sources/CGDAL", pkgConfig: "gdal",
            providers: [.apt(["libgdal-dev"])]),
        .systemLibrary(
            name: "CDNNL", path: "Sources/CDNNL",
            providers: [.apt(["libdnnl-dev"])]),

        .target(
            name: "GeoRaster",
            dependencies: ["CGDAL", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Tiling", dependencies: ["GeoRaster"]),
        .target(name: "Metrics"),
        .target(
            name: "Training",
            dependencies: ["GeoRaster", "Tiling", "Metrics", "Engine", "Models", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Pipeline",
            dependencies: ["GeoRaster", "Tiling", "Metrics", "Models", "Training", "Inference",
                           .product(name: "Yams", package: "Yams"), .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Inference",
            dependencies: ["GeoRaster", "Tiling", "Metrics", "Engine", "Models", .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Engine",
            dependencies: ["CDNNL", .product(name: "Numerics", package: "swift-numerics")]),
        .target(
            name: "Models",
            dependencies: ["Engine", "GeoRaster", "Tiling", .product(name: "Numerics", package: "swift-numerics")]),
        .executableTarget(
            name: "terraseg",
            dependencies: [
                "GeoRaster", "Tiling", "Metrics", "Inference", "Training", "Models", "Engine", "Pipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Release-only benchmark executable; never timed inside tests.
        .executableTarget(
            name: "terraseg-bench", dependencies: [
                "Engine", "Models",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/TerraSegBench"),

        .target(name: "TestSupport", dependencies: ["GeoRaster", "Tiling", "Models", "Training"], path: "Tests/TestSupport"),
        .testTarget(name: "GeoRasterTests", dependencies: ["GeoRaster", "TestSupport"]),
        .testTarget(name: "TilingTests", dependencies: ["Tiling", "GeoRaster", "TestSupport"]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics"]),
        .testTarget(name: "BundleTests", dependencies: ["Models", "Engine", "Tiling", "GeoRaster", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Inference", "Models", "Tiling", "GeoRaster", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Training", "GeoRaster", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "Models", "GeoRaster", "Metrics", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Engine", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["GeoRaster", "TestSupport"]),
    ]
)
