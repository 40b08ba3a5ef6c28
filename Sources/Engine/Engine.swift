/// The tensor engine (see DESIGN.md). Placeholder until A2 lands.
public enum EngineInfo {
    public static let name = "TerraSeg engine"
}
