import Testing
import Tiling

@Suite struct SymmetryTests {
    /// The 8 index maps are permutations, all different, and form the group of the square:
    /// composing any two gives one of the 8.
    @Test func theEightSymmetriesFormTheGroupOfTheSquare() {
        let size = 5
        let maps = Symmetry.all.map { $0.sourceMap(size: size) }
        #expect(maps.count == 8)
        #expect(Set(maps).count == 8)
        for m in maps { #expect(m.sorted() == Array(0..<(size * size))) }
        for a in maps {
            for b in maps { #expect(maps.contains(a.map { b[$0] })) }
        }
        #expect(Symmetry.all[0].isIdentity && maps[0] == Array(0..<(size * size)))
    }

    /// A quarter turn moves the top-left pixel to the bottom-left (counter-clockwise), a flip to the top-right.
    @Test func quarterTurnIsCounterClockwiseAndFlipIsHorizontal() {
        let size = 3
        let turn = Symmetry(quarterTurns: 1, flip: false).sourceMap(size: size)
        #expect(turn[2 * size + 0] == 0)
        let flip = Symmetry(quarterTurns: 0, flip: true).sourceMap(size: size)
        #expect(flip[0 * size + 2] == 0)
        #expect(Symmetry(quarterTurns: 4, flip: false).sourceMap(size: size) == Array(0..<(size * size)))
    }
}
