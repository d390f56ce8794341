"""MobileNetV2 + NetVLAD with a Contextual Reweighting Network (Kim, Dunn & Frahm, CVPR 2017).

``CrnDescriber`` (registry name ``crn``) aggregates the L2-normalised local features of
one MobileNetV2 layer with NetVLAD, each location weighted by a mask ``m_l > 0`` that
a small network predicts from the context around it (:mod:`placeprint.describe.crn_model`):
``V_k = sum_l m_l a_l^k (x_l - c_k)``, intra-normalised, L2-normalised, then optionally
PCA-whitened.

``fit(images, positives)`` learns, from database ``images``:

* the NetVLAD centres (k-means, faiss) and ``alpha`` (NetVLAD's rule), fixed afterwards;
* a PCA of the local features to ``crn_dims`` whitened channels, the CRN's input;
* when ``positives`` is given (a list aligned row-for-row with ``images``: the same
  place under another condition, e.g. Nordland winter for summer), the CRN weights,
  trained with a margin ranking loss: query = ``positives[i]``, positive = ``images[i]``,
  negatives = the hardest database images more than ``neg_gap`` route positions
  away. Without ``positives`` nothing is trained and every location weighs 1, so the
  output is plain NetVLAD;
* the PCA-whitening of the output (``whiten_dims``), on the database descriptors.

Defaults were chosen on Nordland frames <= 20000 only (plain NetVLAD and the trained
CRN scored on winter -> summer R@1): input 192x96 (Nordland's 64x32 frames upsampled
3x, aspect kept; 128x64, 256x128 and 512x256 scored lower), layer 13 (96 channels,
stride 16: a 12x6 map; layers 6, 10, 12, 16 and 18 scored lower), 64 clusters, learned
``k x k`` convolutions as context filters (``"box"`` reached about two thirds of
the gain in the same number of epochs), 6 epochs (the gain levels off after 4-6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from placeprint.describe.base import Describer, ImageLike
from placeprint.describe.crn_model import CrnData, CrnNet, train_crn
from placeprint.describe.images import load_rgb
from placeprint.describe.netvlad import init_alpha, netvlad_aggregate_batch, soft_assign
from placeprint.describe.whitening import PCAWhitening, l2_normalise
from placeprint.errors import PlaceprintError

BATCH_PIXELS = 224 * 224 * 32  # input pixels per backbone call (bounds memory)


class CrnDescriber(Describer):
    """Contextually re-weighted NetVLAD: ``(n, dim) float32`` unit rows.

    ``dim = clusters * channels`` (``whiten_dims`` after whitening). Training options:
    ``epochs``, ``batch`` (queries per step), ``negatives`` (hardest negatives mined
    per query each epoch), ``neg_gap`` (rows closer than this along the route are never
    negatives), ``margin``, ``lr`` (Adam), ``weight_decay``, ``seed``.
    """

    name = "crn"
    learns = True

    def __init__(
        self,
        layer: int | str = 13,
        image_size: Sequence[int] = (192, 96),
        clusters: int = 64,
        alpha_ratio: float = 100.0,
        crn_dims: int = 32,
        context: str = "conv",
        sizes: Sequence[int] = (3, 5, 7),
        widths: Sequence[int] = (32, 32, 20),
        epochs: int = 6,
        batch: int = 32,
        negatives: int = 10,
        neg_gap: float = 10.0,
        margin: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        whiten_dims: int | None = None,
        max_features: int = 100_000,
        max_kmeans_images: int = 1000,
        seed: int = 0,
        threads: int = 2,
    ) -> None:
        from placeprint.describe.deep import MobileNetBackbone

        try:
            w, h = (int(v) for v in image_size)
        except (TypeError, ValueError):
            raise PlaceprintError(
                f"image_size must be (width, height), got {image_size!r}"
            ) from None
        if min(w, h) < 32:
            raise PlaceprintError(f"image_size must be at least 32x32 pixels, got {w}x{h}")
        checks = {
            "clusters must be >= 2": int(clusters) >= 2,
            "alpha_ratio must be > 1": float(alpha_ratio) > 1.0,
            "crn_dims must be >= 1": int(crn_dims) >= 1,
            "epochs must be >= 0": int(epochs) >= 0,
            "batch must be >= 1": int(batch) >= 1,
            "negatives must be >= 1": int(negatives) >= 1,
            "margin must be > 0": float(margin) > 0,
            "lr must be > 0": float(lr) > 0,
            "whiten_dims must be >= 1 or None": whiten_dims is None or int(whiten_dims) >= 1,
        }
        for message, ok in checks.items():
            if not ok:
                raise PlaceprintError(message)
        self.layer = layer
        self.image_size = (w, h)
        self.clusters = int(clusters)
        self.alpha_ratio = float(alpha_ratio)
        self.crn_dims = int(crn_dims)
        self.context = str(context)
        self.sizes = tuple(int(s) for s in sizes)
        self.widths = tuple(int(s) for s in widths)
        self.epochs = int(epochs)
        self.batch = int(batch)
        self.negatives = int(negatives)
        self.neg_gap = float(neg_gap)
        self.margin = float(margin)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.whiten_dims = None if whiten_dims is None else int(whiten_dims)
        self.max_features = int(max_features)
        self.max_kmeans_images = int(max_kmeans_images)
        self.seed = int(seed)
        self.threads = int(threads)
        self.backbone = MobileNetBackbone(layer, threads)
        if self.crn_dims > self.backbone.channels:
            raise PlaceprintError(
                f"crn_dims {self.crn_dims} exceeds the layer's {self.backbone.channels} channels"
            )
        CrnNet(self.crn_dims, self.sizes, self.widths, self.context)  # validates the shape

    def fixed_bytes(self) -> int:
        """The ONNX graph of the backbone up to its layer."""
        return self.backbone.model_bytes

    # -- the Describer interface ------------------------------------------------------------
    @property
    def dim(self) -> int:
        raw = self.clusters * self.backbone.channels
        if self.whiten_dims is None:
            return raw
        if hasattr(self, "whitening_"):
            return self.whitening_.output_dim
        return min(self.whiten_dims, raw)

    def params(self) -> dict:
        """Constructor options (JSON-able); ``threads`` does not change the output."""
        return {
            "layer": self.layer,
            "image_size": list(self.image_size),
            "clusters": self.clusters,
            "alpha_ratio": self.alpha_ratio,
            "crn_dims": self.crn_dims,
            "context": self.context,
            "sizes": list(self.sizes),
            "widths": list(self.widths),
            "epochs": self.epochs,
            "batch": self.batch,
            "negatives": self.negatives,
            "neg_gap": self.neg_gap,
            "margin": self.margin,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "whiten_dims": self.whiten_dims,
            "max_features": self.max_features,
            "max_kmeans_images": self.max_kmeans_images,
            "seed": self.seed,
        }

    @property
    def trained(self) -> bool:
        """True when the CRN weights were learned (else every location weighs 1)."""
        return getattr(self, "net_", None) is not None

    def describe(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Descriptors ``(n, dim) float32``, unit L2 norm."""
        self.check_fitted()
        out = []
        for start in range(0, len(images), self._per_call()):
            X, shape = self._local_features(images[start : start + self._per_call()])
            out.append(self._aggregate(X, shape))
        raw = np.concatenate(out, axis=0)
        return raw if self.whiten_dims is None else self.whitening_.transform(raw)

    def mask(self, images: Sequence[ImageLike]) -> np.ndarray:
        """Location weights ``(n, h', w') float32`` (all ones when the CRN is untrained)."""
        self.check_fitted()
        X, (H, W) = self._local_features(list(images))
        return self._mask(X, (H, W)).reshape(len(X), H, W)

    def fit(
        self,
        images: Sequence[ImageLike],
        positives: Sequence[ImageLike] | None = None,
        positions: Sequence[float] | None = None,
    ) -> CrnDescriber:
        """Learn centres, PCA, (with ``positives``) the CRN, and the whitening.

        ``positives[i]`` shows the place of ``images[i]`` under another condition;
        ``positions (n,)`` places every row along the route (default: the row index) so
        that rows within ``neg_gap`` of a query are never used as its negatives.
        """
        images = list(images)
        if len(images) < 2:
            raise PlaceprintError("fit needs at least 2 database images")
        if positives is not None and len(positives) != len(images):
            raise PlaceprintError(
                f"positives must align row-for-row with images: {len(positives)} vs {len(images)}"
            )
        pos = (
            np.arange(len(images), dtype=float)
            if positions is None
            else np.asarray(positions, float)
        )
        if pos.shape != (len(images),) or not np.all(np.isfinite(pos)):
            raise PlaceprintError(f"positions must be {len(images)} finite numbers")
        X, shape = self._local_features(images)
        self._fit_centres_and_pca(X)
        self.net_ = None
        if positives is not None and self.epochs > 0:
            Xq, _ = self._local_features(list(positives))
            self._train(Xq, X, shape, pos)
        if self.whiten_dims is not None:
            self.whitening_ = PCAWhitening(self.whiten_dims).fit(self._aggregate(X, shape))
        return self

    def _state(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "centres_"):
            return {}
        state = {
            "centres": self.centres_,
            "alpha": self.alpha_,
            "pca_mean": self.pca_mean_,
            "pca_components": self.pca_components_,
            "pca_scales": self.pca_scales_,
        }
        if self.trained:
            state.update({f"crn_{k}": v for k, v in self.net_.params.items()})
        if self.whiten_dims is not None and hasattr(self, "whitening_"):
            state.update({f"whiten_{k}": v for k, v in self.whitening_.state().items()})
        return state

    def _set_state(self, arrays: dict[str, np.ndarray]) -> None:
        need = {"centres", "alpha", "pca_mean", "pca_components", "pca_scales"}
        if not need <= set(arrays):
            raise PlaceprintError(f"saved CRN state lacks {sorted(need - set(arrays))}")
        C = self.backbone.channels
        centres = np.asarray(arrays["centres"], np.float32)
        comps = np.asarray(arrays["pca_components"], np.float32)
        if centres.shape != (self.clusters, C) or comps.shape != (self.crn_dims, C):
            raise PlaceprintError(
                f"saved CRN state has centres {centres.shape} and PCA {comps.shape}, expected "
                f"{(self.clusters, C)} and {(self.crn_dims, C)}: load it with its own options"
            )
        self.centres_, self.pca_components_ = centres, comps
        self.alpha_ = np.asarray(arrays["alpha"], np.float32).reshape(1)
        self.pca_mean_ = np.asarray(arrays["pca_mean"], np.float32)
        self.pca_scales_ = np.asarray(arrays["pca_scales"], np.float32)
        crn = {k[4:]: np.asarray(v, np.float32) for k, v in arrays.items() if k.startswith("crn_")}
        self.net_ = None
        if crn:
            net = self._new_net()
            if set(crn) != set(net.params) or any(
                crn[k].shape != v.shape for k, v in net.params.items()
            ):
                raise PlaceprintError("saved CRN weights do not match sizes/widths/crn_dims")
            net.params.update(crn)
            self.net_ = net
        if self.whiten_dims is not None:
            sub = {k[7:]: v for k, v in arrays.items() if k.startswith("whiten_")}
            if set(sub) != {"mean", "components", "scales"}:
                raise PlaceprintError("saved CRN state lacks its PCA-whitening arrays")
            self.whitening_ = PCAWhitening.from_state(sub)

    # -- internals --------------------------------------------------------------------------
    def _per_call(self) -> int:
        return max(1, BATCH_PIXELS // (self.image_size[0] * self.image_size[1]))

    def _local_features(self, images: Sequence[ImageLike]) -> tuple[np.ndarray, tuple[int, int]]:
        """Unit local features ``(n, L, C) float32`` (row-major cells) and the map ``(h', w')``."""
        out, shape = [], (0, 0)
        for start in range(0, len(images), self._per_call()):
            chunk = images[start : start + self._per_call()]
            rgb = np.stack([load_rgb(im, size=self.image_size) for im in chunk])
            maps = self.backbone.feature_maps(rgb)  # (n, C, h, w)
            n, C, H, W = maps.shape
            shape = (H, W)
            out.append(l2_normalise(maps.reshape(n, C, H * W).transpose(0, 2, 1), axis=2))
        return np.concatenate(out, axis=0), shape

    def _fit_centres_and_pca(self, X: np.ndarray) -> None:
        import faiss

        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.permutation(len(X))[: self.max_kmeans_images])
        F = X[pick].reshape(-1, X.shape[2])
        if len(F) > self.max_features:
            F = F[rng.choice(len(F), self.max_features, replace=False)]
        if len(F) < max(self.clusters, self.crn_dims + 1):
            raise PlaceprintError(
                f"{len(F)} local features are too few for {self.clusters} clusters and a "
                f"{self.crn_dims}-d PCA: give more or larger database images"
            )
        kmeans = faiss.Kmeans(F.shape[1], self.clusters, niter=25, seed=self.seed)
        kmeans.train(np.ascontiguousarray(F, np.float32))
        self.centres_ = np.asarray(kmeans.centroids, np.float32)
        self.alpha_ = np.array([init_alpha(F, self.centres_, self.alpha_ratio)], np.float32)
        mean = F.mean(axis=0)
        _, s, vt = np.linalg.svd(F - mean, full_matrices=False)
        sd = s[: self.crn_dims] / np.sqrt(len(F))
        self.pca_mean_ = mean.astype(np.float32)
        self.pca_components_ = vt[: self.crn_dims].astype(np.float32)
        self.pca_scales_ = (1.0 / np.maximum(sd, 1e-6 * sd[0])).astype(np.float32)

    def _crn_input(self, X: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """PCA-whitened local features as an ``(n, crn_dims, h', w')`` map."""
        Z = ((X - self.pca_mean_) @ self.pca_components_.T) * self.pca_scales_
        return np.ascontiguousarray(Z.reshape(len(X), *shape, -1).transpose(0, 3, 1, 2))

    def _new_net(self) -> CrnNet:
        return CrnNet(self.crn_dims, self.sizes, self.widths, self.context, seed=self.seed)

    def _mask(self, X: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        if not self.trained:
            return np.ones(X.shape[:2], np.float32)
        return self.net_.mask(self._crn_input(X, shape)).reshape(len(X), -1)

    def _aggregate(self, X: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        weights = self._mask(X, shape) if self.trained else None
        return netvlad_aggregate_batch(X, self.centres_, float(self.alpha_[0]), weights)

    def _assign(self, X: np.ndarray) -> np.ndarray:
        n, L, C = X.shape
        return soft_assign(X.reshape(-1, C), self.centres_, float(self.alpha_[0])).reshape(n, L, -1)

    def _train(
        self, Xq: np.ndarray, Xd: np.ndarray, shape: tuple[int, int], pos: np.ndarray
    ) -> None:
        """Train the CRN: queries ``Xq`` (other condition), database ``Xd``, aligned."""
        n = len(Xd)
        X = np.concatenate([Xq, Xd])
        data = CrnData(
            Z=self._crn_input(X, shape),
            X=X,
            assign=self._assign(X),
            positions=np.concatenate([pos, pos]),
            pairs=np.stack([np.arange(n), np.arange(n) + n], axis=1),
        )
        net = self._new_net()
        train_crn(
            net,
            data,
            self.centres_,
            epochs=self.epochs,
            batch=self.batch,
            n_neg=self.negatives,
            neg_gap=self.neg_gap,
            margin=self.margin,
            lr=self.lr,
            weight_decay=self.weight_decay,
            seed=self.seed,
        )
        self.net_ = net
