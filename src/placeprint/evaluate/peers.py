"""The peers of the compact index, on the same data in the same run (the headline's peer table).

Every peer answers a raw winter sequence against the same map (the real summer route
hidden among distractors), in the codec's projected space, with the same velocities:

- ``ivfpq_voting``: faiss ``IVF4096,PQ8`` (``nprobe`` lists) finds ``k_frames`` places
  a frame; the places vote for the sequence's end (sparse voting over the velocities).
- ``binary_hash_rescore``: faiss ``IndexBinaryHash`` on placeprint's own codes (16-bit
  keys, 2 flips) finds ``k_frames`` places a frame; the best voted alignments are
  rescored by the Hamming distance along the whole trajectory (a flat copy of the codes,
  counted in the bytes).
- ``pq_rescore``: faiss ``IndexPQ`` 8 bytes, exhaustive per frame, ``k_frames`` places
  vote; the best alignments are rescored with the PQ reconstructions.

Bytes per place are the serialised faiss index (plus any flat copy) and the codec's
projection, divided by the places; latency runs from the raw descriptors in (the
projection included) to the answer out, one thread. Each peer's ``k_frames`` is chosen
on a validation fold of the tuning frames (:func:`choose_peer_settings`), never on test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from placeprint.errors import PlaceprintError
from placeprint.evaluate.baselines import _faiss_threads
from placeprint.evaluate.recall import distinct_top
from placeprint.index.bitpack import codes_to_int
from placeprint.sequence.result import SequenceResult
from placeprint.sequence.seqslam import DEFAULT_VELOCITIES, trajectory_offsets

PEERS = ("ivfpq_voting", "binary_hash_rescore", "pq_rescore")
K_FRAMES_GRID = (1, 10, 100)
RESCORE = 16  # voted alignments rescored along the whole trajectory
TRAIN_SAMPLE = 200_000


def sparse_votes(
    positions: np.ndarray, n_places: int, velocities: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Alignments voted for by per-frame neighbours: ``(ends, velocity index, votes)``.

    ``positions (L, K)``: neighbours of each query frame (-1 = none). Neighbour ``p`` of
    frame ``t`` votes, at velocity ``v``, for the end ``p + round(v (L-1-t))`` when the
    whole trajectory lies in the map; a frame votes once per alignment. Sorted by votes,
    most first. Only the voted alignments are touched (no dense array of the map).
    """
    positions = np.asarray(positions, np.int64)
    L = positions.shape[0]
    n_v = len(velocities)
    keys = []  # one int64 a vote, ordered as (end, velocity, frame): ((end * V) + v) * L + t
    for vi, v in enumerate(velocities):
        off = trajectory_offsets(L, float(v))
        end = positions + off[:, None]
        ok = (positions >= 0) & (end < n_places) & (end - off[0] >= 0)
        t = np.broadcast_to(np.arange(L)[:, None], positions.shape)
        keys.append((end[ok] * n_v + vi) * L + t[ok])
    if not keys or sum(len(k) for k in keys) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    pairs = np.unique(np.concatenate(keys))  # one vote per frame and alignment
    align, votes = np.unique(pairs // L, return_counts=True)
    order = np.argsort(-votes, kind="stable")
    return align[order] // n_v, align[order] % n_v, votes[order]


def distinct_best(ends: np.ndarray, cost: np.ndarray, k: int) -> SequenceResult:
    """The ``k`` best distinct ends (at least ``MIN_SEPARATION`` apart), lowest cost first."""
    pick = distinct_top(ends, cost, k)
    pad = k - len(pick)
    return SequenceResult(
        np.concatenate([np.asarray(ends)[pick], np.full(pad, -1)]).astype(np.int64),
        np.concatenate([np.asarray(cost, float)[pick], np.full(pad, np.inf)]),
        1.0,
        0,
    )


class Peer:
    """One peer over a projected map ``Zdb (N, n_dims)`` with codes ``codes (N, code_size)``."""

    name = "peer"

    def __init__(self, codec, k_frames: int = 10, velocities=DEFAULT_VELOCITIES) -> None:
        if k_frames < 1:
            raise PlaceprintError("k_frames must be >= 1")
        self.codec = codec
        self.k_frames = int(k_frames)
        self.velocities = tuple(float(v) for v in velocities)

    def fit(self, Zdb: np.ndarray, codes: np.ndarray, seed: int = 0) -> Peer:
        raise NotImplementedError

    def frame_neighbours(self, Zq: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def rescore(self, Zq: np.ndarray, ends: np.ndarray, vis: np.ndarray) -> np.ndarray | None:
        """Trajectory cost of each alignment (lower better), or ``None``: votes decide."""
        return None

    def nbytes(self) -> int:
        raise NotImplementedError

    def bytes_per_place(self) -> float:
        """Index bytes plus the codec's projection, per place."""
        return (self.nbytes() + int(self.codec.nbytes)) / self.n_places

    def neighbours(self, Zq: np.ndarray) -> np.ndarray:
        """``(L, k_frames)`` places of each projected frame, best first, one thread."""
        with _faiss_threads(1):
            return self.frame_neighbours(np.ascontiguousarray(Zq, np.float32))

    def search(self, X: np.ndarray, k: int = 5) -> SequenceResult:
        """Best ``k`` distinct end positions of the raw sequence ``X (L, d)``."""
        Zq = self.codec.transform(np.asarray(X, np.float32)).astype(np.float32)
        return self.decide(Zq, self.neighbours(Zq), k)

    def decide(self, Zq: np.ndarray, nb: np.ndarray, k: int = 5) -> SequenceResult:
        """Vote with the frames' neighbours ``nb (L, K)``, rescore, best ``k`` ends."""
        ends, vis, votes = sparse_votes(nb, self.n_places, self.velocities)
        if ends.size == 0:
            return SequenceResult.empty(k, 0)
        cost = self.rescore(Zq, ends[:RESCORE], vis[:RESCORE])
        if cost is None:
            return distinct_best(ends, -votes.astype(float), k)
        return distinct_best(ends[:RESCORE], cost, k)


class IvfPqVoting(Peer):
    """faiss ``IVF4096,PQ8`` with ``nprobe`` lists, ``k_frames`` a frame, then voting."""

    name = "ivfpq_voting"

    def __init__(self, codec, k_frames: int = 10, nprobe: int = 64, lists: int = 4096, **kw):
        super().__init__(codec, k_frames, **kw)
        self.nprobe, self.lists = int(nprobe), int(lists)

    def fit(self, Zdb, codes, seed=0):
        import faiss

        d = Zdb.shape[1]
        if d % 8:
            raise PlaceprintError(f"PQ8 needs a dimension divisible by 8, got {d}")
        # faiss wants >= 39 training points a list: fewer lists on a small map
        self.lists = int(min(self.lists, max(1, len(Zdb) // 39)))
        self.index_ = faiss.index_factory(d, self.factory(), faiss.METRIC_L2)
        # polysemous training only renumbers PQ centroids for Hamming pre-filtering, which
        # this search does not use: the same neighbours (checked), training 8x faster
        faiss.downcast_index(faiss.extract_index_ivf(self.index_)).do_polysemous_training = False
        rng = np.random.default_rng(seed)
        sample = Zdb[np.sort(rng.choice(len(Zdb), min(TRAIN_SAMPLE, len(Zdb)), replace=False))]
        with _faiss_threads(None):
            self.index_.train(np.ascontiguousarray(sample, np.float32))
            self.index_.add(np.ascontiguousarray(Zdb, np.float32))
        faiss.extract_index_ivf(self.index_).nprobe = self.nprobe
        self.n_places = len(Zdb)
        return self

    def factory(self) -> str:
        """The faiss ``index_factory`` string."""
        return f"IVF{self.lists},PQ8"

    def frame_neighbours(self, Zq):
        return self.index_.search(Zq, self.k_frames)[1]

    def nbytes(self):
        import faiss

        return int(faiss.serialize_index(self.index_).size)


class BinaryHashRescore(Peer):
    """faiss ``IndexBinaryHash`` (``b``-bit keys, ``nflip`` flips) on the codes, then
    Hamming rescoring along the trajectory (a flat copy of the codes)."""

    name = "binary_hash_rescore"

    def __init__(self, codec, k_frames: int = 10, b: int = 16, nflip: int = 2, **kw):
        super().__init__(codec, k_frames, **kw)
        self.b, self.nflip = int(b), int(nflip)

    def fit(self, Zdb, codes, seed=0):
        import faiss

        codes = np.ascontiguousarray(codes, np.uint8)
        self.index_ = faiss.IndexBinaryHash(codes.shape[1] * 8, self.b)
        self.index_.nflip = self.nflip
        self.index_.add(codes)
        self.flat_ = codes_to_int(codes)
        self.n_places = len(codes)
        return self

    def frame_neighbours(self, Zq):
        q = np.ascontiguousarray(self.codec.quantize(Zq), np.uint8)
        return self.index_.search(q, self.k_frames)[1]

    def rescore(self, Zq, ends, vis):
        q = codes_to_int(self.codec.quantize(Zq))
        return _hamming_trajectories(self.flat_, q, ends, vis, np.asarray(self.velocities))

    def nbytes(self):
        import faiss

        return int(faiss.serialize_index_binary(self.index_).size) + self.flat_.size * (
            self.index_.code_size
        )


class PqRescore(Peer):
    """faiss ``IndexPQ`` (8 bytes), exhaustive per frame, ``k_frames`` vote, then the best
    alignments are rescored with the PQ reconstructions along the trajectory."""

    name = "pq_rescore"

    def fit(self, Zdb, codes, seed=0):
        import faiss

        d = Zdb.shape[1]
        if d % 8:
            raise PlaceprintError(f"PQ8 needs a dimension divisible by 8, got {d}")
        self.index_ = faiss.IndexPQ(d, 8, 8)
        rng = np.random.default_rng(seed)
        sample = Zdb[np.sort(rng.choice(len(Zdb), min(TRAIN_SAMPLE, len(Zdb)), replace=False))]
        with _faiss_threads(None):
            self.index_.train(np.ascontiguousarray(sample, np.float32))
            self.index_.add(np.ascontiguousarray(Zdb, np.float32))
        self.codes_ = faiss.vector_to_array(self.index_.codes).reshape(len(Zdb), -1)
        self.n_places = len(Zdb)
        return self

    def frame_neighbours(self, Zq):
        return self.index_.search(Zq, self.k_frames)[1]

    def rescore(self, Zq, ends, vis):
        L = len(Zq)
        cost = np.empty(len(ends))
        for i, (e, vi) in enumerate(zip(ends, vis, strict=True)):
            rows = e - trajectory_offsets(L, self.velocities[vi])
            rec = self.index_.pq.decode(np.ascontiguousarray(self.codes_[rows]))
            cost[i] = float(((rec - Zq) ** 2).sum())
        return cost

    def nbytes(self):
        import faiss

        return int(faiss.serialize_index(self.index_).size)


def _hamming_trajectories(flat, q, ends, vis, velocities) -> np.ndarray:
    L = len(q)
    cost = np.empty(len(ends))
    for i, (e, vi) in enumerate(zip(ends, vis, strict=True)):
        rows = e - trajectory_offsets(L, float(velocities[vi]))
        cost[i] = float(
            sum((int(a) ^ int(b)).bit_count() for a, b in zip(flat[rows], q, strict=True))
        )
    return cost


def make_peer(name: str, codec, **options) -> Peer:
    """A peer by name (:data:`PEERS`)."""
    kinds = {
        "ivfpq_voting": IvfPqVoting,
        "binary_hash_rescore": BinaryHashRescore,
        "pq_rescore": PqRescore,
    }
    if name not in kinds:
        raise PlaceprintError(f"unknown peer {name!r}: use {', '.join(PEERS)}")
    return kinds[name](codec, **options)


def window_scores(res) -> dict:
    """R@1, latency (ms, p50/p95) and count of a ``harness.LengthResult``."""
    ms = res.seconds * 1000.0
    n = len(res.ends)
    return {
        "r1": float(res.correct1.mean()) if n else float("nan"),
        "latency_ms_p50": float(np.median(ms)) if n else float("nan"),
        "latency_ms_p95": float(np.percentile(ms, 95)) if n else float("nan"),
        "n": n,
    }


def projected_haystack(pipe, gen, n_distractors: int, seed: int) -> tuple[np.ndarray, int]:
    """The map in the projected space ``(N, n_dims) float32``: distractors with the real
    database inserted at the seeded offset of ``scale_bench.build_haystack``."""
    rng = np.random.default_rng(seed)
    offset = int(rng.integers(0, n_distractors + 1))
    chunks = list(gen.database(n_distractors)) if n_distractors else []
    dis = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros((0, 0), np.float32)
    real = pipe.projected(pipe.database).astype(np.float32)
    if not len(dis):
        return real, 0
    return np.concatenate([dis[:offset], real, dis[offset:]]), offset


def peer_map(route, rows: np.ndarray, codec_options: dict, n_distractors: int, seed: int):
    """The codec learned from the pairs ``rows``, and the map in its projected space:
    ``(codec, pipe, Z (N, n_dims), truth (n,))`` with distractors made from ``rows``."""
    from placeprint.evaluate.pipeline import Pipeline
    from placeprint.evaluate.scale_bench import fit_distractors
    from placeprint.evaluate.validate import fit_codec

    codec = fit_codec(route, rows, **codec_options)
    pipe = Pipeline(codec, route.database, route.queries)
    gen = fit_distractors(pipe, "segments", seed, rows)
    Z, offset = projected_haystack(pipe, gen, n_distractors, seed)
    return codec, pipe, Z, offset + np.arange(len(route.queries))


def _fit_peers(names, codec, Z, seed, options=None) -> dict[str, Peer]:
    codes = codec.quantize(Z)
    return {n: make_peer(n, codec, **(options or {}).get(n, {})).fit(Z, codes, seed) for n in names}


def choose_peer_settings(
    route,
    codec_options: dict,
    n_distractors: int,
    lengths=(50, 100),
    stride: int = 5,
    seed: int = 0,
    names=PEERS,
    grid=K_FRAMES_GRID,
    say=lambda text: None,
) -> dict:
    """Each peer's ``k_frames`` by mean R@1 on the first validation fold (tuning frames
    only; codec and distractors learned from the fold's other rows), fewer frames on ties."""
    from placeprint.evaluate.code_selection import route_blocked_folds
    from placeprint.evaluate.validate import fold_ends

    fit_rows, eval_rows = route_blocked_folds(route.frames)[0]
    codec, pipe, Z, truth = peer_map(route, fit_rows, codec_options, n_distractors, seed)
    Zq = pipe.projected(route.queries).astype(np.float32)
    chosen = {}
    for name, peer in _fit_peers(names, codec, Z, seed).items():
        peer.k_frames = max(grid)
        nb_all = peer.neighbours(Zq)
        scores = {}
        for k in grid:
            ok = []
            for L in lengths:
                for q in fold_ends(eval_rows, L, stride):
                    r = peer.decide(Zq[q - L + 1 : q + 1], nb_all[q - L + 1 : q + 1, :k], 1)
                    ok.append(abs(int(r.positions[0]) - int(truth[q])) <= 2)
            scores[k] = float(np.mean(ok))
            say(f"peer {name} k_frames={k}: fold R@1 {scores[k]:.3f}")
        best = max(scores.values())
        chosen[name] = {
            "k_frames": min(k for k, v in scores.items() if v >= best - 0.01),
            "fold_r1": scores,
        }
    return chosen


def peer_table(
    route,
    settings: dict,
    n_distractors: int,
    lengths=(50, 100),
    stride: int = 5,
    seed: int = 0,
    names=PEERS,
    say=lambda text: None,
    exhaustive: bool = True,
) -> dict:
    """placeprint and its peers on one map of ``n_distractors`` + the real route: R@1 on the
    test windows (wholly after frame 20010), bytes per place, latency from raw descriptors.

    ``settings``: the validated ``{"codec", "matcher"}``; each peer's ``k_frames`` comes
    from :func:`choose_peer_settings`. ``exhaustive``: also the trajectory search over all
    places on placeprint's own codes (the ceiling of any index on those codes).
    """
    from placeprint.evaluate.exhaustive import exhaustive_best
    from placeprint.evaluate.harness import run_windows
    from placeprint.evaluate.recall import query_ends, window_mask
    from placeprint.index import OverloadedIndex
    from placeprint.sequence.matcher import SequenceMatcher

    chosen = choose_peer_settings(
        route, settings.get("codec", {}), n_distractors, lengths, stride, seed, names, say=say
    )
    tune_rows = np.arange(route.tune_rows)
    codec, pipe, Z, truth = peer_map(
        route, tune_rows, settings.get("codec", {}), n_distractors, seed
    )
    test = route.subsets()["test"]
    index = OverloadedIndex(codec, describer=route.describer)
    index.add_codes(codec.quantize(Z))
    index.build()
    matcher = SequenceMatcher(index, **settings.get("matcher", {}))
    options = {n: {"k_frames": chosen[n]["k_frames"]} for n in names}
    peers = _fit_peers(names, codec, Z, seed, options)
    del Z
    rows = {"placeprint": {"bytes_per_place": index.bytes_per_place(), "settings": settings}}
    for name, peer in peers.items():
        rows[name] = {"bytes_per_place": peer.bytes_per_place(), "settings": chosen[name]}
        if isinstance(peer, IvfPqVoting):
            rows[name]["settings"] = {
                **chosen[name],
                "factory": peer.factory(),
                "nprobe": peer.nprobe,
            }
    runners = {"placeprint": matcher.match, **{n: p.search for n, p in peers.items()}}
    q_int = codes_to_int(codec.encode(route.queries)) if exhaustive else None
    db_int = index.reconstruct_int() if exhaustive else None
    if exhaustive:
        rows["exhaustive_own_codes"] = {"bytes_per_place": index.bytes_per_place()}

    def own_codes_search(codes_window: np.ndarray) -> SequenceResult:
        end, _ = exhaustive_best(db_int, codes_window, DEFAULT_VELOCITIES)
        return SequenceResult(np.array([end]), np.array([0.0]), 1.0, 0)

    for L in lengths:
        ends = query_ends(len(route.queries), L, stride)
        ends = ends[window_mask(test, ends, L)]
        for name, search in runners.items():
            res = run_windows(search, route.queries, truth, L, ends=ends, warmup=0)
            rows[name][str(L)] = window_scores(res)
            say(f"{name} L={L}: R@1 {rows[name][str(L)]['r1']:.3f}")
        if exhaustive:
            res = run_windows(own_codes_search, q_int, truth, L, ends=ends, warmup=0)
            rows["exhaustive_own_codes"][str(L)] = {**window_scores(res), "threads": "all (numba)"}
    return {"places": int(index.ntotal), "n_distractors": n_distractors, "peers": rows}
