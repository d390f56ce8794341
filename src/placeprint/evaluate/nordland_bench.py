"""Nordland without distractors: the compact index beside its baselines, same windows.

Methods: the compact index; exhaustive search on the very same codes; brute-force
SeqSLAM on the full descriptors; faiss ``IndexFlatL2`` and ``IndexPQ`` (same byte
budget as the code) with sequence voting, on the PCA-reduced descriptors, with the
neighbours a frame that vote chosen on a validation fold of the tuning frames.
"""

from __future__ import annotations

import numpy as np

from placeprint.evaluate.baselines import CodeBruteForce, FaissSequenceVoting
from placeprint.evaluate.harness import evaluate
from placeprint.evaluate.pipeline import REDUCED_DIMS, RealRoute, fit_pipeline
from placeprint.index import OverloadedIndex
from placeprint.sequence.matcher import SequenceMatcher
from placeprint.sequence.seqslam import SeqSLAM


def nordland_experiment(
    route: RealRoute,
    lengths=(1, 10, 25, 50, 100),
    stride: int = 5,
    code_size: int = 7,
    methods: tuple[str, ...] = ("compact", "codes-exhaustive", "seqslam", "faiss-flat", "faiss-pq"),
    quiet: bool = False,
) -> dict:
    """Recall, work and latency of every method on the real route (no distractors)."""
    pipe = fit_pipeline(route, code_size=code_size)
    index = OverloadedIndex(pipe.codec, describer=route.describer)
    index.add(pipe.database)
    index.build()
    searches = {}
    sizes = {}
    chosen: dict[str, dict] = {}
    if "compact" in methods:
        searches["compact"] = (SequenceMatcher(index).match, pipe.queries)
        sizes["compact"] = index.bytes_per_place()
    if "codes-exhaustive" in methods:
        brute = CodeBruteForce(pipe.codec).fit(pipe.database)
        searches["codes-exhaustive"] = (brute.search, pipe.queries)
        sizes["codes-exhaustive"] = brute.bytes_per_place()
    if "seqslam" in methods:
        seqslam = SeqSLAM().fit(route.database)
        searches["seqslam"] = (seqslam.search, route.queries)
        sizes["seqslam"] = seqslam.bytes_per_place()
    if any(f"faiss-{kind}" in methods for kind in ("flat", "pq")):
        # the faiss peers work on a PCA of the descriptors (its bytes are not counted)
        from placeprint.datasets.reduce import PCAReducer

        n, d = route.database.shape
        reducer = PCAReducer(min(REDUCED_DIMS, d, n - 1)).fit(route.database)
        db_r, q_r = reducer.transform(route.database), reducer.transform(route.queries)
    for kind in ("flat", "pq"):
        if f"faiss-{kind}" in methods:
            dims = db_r.shape[1]
            pca = None if kind == "flat" or dims % code_size == 0 else dims // code_size * code_size
            f = FaissSequenceVoting(index=kind, pq_bytes=code_size, pca_dim=pca).fit(db_r)
            f.k_frames = choose_k_frames(f, q_r, route, stride)
            searches[f"faiss-{kind}"] = (f.search, q_r)
            sizes[f"faiss-{kind}"] = f.bytes_per_place()
            chosen[f"faiss-{kind}"] = {"k_frames": f.k_frames}
    truth = np.arange(len(route.queries))
    results = evaluate(searches, truth, lengths, route.subsets(), stride, quiet)
    return {
        "places": len(route.database),
        "code_size": code_size,
        "descriptor_dims": pipe.database.shape[1],
        "bytes_per_place": sizes,
        "chosen_on_validation_fold": chosen,
        "methods": results,
        "index_info": index.info(),
    }


K_FRAMES_GRID = (1, 3, 10, 30, 100)


def choose_k_frames(
    faiss_voting: FaissSequenceVoting,
    queries: np.ndarray,
    route: RealRoute,
    stride: int = 5,
    lengths=(10, 25, 50),
    grid=K_FRAMES_GRID,
) -> int:
    """The neighbours a frame that vote, by mean R@1 on the windows of the first
    validation fold (tuning frames only); the smaller ``k`` on ties."""
    from placeprint.evaluate.code_selection import route_blocked_folds
    from placeprint.evaluate.validate import fold_ends

    _, eval_rows = route_blocked_folds(route.frames)[0]
    scores = {}
    for k in grid:
        faiss_voting.k_frames = k
        ok = []
        for L in lengths:
            for q in fold_ends(eval_rows, L, stride):
                best = faiss_voting.search(queries[q - L + 1 : q + 1], k=1).positions[0]
                ok.append(abs(int(best) - int(q)) <= 2)
        scores[k] = float(np.mean(ok))
    top = max(scores.values())
    return min(k for k, v in scores.items() if v >= top - 0.01)
