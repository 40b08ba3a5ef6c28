import Foundation
import Testing
import TestSupport

/// The malformed-input corpus (Tests/Fixtures/corpus, made by its `make-corpus.sh`) fed to the
/// real `terraseg` executable, one case per manifest line: each must be refused (exit status
/// not 0, not a signal) within a time and memory limit, with a message naming the file or key
/// and the problem, no backtrace, and no file left behind.
@Suite(.serialized) struct CorpusTests {
    static let timeLimit: TimeInterval = 20
    /// `ulimit -v` in KiB: 4 GiB of address space.
    static let memoryLimitKiB = 4 << 20

    @Test(arguments: CorpusCase.all)
    func refusedCleanly(_ c: CorpusCase) throws {
        let work = TemporaryDirectory("terraseg-corpus")
        let corpus = work.file("corpus"), out = work.file("out")
        try FileManager.default.copyItem(atPath: CorpusCase.root, toPath: corpus)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let here = corpus + "/" + c.category
        var arguments = c.arguments.map { $0.replacingOccurrences(of: "{here}", with: here).replacingOccurrences(of: "{out}", with: out) }
        if c.arguments.contains(where: { $0.contains("{model}") }) {
            let scene = try SyntheticScene(in: work.path, name: "scene", width: 40, height: 40, bands: 4)
            try TinyModel.seeded(scene, output: work.file("model"))
            arguments = arguments.map { $0.replacingOccurrences(of: "{model}", with: work.file("model")) }
        }
        let missing = arguments.filter { $0.hasPrefix(here + "/") && !FileManager.default.fileExists(atPath: $0) }
        guard missing.isEmpty else {
            // Another category's files (bundles/) may not be made yet: nothing to run.
            print("\(c): skipped, missing \(missing.joined(separator: ", "))")
            return
        }
        let before = try Self.files(under: work.path)
        let r = try LimitedRun.run(Tool.terraseg, arguments, directory: here, seconds: Self.timeLimit, memoryKiB: Self.memoryLimitKiB)
        let context = "\(c)\n--- stderr ---\n\(r.stderr.prefix(3000))"
        #expect(!r.timedOut, "ran past \(Int(Self.timeLimit)) s: \(context)")
        #expect(!r.crashed, "died from a signal: \(context)")
        #expect(r.status != 0, "exit status 0: \(context)")
        for marker in ["Fatal error", "Stack dump", "#0 ", "Current stack trace", "Program crashed"] {
            #expect(!r.stderr.contains(marker), "backtrace (\(marker)): \(context)")
        }
        for text in c.expected {
            #expect(r.stderr.contains(text), "stderr does not name '\(text)': \(context)")
        }
        let left = try Self.files(under: work.path).subtracting(before).filter { !$0.hasPrefix(work.path + "/model/") }
        #expect(left.isEmpty, "files left behind: \(left.sorted()) — \(c)")
    }

    /// Regular files under `dir` (any name, hidden ones too), recursively.
    static func files(under dir: String) throws -> Set<String> {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out = Set<String>()
        for case let relative as String in e {
            var isDir: ObjCBool = false
            let path = dir + "/" + relative
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue { out.insert(path) }
        }
        return out
    }
}

/// One line of a corpus manifest (`cases.txt`): `name | expected[; expected] | arguments`.
struct CorpusCase: CustomStringConvertible, Sendable {
    var category: String
    var name: String
    var expected: [String]
    var arguments: [String]

    var description: String { "\(category)/\(name): terraseg \(arguments.joined(separator: " "))" }

    static let root = TestData.fixture("corpus")

    /// Every case of every category folder that has a manifest.
    static let all: [CorpusCase] = {
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).sorted()
        return folders.flatMap { folder -> [CorpusCase] in
            guard let text = try? String(contentsOfFile: root + "/" + folder + "/cases.txt", encoding: .utf8) else { return [] }
            return text.split(separator: "\n").compactMap { parse(String($0), category: folder) }
        }
    }()

    static func parse(_ line: String, category: String) -> CorpusCase? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { return nil }
        let parts = trimmed.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 3 else { return CorpusCase(category: category, name: "malformed manifest line", expected: [line], arguments: []) }
        return CorpusCase(category: category, name: parts[0],
                          expected: parts[1].split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
                          arguments: parts[2].split(separator: " ").map(String.init))
    }
}

/// Runs a program under `ulimit -v` (through /bin/sh) and kills it after a time limit.
enum LimitedRun {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var crashed: Bool
        var timedOut: Bool
    }

    static func run(_ executable: String, _ arguments: [String], directory: String, seconds: TimeInterval, memoryKiB: Int) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "ulimit -v \(memoryKiB) && exec \"$0\" \"$@\"", executable] + arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let exited = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in exited.signal() }
        let group = DispatchGroup()
        let outText = Handoff(Data()), errText = Handoff(Data())
        for (pipe, box) in [(out, outText), (err, errText)] {
            DispatchQueue.global().async(group: group) { box.value = pipe.fileHandleForReading.readDataToEndOfFile() }
        }
        try p.run()
        var timedOut = false
        if exited.wait(timeout: .now() + seconds) == .timedOut {
            timedOut = true
            kill(p.processIdentifier, SIGKILL)
            exited.wait()
        }
        group.wait()
        return Result(status: p.terminationStatus, stdout: String(decoding: outText.value, as: UTF8.self),
                      stderr: String(decoding: errText.value, as: UTF8.self),
                      crashed: !timedOut && p.terminationReason == .uncaughtSignal, timedOut: timedOut)
    }

    final class Handoff: @unchecked Sendable {
        var value: Data
        init(_ value: Data) { self.value = value }
    }
}
