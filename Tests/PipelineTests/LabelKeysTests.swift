import Foundation
import Pipeline
import Testing
import TestSupport
import Training

/// The label keys of a pipeline: vector labels with burn/background/unmatched, and remap.
@Suite struct LabelKeysTests {
    @Test func burnBackgroundUnmatchedAndRemapAreRead() throws {
        let text = """
        data:
          scenes:
            - {image: scene.tif, vector_labels: buildings.gpkg, burn: 2, background: 1, name: north}
            - {image: scene2.tif, vector_labels: fields.gpkg, label_attribute: crop, unmatched: ignore}
            - {image: scene3.tif, labels: cdl.tif}
          classes: [{value: 1, name: other}, {value: 2, name: building}]
          ignore: [0]
          remap: [{from: [1, 5, 12], to: 1}, {from: [24], to: 2}]
        """
        let loaded = try PipelineLoader.parse(text, file: "p.yaml", base: "/nonexistent", checkFiles: false)
        let scenes = loaded.spec.data.scenes
        #expect(scenes[0].burn == 2 && scenes[0].background == 1 && scenes[0].labelAttribute == nil)
        #expect(scenes[1].unmatched == "ignore")
        #expect(scenes[0].name == "north" && scenes[1].name == nil)
        #expect(loaded.spec.data.remap == [RemapRule(from: [1, 5, 12], to: 1), RemapRule(from: [24], to: 2)])
    }

    @Test func unknownUnmatchedChoiceAndMissingClassSourceAreRefused() throws {
        let text = """
        data:
          scenes:
            - {image: scene.tif, vector_labels: buildings.gpkg, unmatched: skip, name: a/b}
          classes: [{value: 1, name: other}, {value: 2, name: building}]
        """
        let error = #expect(throws: PipelineError.self) { try PipelineLoader.parse(text, file: "p.yaml", base: "/nonexistent", checkFiles: false) }
        let message = error?.description ?? ""
        #expect(message.contains("data.scenes[0].unmatched"), "\(message)")
        #expect(message.contains("burn: <class value>"), "\(message)")
        #expect(message.contains("data.scenes[0].name: 'a/b' is not a file name"), "\(message)")
    }
}
