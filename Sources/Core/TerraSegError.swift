import Foundation

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

extension TerraSegError {
    /// A Foundation or system error (FileManager, Data, JSONDecoder) as a `TerraSegError`
    /// naming `path`, so no "NSCocoaErrorDomain error 512" reaches the user.
    public init(_ kind: Kind, path: String, action: String, _ error: Error, hint: String? = nil) {
        self.init(kind, path: path, problem: "\(action): \(TerraSegError.plainWords(error))", hint: hint)
    }

    /// Whether `error` comes from Foundation or the system (and needs `plainWords`).
    public static func isFoundationError(_ error: Error) -> Bool {
        if error is DecodingError || error is EncodingError { return true }
        let domain = (error as NSError).domain
        return domain == NSCocoaErrorDomain || domain == NSPOSIXErrorDomain
    }

    /// What went wrong, in words: the system's reason (strerror) where there is one.
    public static func plainWords(_ error: Error) -> String {
        if let e = error as? TerraSegError { return e.problem }
        if let e = error as? DecodingError { return decodingWords(e) }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(ns.code))) }
        guard ns.domain == NSCocoaErrorDomain else { return String(describing: error) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        switch CocoaError.Code(rawValue: ns.code) {
        case .fileNoSuchFile, .fileReadNoSuchFile: return "no such file or directory"
        case .fileReadNoPermission, .fileWriteNoPermission: return "permission denied"
        case .fileWriteFileExists: return "a file of that name already exists"
        case .fileWriteOutOfSpace: return "no space left on the device"
        case .fileWriteVolumeReadOnly: return "the file system is read-only"
        case .fileReadCorruptFile, .propertyListReadCorrupt: return "the contents are damaged or not in the expected format"
        case .fileReadInapplicableStringEncoding: return "the text is not in the expected encoding (UTF-8)"
        case .fileReadTooLarge: return "the file is too large"
        case .fileWriteUnknown: return "cannot write there (is a part of the path a file, or not writable?)"
        default: return "a file system error (code \(ns.code))"
        }
    }

    static func decodingWords(_ e: DecodingError) -> String {
        func key(_ path: [CodingKey]) -> String {
            path.isEmpty ? "the top level" : "'" + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") + "'"
        }
        switch e {
        case .keyNotFound(let k, let c): return "missing key \(key(c.codingPath + [k]))"
        case .typeMismatch(_, let c): return "\(key(c.codingPath)) has the wrong type (\(c.debugDescription))"
        case .valueNotFound(_, let c): return "\(key(c.codingPath)) is null"
        case .dataCorrupted(let c): return "\(key(c.codingPath)): \(c.debugDescription)"
        @unknown default: return String(describing: e)
        }
    }
}
