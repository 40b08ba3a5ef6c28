import Core
import GeoRaster

/// Which set a training patch belongs to.
public enum SplitRole: String, Sendable, Codable { case train, validation, discarded }

/// Train/validation split by spatial blocks, never by random overlapping patches: a patch
/// whose pixels touch both sets is discarded, so no validation pixel is ever trained on.
public enum SpatialSplit: Hashable, Sendable {
    /// Rows above `fraction` of the height train; the rest validate (e.g. top 60 %).
    case rows(trainFraction: Double)
    /// Columns left of `fraction` of the width train; the rest validate.
    case columns(trainFraction: Double)
    /// Square blocks of `blockSize` pixels, each assigned to validation with probability
    /// `validationFraction` by a seeded generator (the same seed gives the same split).
    case blocks(blockSize: Int, validationFraction: Double, seed: UInt64)
    /// Everything trains (no validation).
    case none

    /// The role of every pixel block a window covers; `.discarded` when they disagree.
    public func role(of window: Window, width: Int, height: Int) -> SplitRole {
        switch self {
        case .none:
            return .train
        case .rows(let f):
            let boundary = Int((Double(height) * f).rounded())
            if window.endRow <= boundary { return .train }
            if window.row >= boundary { return .validation }
            return .discarded
        case .columns(let f):
            let boundary = Int((Double(width) * f).rounded())
            if window.endColumn <= boundary { return .train }
            if window.column >= boundary { return .validation }
            return .discarded
        case let .blocks(size, fraction, seed):
            var roles = Set<SplitRole>()
            let r0 = max(0, window.row) / size, r1 = (max(0, min(height, window.endRow)) - 1) / size
            let c0 = max(0, window.column) / size, c1 = (max(0, min(width, window.endColumn)) - 1) / size
            guard r1 >= r0, c1 >= c0 else { return .discarded }
            for br in r0...r1 {
                for bc in c0...c1 {
                    roles.insert(SpatialSplit.blockIsValidation(row: br, column: bc, fraction: fraction, seed: seed) ? .validation : .train)
                }
            }
            return roles.count == 1 ? roles.first! : .discarded
        }
    }

    /// Role of a single pixel (for masking validation metrics exactly).
    public func role(column: Int, row: Int, width: Int, height: Int) -> SplitRole {
        role(of: Window(column: column, row: row, width: 1, height: 1), width: width, height: height)
    }

    /// A stateless hash of (block, seed): the same blocks whatever order they are asked in.
    static func blockIsValidation(row: Int, column: Int, fraction: Double, seed: UInt64) -> Bool {
        var x = seed &+ UInt64(bitPattern: Int64(row)) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(bitPattern: Int64(column)) &* 0xC2B2_AE3D_27D4_EB4F
        // splitmix64 finaliser
        x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
        x ^= x >> 31
        return Double(x >> 11) / Double(1 << 53) < fraction
    }
}
