import Foundation
import CGDAL
import Logging

/// Process-wide GDAL set-up: drivers registered once, and GDAL's default printing to stderr
/// replaced by a handler that routes messages to swift-log. Errors are never printed here:
/// GDAL keeps the last one per thread and `GDALRuntime.lastError()` turns it into a
/// `RasterError` at the call that failed.
public enum GDALRuntime {
    static let logger = Logger(label: "terraseg.gdal")

    private static let initialized: Void = {
        GDALAllRegister()
        CPLSetErrorHandler { errorClass, _, message in
            guard let message else { return }
            let text = String(cString: message)
            switch errorClass {
            case CE_Warning:
                GDALRuntime.logger.debug("GDAL warning: \(text)")
            case CE_Debug:
                GDALRuntime.logger.trace("GDAL: \(text)")
            default:
                // CE_Failure / CE_Fatal: recorded by GDAL as the thread's last error and
                // raised as a RasterError by the failing call.
                GDALRuntime.logger.debug("GDAL error: \(text)")
            }
        }
        // Sidecar .aux.xml files hold the raster attribute table for GeoTIFF.
        CPLSetConfigOption("GDAL_PAM_ENABLED", "YES")
        // GDAL's block cache defaults to 5 % of RAM and would hold written tiles of a huge map;
        // TerraSeg streams, so a modest cache suffices (a user's GDAL_CACHEMAX wins).
        if getenv("GDAL_CACHEMAX") == nil { CPLSetConfigOption("GDAL_CACHEMAX", "256") }
    }()

    /// Caps GDAL's block cache at `bytes` (below the 256 MB default only; a user's
    /// GDAL_CACHEMAX wins), for a `--memory` budget.
    public static func limitCache(bytes: Int) {
        ensureInitialized()
        guard getenv("GDAL_CACHEMAX") == nil else { return }
        GDALSetCacheMax64(GIntBig(min(bytes, 256 << 20)))
    }

    /// Registers drivers and installs the error handler; cheap after the first call.
    public static func ensureInitialized() { _ = initialized }

    /// GDAL's version string, for example "3.6.2".
    public static var version: String {
        ensureInitialized()
        return String(cString: GDALVersionInfo("RELEASE_NAME"))
    }

    /// Clears the calling thread's last GDAL error before a call whose failure we want to report.
    static func resetError() { CPLErrorReset() }

    /// The calling thread's last GDAL error message, or nil.
    static func lastErrorMessage() -> String? {
        guard CPLGetLastErrorType() != CE_None, let msg = CPLGetLastErrorMsg() else { return nil }
        let text = String(cString: msg)
        return text.isEmpty ? nil : text
    }

    /// Driver short names this GDAL build can create files with (for messages and checks).
    public static func hasDriver(_ name: String) -> Bool {
        ensureInitialized()
        return GDALGetDriverByName(name) != nil
    }

    /// Builds a GDAL string list (`char **`) from Swift strings; free with `CSLDestroy`.
    static func stringList(_ items: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        var list: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        for item in items { list = CSLAddString(list, item) }
        return list
    }
}
