"""The Earth: distances, EXIF positions, collections, S2 cells, probability maps, place names."""
