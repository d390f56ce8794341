"""Deep global descriptors from ImageNet MobileNetV2 feature maps: GeM and NetVLAD.

No place-recognition weights can be had offline, so both describers pool the
feature maps of torchvision's ImageNet MobileNetV2 (run through onnxruntime, see
:mod:`placeprint.describe.mobilenet_onnx`) and learn only cheap things from the
database: PCA-whitening (both) and the NetVLAD centres.

* :class:`GemDescriber` (``cnn_gem``): generalised-mean pooling (Radenovic et al.
  2018) per channel in each cell of a spatial ``grid``, averaged over ``scales``, L2,
  PCA-whitening. Its defaults keep an early layer's whole 16x8 map (Sunderhauf et al.
  2015 found mid-level conv features the most robust to appearance change); on
  Nordland winter vs summer that beats global pooling 0.67 to 0.04 (R@1).
* :class:`NetVladDescriber` (``cnn_netvlad``): L2-normalised local features softly
  assigned to ``clusters`` k-means centres (faiss) and aggregated as in NetVLAD
  (:mod:`placeprint.describe.netvlad`), then PCA-whitening.

Images are resized to exactly ``image_size = (w, h)`` before the network (tiny frames
such as Nordland's 64x32 are upsampled; a photo's aspect ratio is not kept), so every
batch has one shape and runs as one onnxruntime call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from placeprint.describe.base import Describer, ImageLike
from placeprint.describe.images import load_rgb
from placeprint.describe.mobilenet_onnx import (
    layer_channels,
    layer_name,
    layer_stride,
    open_session,
    parse_layer,
    preprocess,
)
from placeprint.describe.netvlad import init_alpha, netvlad_aggregate_batch
from placeprint.describe.whitening import LearnedWhitening, PCAWhitening, l2_normalise
from placeprint.errors import PlaceprintError

MAX_BATCH_PIXELS = 224 * 224 * 32  # input pixels per onnxruntime call (bounds memory)


class MobileNetBackbone:
    """ImageNet MobileNetV2 feature maps of one ``layer`` (see ``mobilenet_onnx``).

    Picklable: the onnxruntime session is dropped when pickled and rebuilt on first
    use (the graph itself is cached on disk).
    """

    def __init__(self, layer: int | str = "last", threads: int = 2) -> None:
        parse_layer(layer)  # validates
        if int(threads) < 1:
            raise PlaceprintError(f"threads must be >= 1, got {threads}")
        self.layer = layer
        self.threads = int(threads)
        self._session = None

    @property
    def channels(self) -> int:
        """Channels ``C`` of the feature maps."""
        return layer_channels(self.layer)

    @property
    def stride(self) -> int:
        """Input pixels per feature-map cell (e.g. 32 for ``"last"``)."""
        return layer_stride(self.layer)

    @property
    def model_bytes(self) -> int:
        """Size of the ONNX graph a query runs (the weights up to ``layer``), in bytes."""
        from placeprint.describe.mobilenet_onnx import ensure_model

        return ensure_model((self.layer,)).stat().st_size

    @property
    def session(self):
        """The onnxruntime session (built on first use)."""
        if self._session is None:
            self._session = open_session((self.layer,), logits=False, threads=self.threads)
        return self._session

    def feature_maps(self, images_rgb: np.ndarray) -> np.ndarray:
        """``(n, C, h', w') float32`` maps of ``(n, h, w, 3)`` RGB images in [0, 255]
        (all one size; ``h' = ceil(h / stride)``)."""
        x = preprocess(images_rgb)
        if len(x) == 0:
            raise PlaceprintError("feature_maps needs at least one image")
        return self.session.run([layer_name(self.layer)], {"image": x})[0]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_session"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _bins(size: int, cells: int) -> list[tuple[int, int]]:
    """Adaptive-pooling bin bounds (as torch's adaptive pooling): cell i covers
    ``[floor(i*size/cells), ceil((i+1)*size/cells))``."""
    return [((i * size) // cells, -((-(i + 1) * size) // cells)) for i in range(cells)]


def gem(
    maps: np.ndarray, p: float = 3.0, grid: tuple[int, int] = (1, 1), eps: float = 1e-6
) -> np.ndarray:
    """Generalised mean (Radenovic et al. 2018) of ``(n, C, h, w)`` maps in each cell of a
    ``grid = (columns, rows)`` of adaptive bins -> ``(n, C * rows * columns) float32``
    (channel-major: ``out.reshape(n, C, rows, columns)``).

    Each cell gives ``(mean max(x, eps)^p)^(1/p)``; ``p = 1`` is plain average pooling and
    keeps signs (use it for the linear bottleneck outputs of blocks 1-17, which can be
    negative); large ``p`` tends to max pooling. ``grid = (1, 1)`` is global GeM; a grid
    as fine as the map returns the map itself (for ``p = 1``).
    """
    x = np.asarray(maps, np.float32)
    if x.ndim != 4:
        raise PlaceprintError(f"feature maps must be (n, C, h, w), got {x.shape}")
    cols, rows = (int(g) for g in grid)
    n, C, H, W = x.shape
    if p != 1:
        x = np.maximum(x, eps) ** p
    if H % rows == 0 and W % cols == 0:
        out = x.reshape(n, C, rows, H // rows, cols, W // cols).mean(axis=(3, 5))
    else:
        out = np.empty((n, C, rows, cols), np.float32)
        for i, (y0, y1) in enumerate(_bins(H, rows)):
            for j, (x0, x1) in enumerate(_bins(W, cols)):
                out[:, :, i, j] = x[:, :, y0:y1, x0:x1].mean(axis=(2, 3))
    if p != 1:
        out = out ** (1.0 / p)
    return out.reshape(n, -1).astype(np.float32)


def _load_resized(image: ImageLike, size: tuple[int, int]) -> np.ndarray:
    """``load_rgb`` at exactly ``size = (w, h)``; arrays already that size are not
    re-quantised to 8 bits."""
    if isinstance(image, np.ndarray) and image.shape[:2] == (size[1], size[0]):
        return load_rgb(image)
    return load_rgb(image, size=size)


def _parse_grid(grid: Sequence[int]) -> tuple[int, int]:
    try:
        cols, rows = (int(v) for v in grid)
    except (TypeError, ValueError):
        raise PlaceprintError(f"grid must be (columns, rows), got {grid!r}") from None
    if min(cols, rows) < 1:
        raise PlaceprintError(f"grid must be at least (1, 1), got {grid!r}")
    return cols, rows


def _parse_size(image_size: Sequence[int]) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise PlaceprintError(f"image_size must be (width, height), got {image_size!r}") from None
    if min(w, h) < 32:
        raise PlaceprintError(f"image_size must be at least 32x32 pixels, got {w}x{h}")
    return w, h


def _parse_scales(scales: Sequence[float] | float) -> tuple[float, ...]:
    scales = (scales,) if isinstance(scales, int | float) else tuple(scales)
    if not scales or any(not (0.1 <= float(s) <= 4.0) for s in scales):
        raise PlaceprintError(f"scales must be numbers in [0.1, 4], got {scales!r}")
    return tuple(float(s) for s in scales)


class _DeepDescriber(Describer):
    """Shared plumbing: loading, resizing, batching, the backbone, whitening."""

    learns = True

    def __init__(
        self,
        layer: int | str,
        image_size: Sequence[int],
        scales: Sequence[float] | float,
        whiten_dims: int | None,
        whiten_eps: float,
        threads: int,
    ) -> None:
        self.backbone = MobileNetBackbone(layer, threads)
        self.layer = layer
        self.image_size = _parse_size(image_size)
        self.scales = _parse_scales(scales)
        if whiten_dims is not None and int(whiten_dims) < 1:
            raise PlaceprintError(f"whiten_dims must be >= 1 or None, got {whiten_dims}")
        if not float(whiten_eps) >= 0:
            raise PlaceprintError(f"whiten_eps must be >= 0, got {whiten_eps}")
        self.whiten_dims = None if whiten_dims is None else int(whiten_dims)
        self.whiten_eps = float(whiten_eps)
        self.threads = int(threads)

    def fixed_bytes(self) -> int:
        """The ONNX graph of the backbone up to its layer."""
        return self.backbone.model_bytes

    def _common_params(self) -> dict:
        return {
            "layer": self.layer,
            "image_size": list(self.image_size),
            "scales": list(self.scales),
            "whiten_dims": self.whiten_dims,
            "whiten_eps": self.whiten_eps,
        }

    def _scaled_maps(self, images: Sequence[ImageLike]):
        """Yield ``(indices, [feature maps per scale])`` for batches of images, in order."""
        w, h = self.image_size
        per_call = max(1, MAX_BATCH_PIXELS // (w * h))
        for start in range(0, len(images), per_call):
            chunk = images[start : start + per_call]
            rgb = np.stack([_load_resized(im, (w, h)) for im in chunk])
            maps = []
            for s in self.scales:
                size = (max(32, round(w * s)), max(32, round(h * s)))
                x = rgb if size == (w, h) else np.stack([load_rgb(im, size=size) for im in rgb])
                maps.append(self.backbone.feature_maps(x))
            yield np.arange(start, start + len(chunk)), maps

    def _raw(self, images: Sequence[ImageLike]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Descriptors ``(n, dim) float32`` with unit rows."""
        raw = self._raw(images)
        return raw if self.whiten_dims is None else self.whitening_.transform(raw)

    def _fit_whitening(self, raw: np.ndarray, positives: np.ndarray | None = None) -> None:
        """PCA-whitening of ``raw``, or, with ``positives`` (the same places as the first
        rows of ``raw`` under another condition), whitening learned from those pairs."""
        if self.whiten_dims is not None:
            if len(raw) < 2:
                raise PlaceprintError("PCA-whitening needs at least 2 database images")
            if positives is None:
                self.whitening_ = PCAWhitening(self.whiten_dims, self.whiten_eps).fit(raw)
            else:
                self.whitening_ = LearnedWhitening(self.whiten_dims, self.whiten_eps).fit(
                    raw, positives
                )

    def _whitening_state(self) -> dict[str, np.ndarray]:
        if self.whiten_dims is None or not hasattr(self, "whitening_"):
            return {}
        return {f"whiten_{k}": v for k, v in self.whitening_.state().items()}

    def _set_whitening_state(self, arrays: dict[str, np.ndarray]) -> None:
        if self.whiten_dims is not None:
            sub = {k[len("whiten_") :]: v for k, v in arrays.items() if k.startswith("whiten_")}
            if set(sub) != {"mean", "components", "scales"}:
                raise PlaceprintError("saved describer state lacks its PCA-whitening arrays")
            self.whitening_ = PCAWhitening.from_state(sub, self.whiten_eps)

    def _output_dim(self, raw_dim: int) -> int:
        if self.whiten_dims is None:
            return raw_dim
        if hasattr(self, "whitening_"):
            return self.whitening_.output_dim
        return min(self.whiten_dims, raw_dim)


class GemDescriber(_DeepDescriber):
    """MobileNetV2 feature map -> GeM in each cell of a ``grid`` -> mean over ``scales``
    -> L2 -> PCA-whitening to ``whiten_dims`` (fitted on the database; ``None`` skips it
    and then nothing is learned). Output ``(n, dim) float32`` with unit rows.

    Defaults (tuned on Nordland frames <= 20000, winter queries vs summer database):
    ``layer=6`` (32 channels, stride 8), ``image_size=(128, 64)``, ``grid=(16, 8)`` with
    ``p=1`` -- i.e. the whole 16x8 map of an early layer, its spatial layout kept --
    then whitening to 1024 dims with ``whiten_eps=0.1``: single-frame R@1 0.67 (frames
    <= 20000) and 0.56 (20010-25000), against 0.04 for classic global GeM
    (``layer="last", grid=(1, 1), p=3``, 224x112) and 0.20 for SeqSLAM. Global pooling
    discards the layout that tells one stretch of railway from another; for photos
    taken from varying viewpoints, global GeM on ``"last"`` is the usual choice.
    """

    name = "cnn_gem"

    def __init__(
        self,
        layer: int | str = 6,
        image_size: Sequence[int] = (128, 64),
        grid: Sequence[int] = (16, 8),
        p: float = 1.0,
        scales: Sequence[float] | float = (1.0,),
        whiten_dims: int | None = 1024,
        whiten_eps: float = 0.1,
        threads: int = 2,
    ) -> None:
        super().__init__(layer, image_size, scales, whiten_dims, whiten_eps, threads)
        if not 1.0 <= float(p) <= 20.0:
            raise PlaceprintError(f"GeM power p must be in [1, 20], got {p}")
        self.p = float(p)
        self.grid = _parse_grid(grid)
        self.learns = self.whiten_dims is not None

    @property
    def dim(self) -> int:
        return self._output_dim(self.backbone.channels * self.grid[0] * self.grid[1])

    def params(self) -> dict:
        return {**self._common_params(), "grid": list(self.grid), "p": self.p}

    def _raw(self, images: Sequence[ImageLike]) -> np.ndarray:
        raw_dim = self.backbone.channels * self.grid[0] * self.grid[1]
        out = np.empty((len(images), raw_dim), np.float32)
        for idx, maps in self._scaled_maps(images):
            pooled = [l2_normalise(gem(m, self.p, self.grid)) for m in maps]
            out[idx] = np.mean(pooled, axis=0)
        return l2_normalise(out)

    def fit(
        self, images: Sequence[ImageLike], positives: Sequence[ImageLike] | None = None
    ) -> GemDescriber:
        """Fit the whitening on database ``images`` (nothing to do without it).

        ``positives``: the same places as the first database images under another
        condition (e.g. another season); the whitening is then learned from the pairs
        (Radenović et al.): on Nordland (pairs <= 20000) held-out single-frame R@1
        0.556 -> 0.644 against PCA-whitening.
        """
        if self.whiten_dims is not None:
            pos = None if positives is None else self._raw(list(positives))
            self._fit_whitening(self._raw(list(images)), pos)
        return self

    def _state(self) -> dict[str, np.ndarray]:
        return self._whitening_state()

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_whitening_state(arrays)


class NetVladDescriber(_DeepDescriber):
    """MobileNetV2 local features (L2-normalised per map cell, cells of all ``scales``
    together) -> NetVLAD over ``clusters`` k-means centres -> PCA-whitening.

    ``fit`` runs k-means (faiss, ``seed``) on at most ``max_features`` local features
    from at most ``max_kmeans_images`` database images, sets ``alpha`` by NetVLAD's rule
    (:func:`~placeprint.describe.netvlad.init_alpha`: on average the nearest centre gets
    ``alpha_ratio`` times the weight of the second nearest), then fits the whitening on
    the database's NetVLAD vectors. Like any global pooling it ignores layout: on
    Nordland's 64x32 frames it reaches only R@1 ~0.04 (see :class:`GemDescriber`).
    """

    name = "cnn_netvlad"

    def __init__(
        self,
        layer: int | str = "last",
        image_size: Sequence[int] = (224, 224),
        clusters: int = 16,
        alpha_ratio: float = 100.0,
        scales: Sequence[float] | float = (1.0,),
        whiten_dims: int | None = 256,
        whiten_eps: float = 0.1,
        max_features: int = 100_000,
        max_kmeans_images: int = 1000,
        seed: int = 0,
        threads: int = 2,
    ) -> None:
        super().__init__(layer, image_size, scales, whiten_dims, whiten_eps, threads)
        if int(clusters) < 2:
            raise PlaceprintError(f"clusters must be >= 2, got {clusters}")
        if not float(alpha_ratio) > 1.0:
            raise PlaceprintError(f"alpha_ratio must be > 1, got {alpha_ratio}")
        if int(max_features) < 1 or int(max_kmeans_images) < 1:
            raise PlaceprintError("max_features and max_kmeans_images must be >= 1")
        self.clusters = int(clusters)
        self.alpha_ratio = float(alpha_ratio)
        self.max_features = int(max_features)
        self.max_kmeans_images = int(max_kmeans_images)
        self.seed = int(seed)

    @property
    def dim(self) -> int:
        return self._output_dim(self.clusters * self.backbone.channels)

    def params(self) -> dict:
        return {
            **self._common_params(),
            "clusters": self.clusters,
            "alpha_ratio": self.alpha_ratio,
            "max_features": self.max_features,
            "max_kmeans_images": self.max_kmeans_images,
            "seed": self.seed,
        }

    def local_features(self, maps: list[np.ndarray]) -> np.ndarray:
        """``(n, m, C)`` unit-norm local features of per-scale ``(n, C, h, w)`` maps."""
        flat = [m.reshape(m.shape[0], m.shape[1], -1).transpose(0, 2, 1) for m in maps]
        return l2_normalise(np.concatenate(flat, axis=1), axis=2)

    def _raw(self, images: Sequence[ImageLike]) -> np.ndarray:
        out = np.empty((len(images), self.clusters * self.backbone.channels), np.float32)
        alpha = float(self.alpha_[0])
        for idx, maps in self._scaled_maps(images):
            out[idx] = netvlad_aggregate_batch(self.local_features(maps), self.centres_, alpha)
        return out

    def fit(
        self, images: Sequence[ImageLike], positives: Sequence[ImageLike] | None = None
    ) -> NetVladDescriber:
        """Learn centres, ``alpha`` and the whitening from database ``images``.

        With ``positives`` (the first database places under another condition) the
        whitening is learned from the pairs, as in :meth:`GemDescriber.fit`.
        """
        import faiss

        images = list(images)
        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.permutation(len(images))[: self.max_kmeans_images])
        feats = [
            self.local_features(maps).reshape(-1, self.backbone.channels)
            for _, maps in self._scaled_maps([images[i] for i in pick])
        ]
        X = np.concatenate(feats) if feats else np.zeros((0, self.backbone.channels))
        if len(X) > self.max_features:
            X = X[np.sort(rng.choice(len(X), self.max_features, replace=False))]
        if len(X) < self.clusters:
            raise PlaceprintError(
                f"{len(X)} local features cannot make {self.clusters} clusters: give more "
                "or larger database images, or fewer clusters"
            )
        kmeans = faiss.Kmeans(X.shape[1], self.clusters, niter=25, seed=self.seed)
        kmeans.train(np.ascontiguousarray(X, np.float32))
        self.centres_ = np.asarray(kmeans.centroids, np.float32)
        self.alpha_ = np.array([init_alpha(X, self.centres_, self.alpha_ratio)], np.float32)
        pos = None if positives is None else self._raw(list(positives))
        self._fit_whitening(self._raw(images), pos)
        return self

    def _state(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "centres_"):
            return {}
        return {"centres": self.centres_, "alpha": self.alpha_, **self._whitening_state()}

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        if "centres" not in arrays or "alpha" not in arrays:
            raise PlaceprintError("saved NetVLAD state lacks its centres or alpha")
        centres = np.asarray(arrays["centres"], np.float32)
        expected = (self.clusters, self.backbone.channels)
        if centres.shape != expected:
            raise PlaceprintError(f"saved NetVLAD centres are {centres.shape}, expected {expected}")
        self.centres_ = centres
        self.alpha_ = np.asarray(arrays["alpha"], np.float32).reshape(1)
        self._set_whitening_state(arrays)
