"""The Earth: distances, EXIF positions (and later cells, probability maps, place names)."""
