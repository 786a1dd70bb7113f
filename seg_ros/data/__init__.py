"""Data sources that are not the node's to segment: the synthetic street scenes."""
