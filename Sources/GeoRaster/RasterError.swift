/// The one error type of the raster layer. It always names the file, names the band when
/// one is involved, carries GDAL's own message when GDAL produced one, and says what to do.
public struct RasterError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case notFound, openFailed, readFailed, writeFailed, createFailed
        case unsupportedType, badBand, badWindow, gridMismatch, invalidArgument, notGeoreferenced
    }

    public var kind: Kind
    /// The file (or GDAL dataset name) involved.
    public var path: String
    /// 1-based band index within `path`, when a band is involved.
    public var band: Int?
    /// What went wrong, in words.
    public var problem: String
    /// GDAL's last error message, when GDAL reported one.
    public var gdalMessage: String?
    /// What the user can do about it.
    public var hint: String?

    public init(_ kind: Kind, path: String, band: Int? = nil, problem: String,
                gdalMessage: String? = nil, hint: String? = nil) {
        self.kind = kind
        self.path = path
        self.band = band
        self.problem = problem
        self.gdalMessage = gdalMessage.flatMap { $0.isEmpty ? nil : $0 }
        self.hint = hint
    }

    public var description: String {
        var text = path
        if let band { text += ", band \(band)" }
        text += ": \(problem)"
        if let gdalMessage, !problem.contains(gdalMessage) { text += " (GDAL: \(gdalMessage))" }
        if let hint { text += ". \(hint)" }
        return text
    }
}
