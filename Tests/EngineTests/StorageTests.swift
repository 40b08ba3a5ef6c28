import Engine
import Glibc
import Testing

/// A large Storage is zero without a serial fill: its pages stay untouched (not resident) until
/// written, so an inference network's gradients cost no memory and the first writer (oneDNN's
/// threads) takes the page faults. Before, `Storage` zero-filled every page at allocation.
@Test func largeStorageIsZeroWithoutTouchingItsPages() {
    let s = Storage(capacity: 16 << 20)  // 64 MB: above glibc's largest mmap threshold (32 MB)
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = Int(bitPattern: s.pointer) / page * page
    let length = Int(bitPattern: s.pointer + s.capacity) - start
    var resident = [UInt8](repeating: 0, count: (length + page - 1) / page)
    #expect(mincore(UnsafeMutableRawPointer(bitPattern: start), length, &resident) == 0)
    #expect(resident.filter { $0 & 1 != 0 }.count < resident.count / 100, "pages touched before any write")
    #expect(stride(from: 0, to: s.capacity, by: 4093).allSatisfy { s.pointer[$0] == 0 })
}
