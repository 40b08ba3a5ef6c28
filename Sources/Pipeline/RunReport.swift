import Core
import Foundation
import GeoRaster
import Inference
import Metrics
import ModelIO
import Models
import Training

/// `report.html` of a run: headline metrics, quicklooks of the map (with legend) beside a
/// false-colour view of the input, training curves (inline SVG), per-class IoU and F1, and
/// the confusion matrix. Self-contained: the PNGs are embedded.
struct RunReport {
    var spec: PipelineSpec
    var pipelineFile: String
    var bundle: ModelBundle
    var history: [EpochMetrics]
    var best: EpochMetrics?
    var maps: [String]
    var scenes: [[String]]
    var evaluations: [MapEvaluator.Result]
    var region: EvaluationSpec.Region
    var bundlePath: String
    /// One score per tile set over its test chips.
    var testChips: [MapEvaluator.Result] = []

    func write(to path: String, assets: String) throws {
        try AtomicFile.createDirectory(assets)
        var looks: [(map: String, input: String?)] = []
        for (i, map) in maps.enumerated() {
            try StopSignal.check()
            let stem = URL(fileURLWithPath: map).deletingPathExtension().lastPathComponent
            let mapPNG = assets + "/\(stem).png"
            try Quicklook.classMap(map, to: mapPNG, maxSize: 900)
            var inputPNG: String? = assets + "/\(stem)_input.png"
            do {
                try Quicklook.falseColor(scenes[i], bands: falseColorBands(), to: inputPNG!, maxSize: 900)
            } catch {
                inputPNG = nil
            }
            looks.append((mapPNG, inputPNG))
        }
        try AtomicFile.write(html(looks: looks), to: path)
    }

    /// NIR, red, green when the band descriptions say which they are; else 4-3-2 or 3-2-1.
    func falseColorBands() -> [Int] {
        let d = bundle.bandDescriptions.map { $0.lowercased() }
        func find(_ words: [String]) -> Int? {
            d.firstIndex { desc in words.contains { desc.contains($0) } }.map { bundle.bands[$0] }
        }
        if let n = find(["nir", "near"]), let r = find(["red"]), let g = find(["green"]) { return [n, r, g] }
        let b = bundle.bands
        return b.count >= 4 ? [b[3], b[2], b[1]] : b.count >= 3 ? [b[2], b[1], b[0]] : [b[0]]
    }

    func dataURI(_ png: String) -> String {
        guard let d = FileManager.default.contents(atPath: png) else { return "" }
        return "data:image/png;base64," + d.base64EncodedString()
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func f3(_ v: Double?) -> String { v.map { $0.isNaN ? "–" : String(format: "%.3f", $0) } ?? "–" }

    func html(looks: [(map: String, input: String?)]) -> String {
        head() + cards() + looksSection(looks) + curvesSection() + scoresSection() + testChipsSection()
            + "<p class=\"muted\">Pipeline \(Self.esc(pipelineFile)) · model bundle \(Self.esc(bundlePath)) · TerraSeg \(Self.esc(bundle.provenance.terrasegVersion))</p></body></html>\n"
    }

    /// The document head (style sheet), title and the model line.
    func head() -> String {
        let classes = bundle.classes.classes
        return """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>TerraSeg run: \(Self.esc(spec.name))</title>
        <style>
        body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#1d2630;padding:0 16px}
        h1{margin-bottom:4px}.sub{color:#5a6572;margin-top:0}
        .cards{display:flex;gap:14px;flex-wrap:wrap;margin:18px 0}.card{border:1px solid #d7dde3;border-radius:8px;padding:12px 16px;min-width:150px}
        .card .v{font-size:28px;font-weight:600}.card .k{color:#5a6572;font-size:13px}
        .looks{display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start}.looks figure{margin:0}.looks img{max-width:520px;width:100%;border:1px solid #d7dde3;background:#f3f5f7}
        figcaption{font-size:13px;color:#5a6572}
        .legend{list-style:none;padding:0;margin:0;font-size:14px}.legend li{margin:3px 0}.sw{display:inline-block;width:14px;height:14px;border:1px solid #0003;vertical-align:-2px;margin-right:6px}
        table{border-collapse:collapse;font-size:14px;margin:8px 0}td,th{border:1px solid #d7dde3;padding:4px 8px;text-align:right}th{background:#f3f5f7}td:first-child,th:first-child{text-align:left}
        .charts{display:flex;gap:18px;flex-wrap:wrap}.muted{color:#5a6572;font-size:13px}
        </style></head><body>
        <h1>\(Self.esc(spec.name))</h1>
        <p class="sub">\(Self.esc(bundle.architecture.name)) · \(bundle.bands.count) bands · \(classes.count) classes · \(bundle.provenance.epochs) epochs\(bundle.provenance.wallSeconds.map { String(format: " · trained in %.0f s", $0) } ?? "") · \(Self.esc(bundle.provenance.created))</p>
        <div class="cards">
        """
    }

    /// Headline metrics: validation scores of the best epoch, and the first map's evaluation.
    func cards() -> String {
        var h = ""
        func card(_ k: String, _ v: String) { h += "<div class=\"card\"><div class=\"v\">\(v)</div><div class=\"k\">\(k)</div></div>\n" }
        card("validation mIoU (best epoch \(best.map { String($0.epoch) } ?? "–"))", Self.f3(best?.meanIoU))
        card("validation overall accuracy", Self.f3(best?.overallAccuracy))
        if let e = evaluations.first {
            let label = region == .validation ? "map, validation area" : "map, whole scene"
            card("\(label): mIoU", Self.f3(e.report.meanIoU))
            card("\(label): overall accuracy", Self.f3(e.report.overallAccuracy))
            card("\(label): kappa", Self.f3(e.report.kappa))
        }
        return h + "</div>\n"
    }

    /// Quicklooks of each map (and its false-colour input) with the legend.
    func looksSection(_ looks: [(map: String, input: String?)]) -> String {
        var h = ""
        for (i, look) in looks.enumerated() {
            h += "<h2>Map: \(Self.esc(URL(fileURLWithPath: maps[i]).lastPathComponent))</h2>\n<div class=\"looks\">"
            h += "<figure><img alt=\"class map\" src=\"\(dataURI(look.map))\"><figcaption>Class map</figcaption></figure>"
            if let input = look.input {
                h += "<figure><img alt=\"false-colour input\" src=\"\(dataURI(input))\"><figcaption>Input, false colour (bands \(falseColorBands().map(String.init).joined(separator: "-")), 2–98 % stretch)</figcaption></figure>"
            }
            h += "<div><b>Legend</b><ul class=\"legend\">"
            for c in bundle.classes.classes { h += "<li><span class=\"sw\" style=\"background:\(c.color.hex)\"></span>\(Self.esc(c.name)) (\(c.value))</li>" }
            h += "<li><span class=\"sw\" style=\"background:transparent\"></span>nodata (255)</li></ul></div></div>\n"
            let note = spec.prediction.options.mapNote.map { " · " + Self.esc($0) } ?? ""
            h += "<p class=\"muted\">\(Self.esc(maps[i]))\(note)</p>\n"
        }
        return h
    }

    /// Loss and validation-score curves per epoch.
    func curvesSection() -> String {
        guard !history.isEmpty else { return "" }
        var h = "<h2>Training</h2><div class=\"charts\">"
        h += SVGChart.line(title: "Loss", series: [("train", "#1f78b4", history.map { $0.trainLoss }),
                                                    ("validation", "#e31a1c", history.map { $0.validationLoss })])
        h += SVGChart.line(title: "Validation scores", series: [("mIoU", "#33a02c", history.map { $0.meanIoU }),
                                                               ("OA", "#6a3d9a", history.map { $0.overallAccuracy })], yRange: (0, 1))
        return h + "</div>\n"
    }

    /// Per-class scores and the confusion matrix of the first map's evaluation; without one,
    /// the best epoch's per-class validation scores.
    func scoresSection() -> String {
        if let e = evaluations.first { return evaluationTables(e) }
        guard let best, let iou = best.perClassIoU else { return "" }
        var h = "<h2>Per-class validation scores</h2><table><tr><th>class</th><th>IoU</th><th>F1</th></tr>"
        for c in bundle.classes.classes { h += "<tr><td>\(Self.esc(c.name))</td><td>\(Self.f3(iou[c.name]))</td><td>\(Self.f3(best.perClassF1?[c.name]))</td></tr>" }
        return h + "</table>"
    }

    /// Per tile set: OA, mIoU and kappa, per-class scores and the confusion matrix over its test chips.
    func testChipsSection() -> String {
        testChips.map { e in
            "<h2>Test chips: \(Self.esc(e.prediction))</h2><p>overall accuracy \(Self.f3(e.report.overallAccuracy)) · mIoU \(Self.f3(e.report.meanIoU)) · kappa \(Self.f3(e.report.kappa))</p>\n"
                + evaluationTables(e, scope: "test chips")
        }.joined()
    }

    func evaluationTables(_ e: MapEvaluator.Result, scope: String? = nil) -> String {
        var h = "<h2>Per-class scores (\(scope ?? (region == .validation ? "validation area of the map" : "whole map")))</h2><table><tr><th>class</th><th>value</th><th>reference px</th><th>predicted px</th><th>precision</th><th>recall</th><th>F1</th><th>IoU</th></tr>"
        for c in e.report.classes {
            h += "<tr><td>\(Self.esc(c.name))</td><td>\(c.value)</td><td>\(c.referencePixels)</td><td>\(c.predictedPixels)</td><td>\(Self.f3(c.precision))</td><td>\(Self.f3(c.recall))</td><td>\(Self.f3(c.f1))</td><td>\(Self.f3(c.iou))</td></tr>"
        }
        h += "</table><p class=\"muted\">\(e.report.pixels) pixels scored; \(e.ignoredPixels) skipped (nodata, ignored values\(region == .validation ? ", training area" : "")); \(e.unpredictedPixels) labelled pixels without prediction (input nodata).</p>\n"
        h += "<h2>Confusion matrix</h2><p class=\"muted\">rows: reference, columns: prediction</p><table><tr><th></th>"
        for c in e.report.classes { h += "<th>\(Self.esc(c.name))</th>" }
        h += "</tr>"
        for (i, row) in e.report.confusionMatrix.enumerated() {
            let total = max(1, row.reduce(0, +))
            h += "<tr><th>\(Self.esc(e.report.classes[i].name))</th>"
            for (j, n) in row.enumerated() {
                let a = Double(n) / Double(total)
                let color = i == j ? "rgba(51,160,44,\(String(format: "%.2f", a)))" : "rgba(227,26,28,\(String(format: "%.2f", a)))"
                h += "<td style=\"background:\(color)\">\(n)</td>"
            }
            h += "</tr>"
        }
        h += "</table>\n"
        return h
    }
}

/// Minimal line charts as inline SVG (no JavaScript, no external assets).
enum SVGChart {
    static func line(title: String, series: [(String, String, [Double?])], yRange: (Double, Double)? = nil) -> String {
        let w = 520.0, h = 260.0, left = 48.0, right = 12.0, top = 28.0, bottom = 36.0
        let n = series.map { $0.2.count }.max() ?? 0
        let values = series.flatMap { $0.2.compactMap { $0 } }.filter { $0.isFinite }
        var lo = yRange?.0 ?? (values.min() ?? 0), hi = yRange?.1 ?? (values.max() ?? 1)
        if hi - lo < 1e-9 { hi = lo + 1 }
        if yRange == nil { lo = min(lo, 0) }
        func x(_ i: Int) -> Double { left + (n > 1 ? Double(i) / Double(n - 1) : 0.5) * (w - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (v - lo) / (hi - lo)) * (h - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" role=\"img\" aria-label=\"\(title)\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"#fff\" stroke=\"#d7dde3\"/>"
        s += "<text x=\"\(left)\" y=\"18\" font-size=\"14\" font-weight=\"600\">\(title)</text>"
        for k in 0...4 {
            let v = lo + (hi - lo) * Double(k) / 4
            s += "<line x1=\"\(left)\" x2=\"\(w - right)\" y1=\"\(y(v))\" y2=\"\(y(v))\" stroke=\"#eef1f4\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(y(v) + 4)\" font-size=\"11\" text-anchor=\"end\" fill=\"#5a6572\">\(String(format: "%.2f", v))</text>"
        }
        let ticks = Set([0, n / 2, max(0, n - 1)])
        for i in ticks.sorted() where n > 0 {
            s += "<text x=\"\(x(i))\" y=\"\(h - bottom + 16)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5a6572\">\(i + 1)</text>"
        }
        s += "<text x=\"\((left + w - right) / 2)\" y=\"\(h - 6)\" font-size=\"11\" text-anchor=\"middle\" fill=\"#5a6572\">epoch</text>"
        for (k, (name, color, data)) in series.enumerated() {
            let pts = data.enumerated().compactMap { i, v in v.flatMap { $0.isFinite ? "\(x(i)),\(y($0))" : nil } }
            if pts.count > 1 { s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"/>" }
            for p in pts { let c = p.split(separator: ","); s += "<circle cx=\"\(c[0])\" cy=\"\(c[1])\" r=\"2.5\" fill=\"\(color)\"/>" }
            s += "<rect x=\"\(w - right - 110)\" y=\"\(10 + 16 * Double(k))\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            s += "<text x=\"\(w - right - 95)\" y=\"\(19 + 16 * Double(k))\" font-size=\"12\">\(name)</text>"
        }
        return s + "</svg>"
    }
}
