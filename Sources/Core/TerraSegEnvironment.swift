import Foundation

/// Where 3×3 stride-1 convolutions may use oneDNN's Winograd F(4×4, 3×3) kernels
/// (`TERRASEG_WINOGRAD`). The engine reads it from `Runtime.winograd`.
public enum WinogradUse: String, Sendable, CaseIterable {
    /// Direct convolution everywhere.
    case off
    /// Winograd for the backward-weights pass only.
    case backwardWeights
    /// Winograd for every pass (the default).
    case all
}

/// The environment variables TerraSeg reads, parsed and checked in this one place. Every
/// other module asks this type; none calls `getenv` for a TERRASEG_ variable itself.
///
/// | variable                 | values                              | default    |
/// |--------------------------|-------------------------------------|------------|
/// | `TERRASEG_THREADS`       | threads, 1…4096                     | all cores  |
/// | `TERRASEG_WINOGRAD`      | `all`, `weights`, `0` (or `off`, `none`) | `all` |
/// | `TERRASEG_TRACE_BATCHES` | a file to write the training batches to | none   |
/// | `TERRASEG_ALLREDUCE_BUCKET_KB` | KiB of gradients per all-reduce under mpirun, 0…1048576 (0: one after the backward pass) | 8192 |
///
/// A variable set to the empty string counts as unset. Any other value outside the list is
/// refused with a `TerraSegError` naming the variable, the value and the accepted values.
public struct TerraSegEnvironment: Sendable, Equatable {
    public static let threadsVariable = "TERRASEG_THREADS"
    public static let winogradVariable = "TERRASEG_WINOGRAD"
    public static let traceBatchesVariable = "TERRASEG_TRACE_BATCHES"
    public static let bucketVariable = "TERRASEG_ALLREDUCE_BUCKET_KB"
    public static let maximumThreads = 4096

    /// Threads for oneDNN and TerraSeg's own kernels; nil: all cores.
    public var threads: Int?
    public var winograd: WinogradUse
    /// Where training writes each batch's patches and symmetries (a debugging aid for
    /// side-by-side runs with another framework); nil: no trace.
    public var traceBatches: String?
    /// Data-parallel training: KiB of gradients all-reduced together while the backward pass
    /// runs (0: all of them in one all-reduce after it).
    public var allReduceBucketKilobytes = 8192

    public init(threads: Int? = nil, winograd: WinogradUse = .all, traceBatches: String? = nil, allReduceBucketKilobytes: Int = 8192) {
        self.threads = threads
        self.winograd = winograd
        self.traceBatches = traceBatches
        self.allReduceBucketKilobytes = allReduceBucketKilobytes
    }

    /// Parses `variables` (normally the process environment); throws on the first bad value.
    public init(_ variables: [String: String]) throws(TerraSegError) {
        self.init()
        func value(_ name: String) -> String? { variables[name].flatMap { $0.isEmpty ? nil : $0 } }
        if let text = value(Self.threadsVariable) {
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 1, n <= Self.maximumThreads else {
                throw Self.refuse(Self.threadsVariable, text, accepted: "a whole number of threads from 1 to \(Self.maximumThreads)")
            }
            threads = n
        }
        if let text = value(Self.winogradVariable) {
            guard let use = Self.winogradUse(text) else {
                throw Self.refuse(Self.winogradVariable, text, accepted: "all, weights, or 0 (also off, none)")
            }
            winograd = use
        }
        traceBatches = value(Self.traceBatchesVariable)
        if let text = value(Self.bucketVariable) {
            guard let n = Int(text.trimmingCharacters(in: .whitespaces)), (0...(1 << 20)).contains(n) else {
                throw Self.refuse(Self.bucketVariable, text, accepted: "a whole number of KiB from 0 (one all-reduce after the backward pass) to 1048576")
            }
            allReduceBucketKilobytes = n
        }
    }

    /// The spellings `TERRASEG_WINOGRAD` accepts (case-insensitive).
    static func winogradUse(_ text: String) -> WinogradUse? {
        switch text.trimmingCharacters(in: .whitespaces).lowercased() {
        case "all": .all
        case "weights": .backwardWeights
        case "0", "off", "none": .off
        default: nil
        }
    }

    static func refuse(_ variable: String, _ value: String, accepted: String) -> TerraSegError {
        TerraSegError(.invalidArgument, path: variable, problem: "'\(value)' is not a valid value",
                      hint: "Use \(accepted), or unset \(variable)")
    }

    /// This process's environment, parsed once.
    public static let process: Result<TerraSegEnvironment, TerraSegError> = Result { () throws(TerraSegError) in
        try TerraSegEnvironment(ProcessInfo.processInfo.environment)
    }

    /// This process's settings; throws the refusal when a variable has a bad value. Entry
    /// points (the CLI, the benchmark) call it first, so a bad value stops them before any work.
    public static func current() throws -> TerraSegEnvironment { try process.get() }

    /// This process's settings for code that cannot throw (the engine's lazily initialised
    /// globals): a bad value stops the process with the same message.
    public static var checked: TerraSegEnvironment {
        switch process {
        case .success(let environment): return environment
        case .failure(let error): fatalError("\(error)")
        }
    }
}
