"""Numba kernels of the compact sequence matcher: probes, bucket visits, votes, verification.

Every kernel returns the work it did, counted as ``guide/BENCHMARKS.md`` and
``docs/accounting.md`` define it, by step (the ``W_*`` slots of a work vector):

- ``W_KEYS``: one op per key and per key-bit reliability computed;
- ``W_PROBES``: one op per bit ranked by reliability, per probe pushed on or popped off
  the probe heap;
- ``W_OFFSETS``: one op per bucket-offset read (two per probed bucket that is not empty);
- ``W_ENTRIES``: one op per bucket entry read;
- ``W_VOTES``: one op per hit entered in the diagonal vote table;
- ``W_SORT``: one op per element sorted, selected or de-duplicated;
- ``W_COMPARE``: one op per comparison of two codes (Hamming distance of <= 8 bytes);
- ``W_BITMAP``: one op per test of a probed bucket's bit in the bitmap of non-empty buckets
  (an empty bucket costs this one op: its offsets are not read);
- ``W_SEARCH``: one op per step of a binary search inside a crowded bucket (one entry and
  its code prefix read).
"""

from __future__ import annotations

import numba
import numpy as np

from placeprint.index.bitpack import read_field

W_KEYS, W_PROBES, W_OFFSETS, W_ENTRIES, W_VOTES, W_SORT, W_COMPARE, W_BITMAP, W_SEARCH = range(9)
WORK_NAMES = (
    "keys",
    "probes",
    "bucket_offsets",
    "entries",
    "votes",
    "sort",
    "compare",
    "bucket_bitmap",
    "bucket_search",
)


@numba.njit(cache=True, nogil=True, inline="always")
def popcount64(x: np.uint64) -> np.int64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


# ------------------------------------------------------------------------------- probes
@numba.njit(cache=True, nogil=True, inline="always")
def _swap(hc, hm, hl, hs, i, j):
    """Swap heap slots ``i`` and ``j`` (cost, flip mask, last rank, set size)."""
    hc[i], hc[j] = hc[j], hc[i]
    hm[i], hm[j] = hm[j], hm[i]
    hl[i], hl[j] = hl[j], hl[i]
    hs[i], hs[j] = hs[j], hs[i]


@numba.njit(cache=True, nogil=True)
def _heap_push(cost, mask, last, size, hc, hm, hl, hs, n):
    i = n
    hc[i], hm[i], hl[i], hs[i] = cost, mask, last, size
    while i > 0:
        parent = (i - 1) // 2
        if hc[parent] <= hc[i]:
            break
        _swap(hc, hm, hl, hs, i, parent)
        i = parent
    return n + 1


@numba.njit(cache=True, nogil=True)
def _heap_pop(hc, hm, hl, hs, n):
    cost, mask, last, size = hc[0], hm[0], hl[0], hs[0]
    n -= 1
    hc[0], hm[0], hl[0], hs[0] = hc[n], hm[n], hl[n], hs[n]
    i = 0
    while True:
        a = 2 * i + 1
        b = a + 1
        m = i
        if a < n and hc[a] < hc[m]:
            m = a
        if b < n and hc[b] < hc[m]:
            m = b
        if m == i:
            break
        _swap(hc, hm, hl, hs, i, m)
        i = m
    return cost, mask, last, size, n


@numba.njit(cache=True, nogil=True)
def _probe_setup(costs, flip_bits, work):
    """The ``flip_bits`` least reliable key bits (ranks) and their costs, ascending."""
    k = costs.shape[0]
    work[W_PROBES] += k  # ranking the key bits by reliability
    b = min(flip_bits, k)
    order = np.argsort(costs, kind="mergesort")[:b]
    return order, costs[order], b


@numba.njit(cache=True, nogil=True)
def _next_probe(order, c, b, max_flips, hc, hm, hl, hs, n, work):
    """Pop the cheapest flip set off the heap and push its shift and expand.

    Returns ``(mask, cost, n)``: the key bits to flip, the probe's cost and the new heap
    size (Lv et al. 2007: every set of at most ``max_flips`` of the ``b`` bits comes
    out exactly once, in order of cost).
    """
    cost, mask, last, size, n = _heap_pop(hc, hm, hl, hs, n)
    work[W_PROBES] += 1
    if last + 1 < b:
        nxt = np.int64(1) << order[last + 1]
        shifted = (mask ^ (np.int64(1) << order[last])) | nxt
        n = _heap_push(cost - c[last] + c[last + 1], shifted, last + 1, size, hc, hm, hl, hs, n)
        work[W_PROBES] += 1
        if size < max_flips:
            n = _heap_push(cost + c[last + 1], mask | nxt, last + 1, size + 1, hc, hm, hl, hs, n)
            work[W_PROBES] += 1
    return mask, cost, n


@numba.njit(cache=True, nogil=True)
def frame_probes(key, costs, n_probes, flip_bits, max_flips, out_keys, out_cost, work):
    """The ``n_probes`` most likely keys of one frame, most likely first (Lv et al. 2007).

    ``costs (k,)`` are ``log(p_ok / p_flip)`` of the key bits; a probe flips a set of at
    most ``max_flips`` of the ``flip_bits`` least reliable bits, and its cost is the sum of
    theirs. Sets are generated lazily in order of cost from a heap (each popped set pushes
    its *shift* and its *expand*), so a probe costs about three heap operations. Writes
    ``out_keys``/``out_cost`` (``-1`` pads), adds its work to ``work`` and returns the
    number of probes.
    """
    order, c, b = _probe_setup(costs, flip_bits, work)
    for j in range(out_keys.shape[0]):
        out_keys[j] = -1
    out_keys[0] = key
    out_cost[0] = 0.0
    work[W_PROBES] += 1
    count = 1
    if b == 0 or max_flips == 0 or n_probes <= 1:
        return count
    cap = 2 * n_probes + 2
    hc, hm = np.empty(cap, np.float64), np.empty(cap, np.int64)
    hl, hs = np.empty(cap, np.int64), np.empty(cap, np.int64)
    n = _heap_push(c[0], np.int64(1) << order[0], 0, 1, hc, hm, hl, hs, 0)
    work[W_PROBES] += 1
    while count < n_probes and n > 0:
        mask, cost, n = _next_probe(order, c, b, max_flips, hc, hm, hl, hs, n, work)
        out_keys[count] = key ^ mask
        out_cost[count] = cost
        count += 1
    return count


# ------------------------------------------------------------------------------- visits
@numba.njit(cache=True, nogil=True, inline="always")
def _reverse_bits(value, bits):
    """The low ``bits`` bits of ``value`` in reverse order (bit 0 the most significant)."""
    out = np.uint64(0)
    for i in range(bits):
        out = (out << np.uint64(1)) | ((value >> np.uint64(i)) & np.uint64(1))
    return out


@numba.njit(cache=True, nogil=True)
def _prefix_bound(ids, id_bits, rest, rest_bits, prefix_bits, a, z, target, shift, after, work):
    """First entry of ``[a, z)`` whose prefix ``>> shift`` is ``>= target`` (``> target``
    when ``after``): entries of a bucket are sorted by their prefix."""
    lo, hi = a, z
    while lo < hi:
        mid = (lo + hi) >> 1
        work[W_SEARCH] += 1
        place = read_field(ids, np.int64(mid), id_bits)
        value = _reverse_bits(read_field(rest, np.int64(place), rest_bits), prefix_bits)
        value = value >> np.uint64(shift)
        if value < target or (after and value == target):
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def narrow_bucket(ids, id_bits, rest, rest_bits, prefix_bits, a, z, query_prefix, room, work):
    """The part ``[a', z')`` of a crowded bucket ``[a, z)`` that shares the query's first
    ``b`` prefix bits, ``b`` the fewest that bring it within ``room`` entries (empty if
    none does).

    ``b`` starts where the expected share (size / 2**b) fits and grows one bit at a time.
    Each try is a binary search for the part's start inside what is left of the bucket
    and one for its end among the next ``room + 1`` entries only (a longer part does not
    fit anyway): ``W_SEARCH`` ops.
    """
    size = z - a
    b = 1
    while b < prefix_bits and (size >> b) > room:
        b += 1
    lo = a
    while True:
        shift = prefix_bits - b
        target = query_prefix >> np.uint64(shift)
        lo = _prefix_bound(
            ids, id_bits, rest, rest_bits, prefix_bits, lo, z, target, shift, False, work
        )
        end = min(z, lo + room + 1)
        hi = _prefix_bound(
            ids, id_bits, rest, rest_bits, prefix_bits, lo, end, target, shift, True, work
        )
        if hi - lo <= room:
            return lo, hi
        if b >= prefix_bits:
            return lo, lo
        b += 1


@numba.njit(cache=True, nogil=True)
def visit_frames(
    offsets,
    occupied,
    ids,
    id_bits,
    keys,
    costs,
    valid,
    n_probes,
    flip_bits,
    max_flips,
    max_entries,
    rest,
    rest_bits,
    prefix_bits,
    query_prefix,
    narrow_probes,
    search_per_probe,
    work,
):
    """Probe every frame's buckets and read their entries, probes made as they are needed.

    ``keys (L,)`` and ``costs (L, k)`` of the query frames; frames with ``valid[t]`` false
    (no sequence key) probe nothing. A frame probes its most likely keys in order
    (:func:`frame_probes`, generated one at a time) until it has read ``max_entries``
    entries or made ``n_probes`` probes. ``occupied`` is the bitmap of non-empty buckets
    (bit ``key & 7`` of byte ``key >> 3``): an empty bucket costs one bitmap test, its
    offsets are not read. A bucket that would take the frame past its budget is narrowed
    to its places that share the query frame's next code bits (``query_prefix (L,)``,
    :func:`narrow_bucket`; ``prefix_bits`` 0: skipped, its entries not read). Returns
    ``(frames, positions, ranks)`` of the hits in visiting order (frame by frame, most
    likely probe first).
    """
    L = keys.shape[0]
    cap_heap = 2 * max(n_probes, 1) + 2
    hc, hm = np.empty(cap_heap, np.float64), np.empty(cap_heap, np.int64)
    hl, hs = np.empty(cap_heap, np.int64), np.empty(cap_heap, np.int64)
    cap = 1024
    frames = np.empty(cap, np.int64)
    positions = np.empty(cap, np.int64)
    ranks = np.empty(cap, np.int64)
    m = 0
    for t in range(L):
        if not valid[t]:
            continue
        order, c, b = _probe_setup(costs[t], flip_bits, work)
        n = 0
        total = 0
        j = 0
        spent = 0
        key = keys[t]
        work[W_PROBES] += 1  # the key itself is the first probe
        while True:
            work[W_BITMAP] += 1
            if (occupied[key >> 3] >> (key & 7)) & 1:
                work[W_OFFSETS] += 2
                a = np.int64(offsets[key])
                z = np.int64(offsets[key + 1])
            else:
                a = z = np.int64(0)
            charge = np.int64(0)
            if z > a and total + z - a > max_entries and prefix_bits > 0 and j < narrow_probes:
                steps = work[W_SEARCH]
                a, z = narrow_bucket(
                    ids,
                    id_bits,
                    rest,
                    rest_bits,
                    prefix_bits,
                    a,
                    z,
                    query_prefix[t],
                    max_entries - total,
                    work,
                )
                charge = (work[W_SEARCH] - steps) // search_per_probe
            if z > a and total + z - a <= max_entries:
                total += z - a
                if m + z - a > cap:
                    while m + z - a > cap:
                        cap *= 2
                    frames = _grow(frames, cap)
                    positions = _grow(positions, cap)
                    ranks = _grow(ranks, cap)
                for e in range(a, z):
                    positions[m] = np.int64(read_field(ids, np.int64(e), id_bits))
                    frames[m] = t
                    ranks[m] = j
                    m += 1
                work[W_ENTRIES] += z - a
            j += 1
            spent += 1 + charge
            if spent >= n_probes or total >= max_entries or b == 0 or max_flips == 0:
                break
            if j == 1:  # the first flip set: the least reliable bit alone
                n = _heap_push(c[0], np.int64(1) << order[0], 0, 1, hc, hm, hl, hs, 0)
                work[W_PROBES] += 1
            if n == 0:
                break
            mask, _, n = _next_probe(order, c, b, max_flips, hc, hm, hl, hs, n, work)
            key = keys[t] ^ mask
    return frames[:m], positions[:m], ranks[:m]


@numba.njit(cache=True, nogil=True)
def _grow(a, cap):
    out = np.empty(cap, a.dtype)
    out[: a.shape[0]] = a
    return out


# -------------------------------------------------------------------------------- votes
@numba.njit(cache=True, nogil=True)
def vote_diagonals(frames, positions, width, work):
    """Votes of the hits on diagonals ``p - t`` in bins of ``width`` places.

    A bin counts each query frame once. Returns ``(votes, order)``: for every hit, the
    votes of its bin (final), and the bins that reached two votes as indices of their
    first hit, most votes first (a vote table entry per hit; sorting the multi-vote bins).
    """
    n = frames.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    bins = np.empty(size, np.int64)
    used = np.zeros(size, np.bool_)
    count = np.zeros(size, np.int64)
    last = np.full(size, -1, np.int64)
    first = np.empty(size, np.int64)
    slot_of = np.empty(n, np.int64)
    multi = np.empty(n, np.int64)
    n_multi = 0
    for h in range(n):
        d = positions[h] - frames[h]
        b = d // width
        s = (b * np.int64(0x9E3779B1)) & (size - 1)
        while used[s] and bins[s] != b:
            s = (s + 1) & (size - 1)
        if not used[s]:
            used[s] = True
            bins[s] = b
            first[s] = h
        if last[s] != frames[h]:
            last[s] = frames[h]
            count[s] += 1
            if count[s] == 2:
                multi[n_multi] = s
                n_multi += 1
        slot_of[h] = s
    work[W_VOTES] += n
    votes = np.empty(n, np.int64)
    for h in range(n):
        votes[h] = count[slot_of[h]]
    key = np.empty(n_multi, np.int64)
    for i in range(n_multi):
        key[i] = -count[multi[i]]
    order = np.argsort(key, kind="mergesort")
    work[W_SORT] += n_multi
    out = np.empty(n_multi, np.int64)
    for i in range(n_multi):
        out[i] = first[multi[order[i]]]
    return votes, out


# ------------------------------------------------------------------------- verification
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
    """Hamming distances over frames ``t-radius..t+radius`` around anchor ``(t, p)``.

    Velocities 0.8-1.2 map offsets up to +-2 frames to the same places, so this check
    does not depend on the velocity for ``radius <= 2``. Returns ``(sum, compared)``,
    the anchor itself included.
    """
    L = rest_query.shape[0]
    s = 0
    c = 0
    for d in range(-radius, radius + 1):
        tt = t + d
        pp = p + d
        if tt >= 0 and tt < L and pp >= 0 and pp < n_places:
            s += popcount64(read_field(rest, pp, rest_bits) ^ rest_query[tt])
            c += 1
    return s, c


@numba.njit(cache=True, nogil=True)
def pick_anchors(
    ranks, multi, n_anchors, rest, rest_bits, rest_query, hit_frames, hit_positions, work
):
    """Anchors to check: multi-vote bins (most votes first), then single hits.

    When the single hits do not all fit in ``n_anchors``, they are ranked by their own
    evidence: the Hamming distance of the hit's rest bits to its query frame's (one code
    comparison each; ties by probe rank). A true single hit agrees on most rest bits,
    a chance one on about half, so a cut no longer depends on how deep the probe was.
    Returns hit indices.
    """
    n = ranks.shape[0]
    out = np.empty(min(n_anchors, n), np.int64)
    taken = np.zeros(n, np.bool_)
    m = 0
    for i in range(multi.shape[0]):
        if m == out.shape[0]:
            break
        out[m] = multi[i]
        taken[multi[i]] = True
        m += 1
    singles = 0
    max_rank = 0
    for h in range(n):
        if not taken[h]:
            singles += 1
            max_rank = max(max_rank, ranks[h])
    left = out.shape[0] - m
    if singles <= left:
        for h in range(n):
            if not taken[h]:
                out[m] = h
                m += 1
        work[W_SORT] += m
        return out[:m]
    idx = np.empty(singles, np.int64)
    key = np.empty(singles, np.int64)
    j = 0
    for h in range(n):
        if not taken[h]:
            d = popcount64(
                read_field(rest, hit_positions[h], rest_bits) ^ rest_query[hit_frames[h]]
            )
            idx[j] = h
            key[j] = d * (max_rank + 1) + ranks[h]
            j += 1
    work[W_COMPARE] += singles
    order = np.argsort(key, kind="mergesort")
    work[W_SORT] += singles + m
    for i in range(left):
        out[m] = idx[order[i]]
        m += 1
    return out[:m]


@numba.njit(cache=True, nogil=True)
def verify(
    rest,
    rest_bits,
    n_places,
    rest_query,
    hit_frames,
    hit_positions,
    votes,
    anchors,
    velocities,
    radius,
    keep_local,
    step,
    keep_coarse,
    agreement,
    vote_weight,
    work,
):
    """Cascade over the chosen anchors: local window -> sub-sampled -> full trajectory.

    An anchor's score is the log-likelihood ratio of its +-``radius`` local window
    (``agreement`` = expected share of equal bits at the true place, 0.5 for unrelated
    codes) plus ``vote_weight`` per extra vote of its diagonal. The best ``keep_local``
    propose alignments ``(end, velocity)`` for every velocity; these are compared on
    every ``step``-th frame and the best ``keep_coarse`` along the whole trajectory.
    Returns ``(ends, velocity_index, mean_distance)`` of the fully verified alignments.
    """
    L = rest_query.shape[0]
    w_same = np.log(agreement / 0.5)
    w_diff = np.log((1.0 - agreement) / 0.5)
    n1 = anchors.shape[0]
    score = np.empty(n1, np.float64)
    for i in range(n1):
        h = anchors[i]
        s, c = local_distance(
            rest, rest_bits, n_places, rest_query, hit_frames[h], hit_positions[h], radius
        )
        work[W_COMPARE] += c
        llr = (c * rest_bits - s) * w_same + s * w_diff
        score[i] = -(llr + vote_weight * (votes[h] - 1))
    order = np.argsort(score, kind="mergesort")[: min(keep_local, n1)]
    work[W_SORT] += n1
    n2 = order.shape[0]
    V = velocities.shape[0]
    ends = np.empty(n2 * V, np.int64)
    vidx = np.empty(n2 * V, np.int64)
    phase = np.empty(n2 * V, np.int64)
    for i in range(n2):
        h = anchors[order[i]]
        t = hit_frames[h]
        for v in range(V):
            j = i * V + v
            ends[j] = hit_positions[h] + np.int64(np.floor(velocities[v] * (L - 1 - t) + 0.5))
            vidx[j] = v
            phase[j] = t % step
    # distinct (end, velocity): sort once, keep the first of each run
    key = ends * V + vidx
    by_key = np.argsort(key, kind="mergesort")
    work[W_SORT] += key.shape[0]
    coarse = np.empty(key.shape[0], np.float64)
    keep = np.zeros(key.shape[0], np.bool_)
    n_finite = 0
    for i in range(key.shape[0]):
        j = by_key[i]
        if i > 0 and key[j] == key[by_key[i - 1]]:
            continue
        keep[j] = True
        e, v = ends[j], vidx[j]
        start = e - np.int64(np.floor(velocities[v] * (L - 1) + 0.5))
        if start < 0 or e >= n_places:  # trajectories must lie inside the database
            coarse[j] = np.inf
            continue
        # the anchor's own frame phase, so the anchor itself is among the compared frames
        s, c = trajectory_distance(
            rest, rest_bits, n_places, rest_query, e, velocities[v], phase[j], step
        )
        work[W_COMPARE] += c
        coarse[j] = s / c
        n_finite += 1
    for j in range(key.shape[0]):
        if not keep[j]:
            coarse[j] = np.inf
    order3 = np.argsort(coarse, kind="mergesort")[: min(keep_coarse, n_finite)]
    work[W_SORT] += key.shape[0]
    n3 = order3.shape[0]
    out_e = np.empty(n3, np.int64)
    out_v = np.empty(n3, np.int64)
    out_s = np.empty(n3, np.float64)
    for i in range(n3):
        j = order3[i]
        s, c = trajectory_distance(
            rest, rest_bits, n_places, rest_query, ends[j], velocities[vidx[j]], 0, 1
        )
        work[W_COMPARE] += c
        out_e[i] = ends[j]
        out_v[i] = vidx[j]
        out_s[i] = s / c if c > 0 else np.inf
    return out_e, out_v, out_s


@numba.njit(cache=True, nogil=True)
def refine_end(rest, rest_bits, n_places, rest_query, end, velocities, reach, step, keep, work):
    """Search the ends ``end - reach .. end + reach`` at every velocity around an alignment.

    An alignment proposed by an anchor on a neighbouring diagonal (a place a few steps
    along the same stretch) ends up to ``reach`` places from the true end; the true
    alignment is then never verified. Every ``(end + d, velocity)`` is compared on every
    ``step``-th frame (a shortlist: callers pass twice the cascade's step), the best
    ``keep`` along the whole trajectory. Returns
    ``(end, velocity_index, mean_distance)`` of the best (``inf`` when none fits).
    """
    L = rest_query.shape[0]
    V = velocities.shape[0]
    n = (2 * reach + 1) * V
    coarse = np.full(n, np.inf)
    cand_e = np.empty(n, np.int64)
    cand_v = np.empty(n, np.int64)
    for i in range(2 * reach + 1):
        e = end - reach + i
        for v in range(V):
            j = i * V + v
            cand_e[j] = e
            cand_v[j] = v
            start = e - np.int64(np.floor(velocities[v] * (L - 1) + 0.5))
            if start < 0 or e >= n_places:
                continue
            s, c = trajectory_distance(
                rest, rest_bits, n_places, rest_query, e, velocities[v], 0, step
            )
            work[W_COMPARE] += c
            coarse[j] = s / c
    order = np.argsort(coarse, kind="mergesort")[:keep]
    work[W_SORT] += n
    best_e, best_v, best_d = end, np.int64(-1), np.inf
    for j in order:
        if not np.isfinite(coarse[j]):
            break
        s, c = trajectory_distance(
            rest, rest_bits, n_places, rest_query, cand_e[j], velocities[cand_v[j]], 0, 1
        )
        work[W_COMPARE] += c
        if c > 0 and s / c < best_d:
            best_e, best_v, best_d = cand_e[j], cand_v[j], s / c
    return best_e, best_v, best_d
