"""Train a cross-view model on a pair set, on the CPU, resumably.

Every epoch shuffles the training pairs into batches; each batch's ground views are
turned to random headings (``random_heading``; needed for limited fields of view and
orientation regression) and cut to ``fov_deg``; the loss (:mod:`.losses`) is taken over
all the batch's triplets (``D = 2 - 2 cos``, or ``2 - 2 x`` the DSM score). After each
epoch the model is scored on the validation pairs and the checkpoint (model, optimiser,
settings, history) is written atomically; ``resume`` continues from it.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from placeprint.crossview import losses
from placeprint.crossview.data import as_float, pair_inputs, view_at
from placeprint.crossview.evaluate import encode, random_shifts, score
from placeprint.crossview.models import CrossViewModel, ModelConfig, dsm_scores
from placeprint.crossview.pairs import PairSet
from placeprint.errors import PlaceprintError

CHECKPOINT_FORMAT = "placeprint-crossview-model"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainSettings:
    """How a model is trained."""

    epochs: int = 20
    batch: int = 32
    learning_rate: float = 1e-3
    loss: str = "weighted_soft_margin"
    alpha: float = 10.0
    fov_deg: float = 360.0
    random_heading: bool = False
    orientation_weight: float = 0.5
    seed: int = 0
    threads: int = 2

    def check(self) -> None:
        if self.loss not in losses.LOSSES:
            raise PlaceprintError(f"loss must be one of {', '.join(losses.LOSSES)}")
        if self.epochs < 1 or self.batch < 3 or self.learning_rate <= 0 or self.threads < 1:
            raise PlaceprintError("need epochs >= 1, batch >= 3, learning_rate > 0, threads >= 1")
        if not 0 < self.fov_deg <= 360:
            raise PlaceprintError(f"fov_deg must lie in (0, 360], got {self.fov_deg}")


@dataclass
class History:
    """Per epoch: mean training loss, validation recall, seconds."""

    loss: list[float] = field(default_factory=list)
    val_r1: list[float] = field(default_factory=list)
    val_r_top1pct: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _loss_value(settings: TrainSettings, D: torch.Tensor) -> torch.Tensor:
    f = losses.LOSSES[settings.loss]
    if settings.loss in ("weighted_soft_margin", "weighted_soft_margin_quadruplet"):
        return f(D, settings.alpha)
    return f(D)


def _distances(model: CrossViewModel, g: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``D (B, B)``: squared distances of unit descriptors, ``2 - 2 x similarity``."""
    if model.config.aggregation == "dsm":
        scores, _ = dsm_scores(g, a)
        return 2.0 - 2.0 * scores
    return losses.squared_distances(g, a)


def save_checkpoint(path: Path, model, optimiser, config, settings, history, epoch) -> None:
    from placeprint.atomic import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": json.dumps(config.to_dict()),
            "settings": json.dumps(asdict(settings)),
            "history": json.dumps(asdict(history)),
            "epoch": epoch,
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's parts; a file of another kind or version is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise PlaceprintError(f"checkpoint not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise PlaceprintError(f"{path} is not a placeprint cross-view checkpoint") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise PlaceprintError(f"{path} is not a placeprint cross-view checkpoint")
    if ck.get("version") != CHECKPOINT_VERSION:
        raise PlaceprintError(
            f"{path}: checkpoint version {ck.get('version')}, this placeprint reads "
            f"version {CHECKPOINT_VERSION}"
        )
    ck["config"] = ModelConfig.from_dict(json.loads(ck["config"]))
    ck["settings"] = TrainSettings(**json.loads(ck["settings"]))
    ck["history"] = History(**json.loads(ck["history"]))
    return ck


def load_model(path: str | Path) -> CrossViewModel:
    """The trained model of a checkpoint, ready to encode."""
    ck = load_checkpoint(path)
    model = CrossViewModel(ck["config"])
    _materialise(model)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError:
        raise PlaceprintError(f"{path}: the weights do not fit the model they name") from None
    model.eval()
    return model


def _materialise(model: CrossViewModel) -> None:
    """Run one tiny batch so that lazily sized layers get their shapes."""
    c = model.config
    with torch.no_grad():
        model.eval()
        g = torch.zeros(1, 3, *c.ground_size)
        model.encode_ground(g)
        model.encode_aerial(torch.zeros(1, 3, *c.aerial_size))
        if model.orientation is not None:
            model.predict_heading(g)


def train(
    train_pairs: PairSet,
    val_pairs: PairSet,
    config: ModelConfig,
    settings: TrainSettings,
    checkpoint: str | Path,
    resume: bool = False,
    progress: Callable[[str], None] | None = None,
) -> tuple[CrossViewModel, History]:
    """Train (or go on training) and return the model and its history."""
    config.check()
    settings.check()
    checkpoint = Path(checkpoint)
    if not checkpoint.parent.is_dir():
        raise PlaceprintError(f"folder does not exist: {checkpoint.parent}")
    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    model = CrossViewModel(config)
    _materialise(model)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    history, start = History(), 0
    if resume and checkpoint.exists():
        ck = load_checkpoint(checkpoint)
        same = asdict(ck["settings"]) | {"epochs": settings.epochs} == asdict(settings)
        if ck["config"] != config or not same:  # only more epochs may be asked for
            raise PlaceprintError(
                f"{checkpoint} was trained with other settings: start afresh without resume"
            )
        model.load_state_dict(ck["model"])
        optimiser.load_state_dict(ck["optimiser"])
        history, start = ck["history"], int(ck["epoch"])
    G, A = pair_inputs(train_pairs, config)
    Gv, Av = pair_inputs(val_pairs, config)
    rng = np.random.default_rng([settings.seed, start])
    W = G.shape[-1]
    for epoch in range(start, settings.epochs):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(len(G))
        total, batches = 0.0, 0
        for i in range(0, len(order) - settings.batch + 1, settings.batch):
            idx = torch.from_numpy(order[i : i + settings.batch])
            shift = (
                torch.from_numpy(rng.integers(0, W, size=len(idx)))
                if settings.random_heading
                else torch.zeros(len(idx), dtype=torch.long)
            )
            g_in = as_float(view_at(G[idx], shift, settings.fov_deg))
            g = model.encode_ground(g_in)
            a = model.encode_aerial(as_float(A[idx]))
            loss = _loss_value(settings, _distances(model, g, a))
            if model.orientation is not None:
                heading = shift.float() / W * 2 * math.pi
                loss = loss + settings.orientation_weight * losses.orientation_regression(
                    model.predict_heading(g_in), heading
                )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
            batches += 1
        history.loss.append(total / max(batches, 1))
        scores = validate(model, Gv, Av, settings)
        history.val_r1.append(scores["r1"])
        history.val_r_top1pct.append(scores["r_top1pct"])
        history.seconds.append(time.perf_counter() - t0)
        save_checkpoint(checkpoint, model, optimiser, config, settings, history, epoch + 1)
        if progress is not None:
            progress(
                f"epoch {epoch + 1}/{settings.epochs}: loss {history.loss[-1]:.4f}, "
                f"val R@1 {scores['r1']:.3f}, R@1% {scores['r_top1pct']:.3f}, "
                f"{history.seconds[-1]:.0f} s"
            )
    model.eval()
    return model, history


def validate(model, G: torch.Tensor, A: torch.Tensor, settings: TrainSettings) -> dict:
    """Recall (and heading error) of ground inputs ``G`` against tiles ``A``, at the
    training field of view and headings drawn from a fixed seed."""
    a = encode(model, A, ground=False)
    rng = np.random.default_rng(12345)
    shift = random_shifts(rng, len(G), G.shape[-1]) if settings.random_heading else None
    return score(model, G, a, settings.fov_deg, shift)
