// Filled by its own issue; see DESIGN.md for what this layer holds.
export {}
