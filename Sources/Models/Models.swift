/// Layers, losses, optimisers and networks (see DESIGN.md). Placeholder until A2 lands.
import Engine
public enum ModelsInfo { public static let name = "TerraSeg models" }
