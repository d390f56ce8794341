"""Pictures of a cross-view training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def training_curves(history, path: str | Path) -> Path:
    """Training loss and validation recall by epoch (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from placeprint.evaluate.report import save_figure

    epochs = np.arange(1, len(history.loss) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(epochs, history.loss)
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    a.set_yscale("log")
    b.plot(epochs, history.val_r1, label="R@1")
    b.plot(epochs, history.val_r_top1pct, label="R@top-1 %")
    b.set_xlabel("epoch")
    b.set_ylabel("validation recall")
    b.set_ylim(0, 1)
    b.legend()
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, Path(path))
