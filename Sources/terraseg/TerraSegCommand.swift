import ArgumentParser
import Core
import Distributed
import Engine
import Foundation
import GeoRaster
import Logging

/// The version printed by `terraseg --version` and written into model bundles.
let terrasegVersion = "0.1.0"

@main
struct TerraSegCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "terraseg",
        abstract: "Semantic segmentation of satellite scenes: read rasters, train U-Nets, write georeferenced land-cover maps.",
        version: "terraseg \(terrasegVersion) (GDAL \(GDALRuntime.version); \(CPUFeatures.summary))",
        subcommands: [Info.self, Run.self, Train.self, Predict.self, Evaluate.self, QuicklookCommand.self, Quantize.self, Import.self])

    /// ArgumentParser's entry point, with one boundary for errors: a Foundation or system error
    /// that no layer turned into a `TerraSegError` is put in plain words, naming its file.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch where TerraSegError.isFoundationError(error) {
            let path = (error as NSError).userInfo[NSFilePathErrorKey] as? String ?? "terraseg"
            exitAll(withError: TerraSegError(.readFailed, path: path, problem: TerraSegError.plainWords(error)))
        } catch {
            exitAll(withError: error)
        }
    }

    /// Prints the error and exits; under mpirun an error (not a chosen exit status such as an
    /// interruption's) also ends the other ranks (MPI_Abort), which may wait in a collective.
    static func exitAll(withError error: Error) -> Never {
        if let world = Communicator.current, world.size > 1, !(error is ExitCode), !(error is CleanExit) {
            FileHandle.standardError.write(Data(("rank \(world.rank) of \(world.size): " + fullMessage(for: error) + "\n").utf8))
            world.abort(status: exitCode(for: error).rawValue)
        }
        exit(withError: error)
    }
}

/// Options every subcommand shares.
struct GlobalOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print debug messages, including GDAL's warnings.")
    var verbose = false

    /// Refuses bad TERRASEG_* environment values before the subcommand starts.
    func validate() throws { _ = try TerraSegEnvironment.current() }

    func bootstrapLogging() {
        // Under mpirun only rank 0 reports; the other ranks print errors only.
        let rank = (try? Communicator.world())?.rank ?? 0
        let level: Logger.Level = rank != 0 ? .error : verbose ? .debug : .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// Runs a command's work with SIGINT/SIGTERM honoured (`StopSignal`): the work stops at its
/// next safe point, and the command prints one line saying what was kept and exits 130
/// (SIGINT) or 143 (SIGTERM).
func stoppable<T>(_ body: () throws -> T) throws -> T {
    StopSignal.install()
    do {
        return try body()
    } catch let stop as Interrupted {
        FileHandle.standardError.write(Data((stop.description + "\n").utf8))
        throw ExitCode(stop.exitStatus)
    }
}
