import Core
import Foundation

/// One problem with a setting, keyed by its pipeline key (`training.batch_size`,
/// `model.widths[2]`). The pipeline loader adds the file and line; the CLI adds the flag.
public struct SettingIssue: Error, CustomStringConvertible, Sendable, Equatable {
    public var key: String
    public var problem: String
    public var fix: String

    public init(key: String, problem: String, fix: String) {
        self.key = key
        self.problem = problem
        self.fix = fix
    }

    public var description: String { "\(key): \(problem). \(fix)" }
}

/// The range of a numeric setting: the one range check behind a YAML key, its CLI flag and
/// the option types' `issues()`. Upper bounds refuse absurd values (that would exhaust memory
/// or never finish) with a fix that names the value to go below.
public struct Bounds: Sendable, Equatable {
    public var lower: Double?
    /// The lower bound itself is refused (a value must be greater than it).
    public var lowerOpen = false
    public var upper: Double?
    /// The upper bound itself is refused.
    public var upperOpen = false

    /// Any finite value.
    public static let any = Bounds()
    public static func atLeast(_ v: Double) -> Bounds { Bounds(lower: v) }
    public static func greaterThan(_ v: Double) -> Bounds { Bounds(lower: v, lowerOpen: true) }
    public static func between(_ a: Double, _ b: Double) -> Bounds { Bounds(lower: a, upper: b) }
    /// A fraction strictly between 0 and 1.
    public static let openFraction = Bounds(lower: 0, lowerOpen: true, upper: 1, upperOpen: true)
    /// A fraction from 0 to 1, both included.
    public static let fraction = Bounds(lower: 0, upper: 1)

    /// The problem and its fix, or nil when `value` is in range.
    public func check(_ value: Double, integer: Bool) -> (problem: String, fix: String)? {
        let got = Bounds.text(value, integer: integer)
        guard value.isFinite else { return ("must be a finite number, got \(got)", "Write a number\(rangeText(integer))") }
        if let lower, value < lower || (lowerOpen && value == lower) {
            let b = Bounds.text(lower, integer: integer)
            return lowerOpen ? ("must be greater than \(b), got \(got)", "Use a value > \(b)\(upperText(integer))")
                : ("must be at least \(b), got \(got)", "Use a value ≥ \(b)\(upperText(integer))")
        }
        if let upper, value > upper || (upperOpen && value == upper) {
            let b = Bounds.text(upper, integer: integer)
            return upperOpen ? ("must be less than \(b), got \(got)", "Lower it below \(b)")
                : ("must be at most \(b), got \(got)", "Lower it to \(b) or less")
        }
        return nil
    }

    /// " (from 1 to 4096)" style text for the reference; empty for `.any`.
    public func rangeText(_ integer: Bool) -> String {
        switch (lower, upper) {
        case (nil, nil): return ""
        case (let l?, nil): return " (\(lowerOpen ? ">" : "≥") \(Bounds.text(l, integer: integer)))"
        case (nil, let u?): return " (\(upperOpen ? "<" : "≤") \(Bounds.text(u, integer: integer)))"
        case (let l?, let u?):
            return " (\(Bounds.text(l, integer: integer))\(lowerOpen ? " <" : " ≤") x \(upperOpen ? "<" : "≤") \(Bounds.text(u, integer: integer)))"
        }
    }

    func upperText(_ integer: Bool) -> String {
        upper.map { " and \(upperOpen ? "<" : "≤") \(Bounds.text($0, integer: integer))" } ?? ""
    }

    /// Integers as integers, other values in the shortest form (so 1e-3 written as Float or
    /// Double, in YAML or on the command line, reads the same).
    static func text(_ v: Double, integer: Bool) -> String {
        if integer, v.isFinite, abs(v) < 1e18 { return String(Int64(v)) }
        return String(format: "%g", v)
    }
}
