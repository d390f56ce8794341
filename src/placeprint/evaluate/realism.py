"""How confusable synthetic distractor places are, compared with wrong real places.

A distractor haystack is only a fair stand-in for a larger real map when a real
query lands near a distractor as often as it lands near a *wrong real* place
(``guide/BENCHMARKS.md``, "Distractors at scale"). Mean distances say little: the
difference is in the tail, so :func:`distractor_realism` compares, real vs
distractor:

* per pair (query, place), the probability that the Hamming distance between
  the query's code and the place's code is at most ``r`` bits (``r`` = 10, 12,
  14 by default), the wrong real places being the rows with
  ``|row - truth| > exclusion``; the ratio distractor / real (1 = as confusable);
* the mean Hamming distance over the same pairs;
* how concentrated the close pairs are on a few places (share of the hits taken
  by the 1% most-hit places: "how often wrong answers land per place");
* the share of 1 bits per code bit (a generator that moves medians unbalances bits);
* optionally, per-dimension excess kurtosis and skew of the projected rows
  (mean and spread over dimensions).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> real = rng.integers(0, 256, (50, 7), dtype=np.uint8)
>>> out = distractor_realism(real[:5], np.arange(5), real, real[::-1].copy())
>>> sorted(out["radii"])
['10', '12', '14']
"""

from __future__ import annotations

import numpy as np

from placeprint.errors import PlaceprintError

RADII = (10, 12, 14)
EXCLUSION = 2  # a real place within this many rows of the truth counts as correct
HUB_SHARE = 0.01  # "hubs" = the 1% of places with the most close pairs
BLOCK = 16_384  # places compared at once (bounds memory: queries x BLOCK uint64)


def code_words(codes: np.ndarray) -> np.ndarray:
    """Codes as ``(n, w) uint64`` words: ``(n, c) uint8`` (any ``c``) or ``(n,) uint64`` ints.

    Bytes are read little-endian, 8 to a word, zero-padded; the Hamming distance of
    two codes is the popcount of the XOR of their words, summed.
    """
    codes = np.asarray(codes)
    if codes.ndim == 1 and codes.dtype in (np.uint64, np.int64):
        return codes.astype(np.uint64).reshape(-1, 1)
    if codes.ndim != 2 or codes.dtype != np.uint8:
        raise PlaceprintError(
            f"codes must be (n, code_size) uint8 or (n,) uint64, got {codes.shape} {codes.dtype}"
        )
    n, c = codes.shape
    w = max(1, -(-c // 8))
    padded = np.zeros((n, 8 * w), np.uint8)
    padded[:, :c] = codes
    return padded.view("<u8").astype(np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """All Hamming distances (bits) between ``(m, w)`` and ``(n, w)`` uint64 words: ``(m, n)``."""
    out = np.zeros((a.shape[0], b.shape[0]), np.uint8)
    for k in range(a.shape[1]):
        out += np.bitwise_count(a[:, k, None] ^ b[None, :, k])
    return out


def pair_histogram(
    queries: np.ndarray,
    places: np.ndarray,
    radii=RADII,
    truth: np.ndarray | None = None,
    exclusion: int = EXCLUSION,
) -> tuple[np.ndarray, np.ndarray]:
    """Distance histogram over all (query, place) pairs, and close pairs per place.

    ``queries (m, w)``, ``places (n, w)`` uint64 words (:func:`code_words`). With
    ``truth (m,)`` (the row of ``places`` each query truly is), pairs with
    ``|row - truth| <= exclusion`` are left out. Returns ``hist (65 * w,) int64``
    (``hist[k]`` = pairs at distance ``k`` bits) and ``hits (len(radii), n) int64``
    (per place, the queries within each radius).
    """
    n = places.shape[0]
    hist = np.zeros(64 * queries.shape[1] + 1, np.int64)
    hits = np.zeros((len(radii), n), np.int64)
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        dist = hamming(queries, places[lo:hi])
        if truth is not None:
            rows = np.arange(lo, hi)
            keep = np.abs(rows[None, :] - truth[:, None]) > exclusion
            dist = np.where(keep, dist, 255)
        hist += np.bincount(dist.ravel(), minlength=256)[: len(hist)]
        for i, r in enumerate(radii):
            hits[i, lo:hi] = (dist <= r).sum(axis=0)
    return hist, hits


def moments(rows: np.ndarray) -> dict:
    """Per-dimension excess kurtosis and skew of ``rows (n, d)``: mean and std over dims."""
    x = np.asarray(rows, np.float64)
    xc = x - x.mean(axis=0)
    var = (xc * xc).mean(axis=0)
    safe = np.where(var > 0, var, 1.0)
    skew = (xc**3).mean(axis=0) / safe**1.5
    kurt = (xc**4).mean(axis=0) / safe**2 - 3.0
    return {
        "kurtosis": {"mean": float(kurt.mean()), "std": float(kurt.std())},
        "skew": {"mean": float(skew.mean()), "std": float(skew.std())},
        "per_dim_kurtosis": kurt.tolist(),
        "per_dim_skew": skew.tolist(),
    }


def _side(hist: np.ndarray, hits: np.ndarray, radii, words: np.ndarray, n_bits: int) -> dict:
    pairs = int(hist.sum())
    dist = np.arange(len(hist))
    out = {
        "places": int(hits.shape[1]),
        "pairs": pairs,
        "mean_hamming": float((hist * dist).sum() / pairs) if pairs else None,
        "bit_imbalance": _bit_imbalance(words, n_bits),
    }
    n_hub = max(1, int(round(HUB_SHARE * hits.shape[1])))
    for i, r in enumerate(radii):
        close = int(hist[: r + 1].sum())
        top = np.sort(hits[i])[::-1][:n_hub].sum()
        out[str(r)] = {
            "p": close / pairs if pairs else None,
            "hits": close,
            "hub_share": float(top / close) if close else None,
        }
    return out


def _code_bytes(codes) -> int:
    codes = np.asarray(codes)
    return int(codes.shape[1]) if codes.ndim == 2 else 8


def _bit_imbalance(words: np.ndarray, n_bits: int) -> float:
    """Mean over code bits of ``|share of ones - 0.5|``."""
    bits = np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :n_bits]
    return float(np.abs(bits.mean(axis=0) - 0.5).mean()) if len(bits) else 0.0


def distractor_realism(
    query_codes: np.ndarray,
    truth: np.ndarray,
    real_codes: np.ndarray,
    distractor_codes: np.ndarray,
    real_rows: np.ndarray | None = None,
    distractor_rows: np.ndarray | None = None,
    radii=RADII,
    exclusion: int = EXCLUSION,
    n_bits: int | None = None,
) -> dict:
    """Compare how confusable distractor places are with wrong real places (JSON-ready dict).

    ``query_codes (m, c) uint8`` or ``(m,) uint64``: real queries whose true place is
    row ``truth (m,)`` of ``real_codes (n, c)``; ``distractor_codes (k, c)``: a sample
    of synthetic places (e.g. 100,000). ``real_rows (n', d)``/``distractor_rows (k', d)``,
    optional: projected float rows for the kurtosis/skew comparison. Distances are
    in bits; ``n_bits`` (default ``8 * c``) is the code length for the bit balance.

    Returns ``radii[str(r)]`` with ``p_real``, ``p_distractor`` (per-pair probability
    of a distance ``<= r``), ``ratio`` (distractor / real; ``None`` when no real pair
    is that close), ``hits_*`` (pair counts) and ``hub_share_*``; ``mean_hamming``,
    ``bit_imbalance``, ``worst_factor`` (largest ``max(ratio, 1/ratio)``; ``None`` when a
    ratio is 0 or undefined) and, with
    rows, ``kurtosis``/``skew`` ``{"real": {mean, std}, "distractor": {mean, std}}``.
    """
    sizes = {_code_bytes(c) for c in (query_codes, real_codes, distractor_codes)}
    if len(sizes) != 1:
        raise PlaceprintError("query, real and distractor codes must have the same code size")
    q, real, dis = code_words(query_codes), code_words(real_codes), code_words(distractor_codes)
    truth = np.asarray(truth, np.int64).reshape(-1)
    if len(truth) != len(q):
        raise PlaceprintError(f"truth needs one row per query: {len(truth)} for {len(q)}")
    if len(truth) and (truth.min() < 0 or truth.max() >= len(real)):
        raise PlaceprintError(f"truth rows must be in 0..{len(real) - 1}")
    radii = tuple(int(r) for r in radii)
    n_bits = 8 * sizes.pop() if n_bits is None else int(n_bits)
    real_side = _side(*pair_histogram(q, real, radii, truth, exclusion), radii, real, n_bits)
    dis_side = _side(*pair_histogram(q, dis, radii), radii, dis, n_bits)
    out: dict = {
        "queries": int(len(q)),
        "exclusion_rows": int(exclusion),
        "places": {"real": real_side["places"], "distractor": dis_side["places"]},
        "pairs": {"real": real_side["pairs"], "distractor": dis_side["pairs"]},
        "mean_hamming": {
            "real": real_side["mean_hamming"],
            "distractor": dis_side["mean_hamming"],
        },
        "bit_imbalance": {
            "real": real_side["bit_imbalance"],
            "distractor": dis_side["bit_imbalance"],
        },
        "radii": {},
    }
    factors = []
    for r in radii:
        a, b = real_side[str(r)], dis_side[str(r)]
        ratio = b["p"] / a["p"] if a["p"] else None
        if ratio is not None:
            factors.append(None if ratio == 0 else max(ratio, 1.0 / ratio))
        out["radii"][str(r)] = {
            "p_real": a["p"],
            "p_distractor": b["p"],
            "ratio": ratio,
            "hits_real": a["hits"],
            "hits_distractor": b["hits"],
            "hub_share_real": a["hub_share"],
            "hub_share_distractor": b["hub_share"],
        }
    out["worst_factor"] = None if not factors or None in factors else float(max(factors))
    if real_rows is not None and distractor_rows is not None:
        mr, md = moments(real_rows), moments(distractor_rows)
        for key in ("kurtosis", "skew"):
            out[key] = {"real": mr[key], "distractor": md[key]}
    return out
