import Testing
@Test func placeholderGeo() {}
