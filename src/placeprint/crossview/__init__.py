"""Cross-view localisation: ground photos and panoramas against aerial imagery.

``world`` generates a synthetic city (no real ground/aerial pairs exist offline),
``render`` draws its aerial tiles and ground panoramas, ``polar`` maps a tile to the
panorama's geometry (SAFA).
"""
