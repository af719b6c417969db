"""Configuration spaces of the meta-algorithm and their export to other tools."""
