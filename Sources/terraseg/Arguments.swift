import ArgumentParser
import GeoRaster
import Inference
import Models
import Pipeline
import Tiling
import Training

// Every flag binds to a typed value: enums by their raw values (choices listed in --help),
// structured values through the library's one parser for their text form, numbers through
// the pipeline schema's range checks (`SettingIssue`s from the option types' `issues()`).

extension UpsamplingMode: ExpressibleByArgument {}
extension ResNetEncoder: ExpressibleByArgument {}
extension OptimizerOptions.Kind: ExpressibleByArgument {}
extension ScheduleOptions.Kind: ExpressibleByArgument {}
extension NormalizationMethod: ExpressibleByArgument {}
extension BlendMode: ExpressibleByArgument {}
extension CompressionChoice: ExpressibleByArgument {}
extension Connectedness: ExpressibleByArgument {}

/// `--model`: a network kind, or a preset of the reference network.
enum ModelChoice: String, CaseIterable, ExpressibleByArgument {
    case unet, dilated, resnetUNet = "resnet-unet", r1, r1Nails = "r1-nails"

    func apply(to spec: inout ModelSpec) {
        switch self {
        case .unet: spec.kind = .unet
        case .dilated: spec.kind = .dilated
        case .resnetUNet: spec.kind = .resnetUNet
        case .r1, .r1Nails: spec.preset = rawValue
        }
    }
}

/// The range problems of settings given as flags, each naming the flag and its pipeline key.
struct SettingsRefused: Error, CustomStringConvertible {
    var lines: [String]
    var description: String { lines.joined(separator: "\n") }

    /// Throws when `issues` is not empty. `flags` maps pipeline keys (or key prefixes such as
    /// `tiling.split`) to the flag that sets them.
    static func check(_ issues: [SettingIssue], flags: [String: String]) throws {
        guard !issues.isEmpty else { return }
        throw SettingsRefused(lines: issues.map { issue in
            guard let flag = flag(for: issue.key, in: flags) else { return issue.description }
            return "\(flag) (\(issue.key)): \(issue.problem). \(issue.fix)"
        })
    }

    /// The flag of the longest key in `flags` that `key` (list indices dropped) starts with.
    static func flag(for key: String, in flags: [String: String]) -> String? {
        var parts = key.split(separator: ".").map { String($0.split(separator: "[").first ?? $0) }
        while !parts.isEmpty {
            if let flag = flags[parts.joined(separator: ".")] { return flag }
            parts.removeLast()
        }
        return nil
    }
}

/// Help text naming the flag's pipeline key. Optional flags (whose default is the library's,
/// so that a flag given overrides a pipeline file) also show the key's documented default;
/// flags with a default value of their own get theirs shown by the argument parser.
func keyHelp(_ text: String, key: String, showDefault: Bool = true) -> ArgumentHelp {
    let field = PipelineSchema.field(key)
    precondition(field != nil, "no pipeline key \(key)")
    return ArgumentHelp("\(text) (pipeline key \(key)\(showDefault ? "; default: " + field!.defaultText : ""))")
}
