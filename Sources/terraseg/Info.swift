import ArgumentParser
import Foundation
import GeoRaster

extension TerraSegCommand {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe a raster: size, bands, types, nodata, masks, georeferencing, overviews.",
            discussion: "Several files are described as one band stack when they share a grid (e.g. Landsat band files).")

        @Argument(help: "Raster file(s); several files are stacked band by band.")
        var rasters: [String]

        @Flag(help: "Print one JSON object instead of text.")
        var json = false

        @OptionGroup var global: GlobalOptions

        func run() throws {
            global.bootstrapLogging()
            let source = try openRaster(rasters)
            let info = source.info
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                print(String(decoding: try encoder.encode(info), as: UTF8.self))
            } else {
                print(InfoText.render(info))
            }
        }
    }
}

/// The human-readable summary printed by `terraseg info`.
enum InfoText {
    static func render(_ info: RasterInfo) -> String {
        var lines: [String] = []
        let files = Array(Set(info.bands.map(\.path))).sorted()
        if files.count > 1 {
            lines.append("Files:       \(files.count) stacked on one grid, bands in the order given")
        } else {
            lines.append("File:        \(info.path)")
        }
        lines.append("Driver:      \(info.driver)")
        lines.append("Size:        \(info.width) × \(info.height) pixels, \(info.bandCount) band\(info.bandCount == 1 ? "" : "s")")
        if let crs = info.crs {
            lines.append("CRS:         \(crs.summary)")
        } else if info.gcpCount > 0 {
            lines.append("CRS:         none on the grid; \(info.gcpCount) GCPs in \(info.gcpCRS?.shortName ?? "an unknown CRS")")
        } else {
            lines.append("CRS:         none (not georeferenced: maps made from it will have no CRS)")
        }
        if let gt = info.geoTransform {
            var s = "origin (\(num(gt.originX)), \(num(gt.originY))), pixel \(num(gt.pixelWidth)) × \(num(gt.pixelHeight))"
            if gt.isRotated { s += ", rotated (\(num(gt.coefficients[2])), \(num(gt.coefficients[4])))" }
            if let unit = info.crs?.linearUnits { s += " \(unit)" }
            lines.append("Transform:   \(s)")
        } else {
            lines.append("Transform:   none")
        }
        var layout: [String] = []
        if let i = info.interleave { layout.append("interleave \(i.lowercased())") }
        if let c = info.compression { layout.append("compression \(c)") }
        if let p = info.pixelIs { layout.append("pixel is \(p.lowercased())") }
        if !layout.isEmpty { lines.append("Layout:      " + layout.joined(separator: ", ")) }
        lines.append("Overviews:   " + (info.overviews.isEmpty ? "none" : info.overviews.map { "\($0[0])×\($0[1])" }.joined(separator: ", ")))
        lines.append("")
        let header = ["Band", "Type", "Nodata", "Mask", "Colour", "Block", "Description"]
        var rows: [[String]] = [header]
        for b in info.bands {
            var desc = b.description
            if b.hasColorTable { desc += desc.isEmpty ? "[colour table]" : " [colour table]" }
            if !b.categoryNames.isEmpty { desc += " [\(b.categoryNames.filter { !$0.isEmpty }.count) classes]" }
            if info.bands.contains(where: { $0.path != info.bands[0].path }) {
                desc += (desc.isEmpty ? "" : " ") + "(\(URL(fileURLWithPath: b.path).lastPathComponent))"
            }
            rows.append([String(b.index), b.dataType.rawValue, b.nodata.map(num) ?? "-", b.maskFlags.names.joined(separator: ","),
                         b.colorInterpretation, "\(b.blockWidth)×\(b.blockHeight)", desc])
        }
        let widths = (0..<header.count).map { col in rows.map { $0[col].count }.max() ?? 0 }
        for r in rows {
            lines.append(r.enumerated().map { i, s in i == r.count - 1 ? s : s.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
        return lines.joined(separator: "\n")
    }

    static func num(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}
