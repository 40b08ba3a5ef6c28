import Foundation
import GeoRaster
import Pipeline
import Testing
import TestSupport

/// The data section's band-recipe keys in a pipeline file.
@Suite struct GridPipelineTests {
    @Test func mosaicsResamplingNodataAndGridKeysAreRead() throws {
        let yaml = """
        data:
          scenes:
            - image: [[left_B02.tif, right_B02.tif], [left_B8A.tif, right_B8A.tif]]
              labels: labels.tif
          classes: [{value: 1, name: a}, {value: 2, name: b}]
          band_names: [B02, B8A]
          resampling: [bilinear, nearest]
          nodata: [0]
          resolution: 20
          crs: EPSG:32631
          bounds: [0, 0, 100, 100]
        """
        let loaded = try PipelineLoader.parse(yaml, file: "job.yaml", base: "/d", checkFiles: false)
        let data = loaded.spec.data
        #expect(data.scenes[0].image == ["/d/left_B02.tif+/d/right_B02.tif", "/d/left_B8A.tif+/d/right_B8A.tif"])
        #expect(data.bandNames == ["B02", "B8A"] && data.resampling == [.bilinear, .nearest] && data.nodata == [0])
        #expect(data.resolution == 20 && data.crs == "EPSG:32631" && data.bounds == [0, 0, 100, 100])
        let bad = #expect(throws: PipelineError.self) {
            try PipelineLoader.parse(yaml.replacingOccurrences(of: "resolution: 20", with: "resolution: 0")
                .replacingOccurrences(of: "nearest]", with: "cubicspline]"), file: "job.yaml", base: "/d", checkFiles: false)
        }
        #expect(bad?.description.contains("data.resolution: must be greater than 0, got 0") == true, "\(String(describing: bad))")
        #expect(bad?.description.contains("data.resampling[1]") == true)
    }
}
