/// The error type for everything that is not about a raster: model bundles, safetensors and
/// checkpoint files, settings (YAML keys, command-line flags, environment variables) and
/// output directories. Raster problems (a band, a window, GDAL's message) are `RasterError`s
/// in GeoRaster. Both read the same way: what is involved, the problem, what to do.
public struct TerraSegError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case notFound, readFailed, writeFailed, createFailed, invalidArgument
    }

    public var kind: Kind
    /// What is involved: a file or directory, or a setting's key, flag or variable name.
    public var path: String
    /// What went wrong, in words.
    public var problem: String
    /// What the user can do about it.
    public var hint: String?

    public init(_ kind: Kind, path: String, problem: String, hint: String? = nil) {
        self.kind = kind
        self.path = path
        self.problem = problem
        self.hint = hint
    }

    public var description: String {
        var text = "\(path): \(problem)"
        if let hint { text += ". \(hint)" }
        return text
    }
}
