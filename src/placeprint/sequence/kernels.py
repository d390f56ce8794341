"""Numba kernels of the compact sequence matcher: bucket visits and cascaded verification.

Operation counts follow ``guide/BENCHMARKS.md``: one op per bucket entry read and one
per comparison of two codes.
"""

from __future__ import annotations

import numba
import numpy as np

from placeprint.index.bitpack import read_field


@numba.njit(cache=True, nogil=True, inline="always")
def popcount64(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@numba.njit(cache=True, nogil=True)
def visit_buckets(offsets, ids, id_bits, rest, rest_bits, probe_keys, rest_query, max_entries):
    """Entries of one frame's probed buckets and their anchor Hamming distances.

    Probes are taken in order (most likely key first); a bucket that would take the
    frame past ``max_entries`` entries is skipped (its likelihood per entry is low),
    a key probed twice is visited once, keys < 0 are skipped.
    Returns ``(positions, distances, ops)``; ``ops`` = entries read + comparisons.
    """
    n_probes = probe_keys.shape[0]
    take = np.zeros(n_probes, np.bool_)
    total = 0
    for j in range(n_probes):
        key = probe_keys[j]
        if key < 0:
            continue
        seen = False
        for i in range(j):
            if probe_keys[i] == key:
                seen = True
        size = np.int64(offsets[key + 1]) - np.int64(offsets[key])
        if not seen and total + size <= max_entries:
            take[j] = True
            total += size
    positions = np.empty(total, np.int64)
    distances = np.empty(total, np.int64)
    m = 0
    for j in range(n_probes):
        if not take[j]:
            continue
        key = probe_keys[j]
        for e in range(offsets[key], offsets[key + 1]):
            p = np.int64(read_field(ids, np.int64(e), id_bits))
            positions[m] = p
            distances[m] = popcount64(read_field(rest, p, rest_bits) ^ rest_query)
            m += 1
    return positions, distances, 2 * m


@numba.njit(cache=True, nogil=True)
def trajectory_distance(rest, rest_bits, n_places, rest_query, end, velocity, first, step):
    """Sum of Hamming distances along the trajectory ending at ``end`` with ``velocity``.

    Compares query frames ``first, first+step, ...`` (< L) with database places
    ``end - round(velocity * (L-1-t))``. Returns ``(sum, compared)``; frames whose place
    falls outside the database are not compared.
    """
    L = rest_query.shape[0]
    s = 0
    c = 0
    for t in range(first, L, step):
        p = end - np.int64(np.floor(velocity * (L - 1 - t) + 0.5))
        if p >= 0 and p < n_places:
            s += popcount64(read_field(rest, p, rest_bits) ^ rest_query[t])
            c += 1
    return s, c


@numba.njit(cache=True, nogil=True)
def local_distance(rest, rest_bits, n_places, rest_query, t, p, radius):
    """Mean Hamming distance over frames ``t-radius..t+radius`` around anchor ``(t, p)``.

    Velocities 0.8-1.2 map offsets up to +-2 frames to the same places, so this check
    does not depend on the velocity for ``radius <= 2``. Returns ``(sum, compared)``,
    the anchor itself excluded (its distance is already known).
    """
    L = rest_query.shape[0]
    s = 0
    c = 0
    for d in range(-radius, radius + 1):
        if d == 0:
            continue
        tt = t + d
        pp = p + d
        if tt >= 0 and tt < L and pp >= 0 and pp < n_places:
            s += popcount64(read_field(rest, pp, rest_bits) ^ rest_query[tt])
            c += 1
    return s, c


@numba.njit(cache=True, nogil=True)
def visit_frames(offsets, ids, id_bits, rest, rest_bits, probe_keys, rest_query, max_entries):
    """:func:`visit_buckets` for every frame: ``(frames, positions, distances, ops)``."""
    L = probe_keys.shape[0]
    parts_p = []
    parts_d = []
    total = 0
    ops = 0
    for t in range(L):
        p, d, o = visit_buckets(
            offsets, ids, id_bits, rest, rest_bits, probe_keys[t], rest_query[t], max_entries
        )
        parts_p.append(p)
        parts_d.append(d)
        total += p.shape[0]
        ops += o
    frames = np.empty(total, np.int64)
    positions = np.empty(total, np.int64)
    distances = np.empty(total, np.int64)
    m = 0
    for t in range(L):
        n = parts_p[t].shape[0]
        frames[m : m + n] = t
        positions[m : m + n] = parts_p[t]
        distances[m : m + n] = parts_d[t]
        m += n
    return frames, positions, distances, ops


@numba.njit(cache=True, nogil=True)
def group_evidence(hit_frames, hit_positions, llr, width, hit_bonus):
    """Evidence of the alignment each hit belongs to: ``(n_hits,)`` float.

    Hits ``(t, p)`` of one alignment lie near one diagonal ``p - t`` (exactly one at
    velocity 1, drifting slowly otherwise). A hit's evidence is the sum of
    ``hit_bonus + llr`` over the hits whose diagonal is within ``width`` of its own
    (itself included), found with two pointers over the hits sorted by diagonal.
    Bookkeeping only: no entries read, no codes compared.
    """
    n = hit_frames.shape[0]
    diag = hit_positions - hit_frames
    order = np.argsort(diag)
    prefix = np.zeros(n + 1, np.float64)
    for i in range(n):
        prefix[i + 1] = prefix[i] + hit_bonus + llr[order[i]]
    out = np.empty(n, np.float64)
    lo = 0
    hi = 0
    for i in range(n):
        d = diag[order[i]]
        while diag[order[lo]] < d - width:
            lo += 1
        while hi < n and diag[order[hi]] <= d + width:
            hi += 1
        out[order[i]] = prefix[hi] - prefix[lo]
    return out


@numba.njit(cache=True, nogil=True)
def verify(
    rest,
    rest_bits,
    n_places,
    rest_query,
    hit_frames,
    hit_positions,
    hit_distances,
    velocities,
    keep_anchor,
    radius,
    keep_local,
    step,
    keep_coarse,
    agreement,
    hit_bonus,
    group_width,
):
    """Cascade: alignment evidence -> local window -> sub-sampled trajectory -> full trajectory.

    ``agreement`` is the expected share of equal bits for the true place; distances are
    turned into log-likelihood ratios against unrelated codes (share 0.5).
    Returns ``(ends, velocity_index, mean_distance, ops)`` of the fully verified
    alignments (distinct ``(end, velocity)``), ``mean_distance`` in bits per frame.
    """
    L = rest_query.shape[0]
    n_hits = hit_frames.shape[0]
    ops = 0
    w_same = np.log(agreement / 0.5)
    w_diff = np.log((1.0 - agreement) / 0.5)
    llr = np.empty(n_hits, np.float64)
    for h in range(n_hits):
        llr[h] = (rest_bits - hit_distances[h]) * w_same + hit_distances[h] * w_diff
    # stage 1: anchors ranked by the evidence of their alignment (free)
    evidence = group_evidence(hit_frames, hit_positions, llr, group_width, hit_bonus)
    order = np.argsort(-evidence, kind="mergesort")[: min(keep_anchor, n_hits)]
    n1 = order.shape[0]
    # stage 2: local window around the anchor
    local = np.empty(n1, np.float64)
    for i in range(n1):
        h = order[i]
        s, c = local_distance(
            rest, rest_bits, n_places, rest_query, hit_frames[h], hit_positions[h], radius
        )
        ops += c
        local[i] = -(evidence[h] + (c * rest_bits - s) * w_same + s * w_diff)
    order2 = order[np.argsort(local, kind="mergesort")[: min(keep_local, n1)]]
    n2 = order2.shape[0]
    V = velocities.shape[0]
    # stage 3: sub-sampled trajectory for every velocity, distinct (end, v)
    ends = np.empty(n2 * V, np.int64)
    vidx = np.empty(n2 * V, np.int64)
    coarse = np.empty(n2 * V, np.float64)
    m = 0
    for i in range(n2):
        h = order2[i]
        t = hit_frames[h]
        for v in range(V):
            e = hit_positions[h] + np.int64(np.floor(velocities[v] * (L - 1 - t) + 0.5))
            dup = False
            for j in range(m):
                if ends[j] == e and vidx[j] == v:
                    dup = True
                    break
            if dup:
                continue
            first = t % step
            start = e - np.int64(np.floor(velocities[v] * (L - 1) + 0.5))
            ends[m] = e
            vidx[m] = v
            if start < 0 or e >= n_places:  # trajectories must lie inside the database
                coarse[m] = np.inf
            else:
                s, c = trajectory_distance(
                    rest, rest_bits, n_places, rest_query, e, velocities[v], first, step
                )
                ops += c
                coarse[m] = s / c
            m += 1
    n_finite = 0
    for j in range(m):
        if coarse[j] < np.inf:
            n_finite += 1
    order3 = np.argsort(coarse[:m], kind="mergesort")[: min(keep_coarse, n_finite)]
    n3 = order3.shape[0]
    out_e = np.empty(n3, np.int64)
    out_v = np.empty(n3, np.int64)
    out_s = np.empty(n3, np.float64)
    for i in range(n3):
        j = order3[i]
        s, c = trajectory_distance(
            rest, rest_bits, n_places, rest_query, ends[j], velocities[vidx[j]], 0, 1
        )
        ops += c
        out_e[i] = ends[j]
        out_v[i] = vidx[j]
        out_s[i] = s / c if c > 0 else np.inf
    return out_e, out_v, out_s, ops
