"""Nordland summer/winter sequences from ``$PLACEPRINT_DATA/nordland``.

Same file name in both seasons = same place. Database = summer, queries = winter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from placeprint.config import data_path
from placeprint.describe.images import list_images, load_gray
from placeprint.errors import PlaceprintError

DARK_THRESHOLD = 25.0


@dataclass
class Nordland:
    """File lists of both seasons, aligned by name, and their frame numbers."""

    summer: list[Path]
    winter: list[Path]
    frames: np.ndarray  # (n,) int, the number in images-NNNNN.png

    def __len__(self) -> int:
        return len(self.summer)

    def dark_mask(self, threshold: float = DARK_THRESHOLD) -> np.ndarray:
        """``(n,) bool``: mean intensity below ``threshold`` in either season."""
        mean_s = np.array([mean_intensity(p) for p in self.summer])
        mean_w = np.array([mean_intensity(p) for p in self.winter])
        return (mean_s < threshold) | (mean_w < threshold)


_MEANS: dict[tuple[str, int, int], float] = {}


def mean_intensity(path: Path) -> float:
    """Mean grey level of an image file, remembered for the process while the file is
    unchanged (same size and modification time): every Nordland load asks for all 5,000."""
    st = Path(path).stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _MEANS:
        _MEANS[key] = float(load_gray(path).mean())
    return _MEANS[key]


def load_nordland(root: str | Path | None = None) -> Nordland:
    """List Nordland's summer and winter frames (paired by file name)."""
    root = Path(root) if root is not None else data_path("nordland")
    summer = {p.name: p for p in list_images(root / "summer")}
    winter = {p.name: p for p in list_images(root / "winter")}
    names = sorted(set(summer) & set(winter))
    if not names:
        raise PlaceprintError(f"no frames with the same name in {root}/summer and {root}/winter")
    frames = np.array([int("".join(c for c in n if c.isdigit()) or -1) for n in names])
    return Nordland([summer[n] for n in names], [winter[n] for n in names], frames)
