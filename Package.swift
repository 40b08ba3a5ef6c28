// swift-tools-version:6.0
import PackageDescription

// Data flows one way: raster -> patches -> tensors -> model -> scores -> stitched raster.
// See DESIGN.md for where each concept lives.
let package = Package(
    name: "TerraSeg",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "terraseg", targets: ["terraseg"]),
        .library(name: "Core", targets: ["Core"]),
        .library(name: "GeoRaster", targets: ["GeoRaster"]),
        .library(name: "Tiling", targets: ["Tiling"]),
        .library(name: "Metrics", targets: ["Metrics"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Inference", targets: ["Inference"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "ModelIO", targets: ["ModelIO"]),
        .library(name: "Distributed", targets: ["Distributed"]),
        .executable(name: "terraseg-bench", targets: ["terraseg-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries. Only GeoRaster imports CGDAL; only Engine/DNNL imports CDNNL; only Distributed imports CMPI.
        .systemLibrary(
            name: "CGDAL", path: "Sources/CGDAL", pkgConfig: "gdal",
            providers: [.apt(["libgdal-dev"])]),
        .systemLibrary(
            name: "CDNNL", path: "Sources/CDNNL",
            providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "mpi-c",
            providers: [.apt(["libopenmpi-dev"])]),

        // Leaf utilities every stack shares: Window, SplitMix64, AtomicFile, TerraSegError,
        // TerraSegEnvironment (the one reader of TERRASEG_* variables). Foundation only.
        .target(name: "Core"),

        // Geo stack: GeoRaster → Tiling.
        .target(
            name: "GeoRaster",
            dependencies: ["Core", "CGDAL", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Tiling", dependencies: ["Core", "GeoRaster"]),
        .target(name: "Metrics"),
        // The processes of an mpirun/srun launch (Communicator); one process never calls MPI.
        .target(name: "Distributed", dependencies: ["Core", "CMPI"]),
        .target(
            name: "Training",
            dependencies: ["Core", "GeoRaster", "Tiling", "Metrics", "Engine", "Models", "ModelIO", "Distributed",
                           .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Pipeline",
            dependencies: ["Core", "GeoRaster", "Tiling", "Metrics", "Models", "ModelIO", "Training", "Inference", "Distributed",
                           .product(name: "Yams", package: "Yams"), .product(name: "Logging", package: "swift-log")]),
        .target(
            name: "Inference",
            dependencies: ["Core", "GeoRaster", "Tiling", "Metrics", "Engine", "Models", "ModelIO", "Distributed",
                           .product(name: "Logging", package: "swift-log")]),

        // Tensor stack: Engine → Models. Neither imports GeoRaster or Tiling (nor links GDAL).
        .target(
            name: "Engine",
            dependencies: ["Core", "CDNNL", .product(name: "Numerics", package: "swift-numerics")]),
        .target(
            name: "Models",
            dependencies: ["Core", "Engine", .product(name: "Numerics", package: "swift-numerics")]),

        // The model bundle (safetensors + model.json with normalisation and classes), above both stacks.
        .target(name: "ModelIO", dependencies: ["Core", "Engine", "Models", "Tiling", "GeoRaster"]),

        .executableTarget(
            name: "terraseg",
            dependencies: [
                "Core", "GeoRaster", "Tiling", "Metrics", "Inference", "Training", "Models", "ModelIO", "Engine", "Pipeline", "Distributed",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Release-only benchmark executable; never timed inside tests.
        .executableTarget(
            name: "terraseg-bench", dependencies: [
                "Core", "Engine", "Models", "ModelIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/TerraSegBench"),

        .target(name: "TestSupport", dependencies: ["CGDAL", "Core", "GeoRaster", "Tiling", "Models", "ModelIO", "Training"], path: "Tests/TestSupport"),
        .testTarget(name: "CoreTests", dependencies: ["Core", "TestSupport"]),
        .testTarget(name: "GeoRasterTests", dependencies: ["Core", "GeoRaster", "TestSupport"]),
        .testTarget(name: "TilingTests", dependencies: ["Core", "Tiling", "GeoRaster", "TestSupport"]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics"]),
        .testTarget(name: "DistributedTests", dependencies: ["Core", "Distributed", "ModelIO", "Training", "TestSupport"]),
        .testTarget(name: "BundleTests", dependencies: ["Core", "ModelIO", "Models", "Engine", "Tiling", "GeoRaster", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Core", "Training", "Inference", "Models", "ModelIO", "Tiling", "GeoRaster", "TestSupport"]),
        .testTarget(name: "PipelineTests", dependencies: ["Core", "Pipeline", "Training", "ModelIO", "GeoRaster", "TestSupport",
                                                   .product(name: "Yams", package: "Yams")]),
        .testTarget(name: "InferenceTests", dependencies: ["Core", "Distributed", "Inference", "Models", "ModelIO", "GeoRaster", "Metrics", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Core", "Engine", "TestSupport"], exclude: ["Fixtures"]),
        .testTarget(name: "ModelsTests", dependencies: ["Core", "Models", "ModelIO", "Engine", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["Core", "Engine", "GeoRaster", "ModelIO", "TestSupport"]),
    ]
)
