import Foundation

/// The real data in ../shared/data beside the repository (never copied into it).
public enum TestData {
    /// Repository root, found from this file's location.
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/TestSupport/TestData.swift
        return url
    }()

    public static let root: URL = {
        if let env = ProcessInfo.processInfo.environment["TERRASEG_SHARED_DATA"] { return URL(fileURLWithPath: env) }
        return repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    }()

    /// Whether ../shared/data is present (tests that need it are skipped otherwise).
    public static var available: Bool {
        FileManager.default.fileExists(atPath: root.appendingPathComponent("README.md").path)
    }

    public static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    /// All files in a folder of the shared data whose names end with one of `extensions`.
    public static func files(in folder: String, extensions: [String] = ["tif", "tiff"]) -> [String] {
        let dir = root.appendingPathComponent(folder)
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil) else { return [] }
        return e.compactMap { $0 as? URL }
            .filter { extensions.contains($0.pathExtension.lowercased()) }
            .map(\.path).sorted()
    }
}

/// Runs external programs (GDAL's command-line tools, the terraseg executable).
public enum Tool {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// True when the process died from a signal (a crash), not an exit.
        public var crashed: Bool
    }

    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let p = Process()
        if executable.hasPrefix("/") {
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = arguments
        } else {
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [executable] + arguments
        }
        if let environment { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes concurrently-safe: stdout fully, then stderr (outputs here are small).
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self),
                      crashed: p.terminationReason == .uncaughtSignal)
    }

    /// Whether a command is on PATH (GDAL's tools come from gdal-bin).
    public static func exists(_ name: String) -> Bool {
        (try? run("sh", ["-c", "command -v \(name)"]).status) == 0
    }

    /// The `terraseg` executable built beside the test bundle.
    public static var terraseg: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("terraseg").path
    }
}

/// A scratch directory removed when released.
public final class TemporaryDirectory {
    public let url: URL
    public var path: String { url.path }

    public init(_ prefix: String = "terraseg-test") {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

extension TestData {
    /// Small committed fixtures (Tests/Fixtures), made by the committed scripts beside them.
    public static func fixture(_ relative: String) -> String {
        repositoryRoot.appendingPathComponent("Tests/Fixtures").appendingPathComponent(relative).path
    }
}
