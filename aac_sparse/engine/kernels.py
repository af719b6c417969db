"""Numba kernels of the sparse engine.

Layout: activations and their gradients are *neuron-major, batch-contiguous* arrays of
shape ``(n_neurons, batch)``, float32, C order.  A sparse layer keeps its connections in
CSR order over **output** neurons (``indptr`` of length ``n_out + 1``, ``indices`` = input
neuron of each connection), plus a transposed index over **input** neurons
(``t_indptr``, ``t_cols`` = output neuron, ``t_pos`` = position in the CSR arrays).

With this layout every kernel below works on whole contiguous rows of length ``batch``:
each parallel iteration owns one output row, so no two threads ever write the same memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ----------------------------------------------------------------------------- forward


@njit(cache=True, inline="always")
def _keep_scale(seed, j, t, batch, threshold, scale):  # pragma: no cover - compiled
    """Inverted-dropout factor of element ``(j, t)`` of a mini-batch of ``batch`` columns:
    0 or ``scale``, a hash of the seed.

    Counter-based, so the backward pass recomputes the forward mask instead of storing
    it, the result does not depend on how work is split over threads, and a micro-batch
    starting at column ``col0`` of the mini-batch gets its part of the same mask.
    """
    h = (np.uint64(seed) + np.uint64(j) * np.uint64(batch) + np.uint64(t)) * np.uint64(
        0x9E3779B97F4A7C15)
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return scale if (h >> np.uint64(40)) >= threshold else np.float32(0.0)


@njit(cache=True, inline="always")
def _put(out, k, v, accumulate):  # pragma: no cover - compiled
    """``out[k] = v``, or ``+=`` with ``accumulate`` (micro-batches of one mini-batch)."""
    if accumulate:
        out[k] += v
    else:
        out[k] = v


@njit(cache=True, inline="always")
def _put4(out, k0, k1, k2, k3, s0, s1, s2, s3, accumulate):  # pragma: no cover - compiled
    """``out[k_n] = s_n`` for four positions, or ``+=`` with ``accumulate``."""
    if accumulate:
        out[k0] += s0
        out[k1] += s1
        out[k2] += s2
        out[k3] += s3
    else:
        out[k0] = s0
        out[k1] = s1
        out[k2] = s2
        out[k3] = s3


@njit(cache=True, inline="always")
def _dropout_constants(rate):  # pragma: no cover - compiled
    return np.uint64(rate * 16777216.0), np.float32(1.0 / (1.0 - rate))


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def spmm_forward(indptr, indices, w, bias, x, z, a, slope, rate, seed,
                 col0, stride):  # pragma: no cover - compiled
    """``z[j, :] = bias[j] + sum_k w[k] * x[indices[k], :]`` over the row of ``j``.

    If ``a`` has rows, the leaky-family activation and dropout are applied on the way
    out: ``a = where(z > 0, z, slope * z) * mask`` (``rate`` 0: no dropout; the mask of
    columns ``col0 ..`` of a mini-batch of ``stride`` columns), and ``z`` is written only
    if it has rows (a hidden layer whose backward pass needs only ``a``).  Each thread
    owns whole output rows; eight connections are folded into one pass over a private
    accumulator, so it is touched an eighth as often as the gathered input rows (on 2
    cores the measured bound is that gather from L2).
    """
    n_out = indptr.shape[0] - 1
    batch = x.shape[1]
    fuse = a.shape[0] > 0
    keep_z = z.shape[0] > 0
    drop = rate > 0.0
    threshold, scale = _dropout_constants(rate)
    s = np.float32(slope)
    for j in prange(n_out):
        acc = np.empty(batch, dtype=np.float32)
        bj = bias[j]
        for t in range(batch):
            acc[t] = bj
        k = indptr[j]
        end = indptr[j + 1]
        while k + 8 <= end:
            w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
            w4, w5, w6, w7 = w[k + 4], w[k + 5], w[k + 6], w[k + 7]
            i0, i1, i2, i3 = indices[k], indices[k + 1], indices[k + 2], indices[k + 3]
            i4, i5, i6, i7 = indices[k + 4], indices[k + 5], indices[k + 6], indices[k + 7]
            for t in range(batch):
                acc[t] += (w0 * x[i0, t] + w1 * x[i1, t] + w2 * x[i2, t] + w3 * x[i3, t]) + (
                    w4 * x[i4, t] + w5 * x[i5, t] + w6 * x[i6, t] + w7 * x[i7, t])
            k += 8
        while k < end:
            wk = w[k]
            ik = indices[k]
            for t in range(batch):
                acc[t] += wk * x[ik, t]
            k += 1
        if keep_z:
            for t in range(batch):
                z[j, t] = acc[t]
        if fuse:  # activation and dropout in the same sweep as the row is written
            if drop:
                for t in range(batch):
                    v = acc[t]
                    a[j, t] = (v if v > 0 else s * v) * _keep_scale(
                        seed, j, col0 + t, stride, threshold, scale)
            else:
                for t in range(batch):
                    v = acc[t]
                    a[j, t] = v if v > 0 else s * v


# ---------------------------------------------------------------------------- backward


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def backward_fused(t_indptr, t_cols, t_pos, w, x, dz, dx, grad, z_prev, slope, rate,
                   seed, col0, stride, accumulate, db_prev):  # pragma: no cover - compiled
    """Input gradient and weight gradient in one pass over the connections of each input.

    For input neuron ``i``: ``dx[i, :] = sum_k w[k] * dz[j_k, :]`` and, for the same
    connections, ``grad[k] = <x[i, :], dz[j_k, :]>``.  Each gathered ``dz`` row is used
    twice while it is in L1.  If ``z_prev`` has rows, ``dx`` is carried back through the
    previous layer's dropout mask and leaky activation, i.e. it becomes that layer's
    ``dz`` (``z_prev`` may be ``x`` itself when the slope is >= 0: the sign is the same).
    With ``accumulate`` the weight gradient is added to ``grad`` (micro-batches of one
    mini-batch).  If ``db_prev`` has entries, it receives the row sums of that ``dz``
    (the previous layer's bias gradient) in the same sweep.  Thread ``i`` writes only
    row ``i`` of ``dx``, entry ``i`` of ``db_prev`` and the ``grad`` entries of its own
    connections, so there are no races.
    """
    n_in = t_indptr.shape[0] - 1
    batch = dz.shape[1]
    fuse = z_prev.shape[0] > 0
    bias_sums = db_prev.shape[0] > 0
    drop = rate > 0.0
    threshold, scale = _dropout_constants(rate)
    s_left = np.float32(slope)
    for i in prange(n_in):
        acc = np.zeros(batch, dtype=np.float32)
        p = t_indptr[i]
        end = t_indptr[i + 1]
        while p + 4 <= end:
            k0, k1, k2, k3 = t_pos[p], t_pos[p + 1], t_pos[p + 2], t_pos[p + 3]
            j0, j1, j2, j3 = t_cols[p], t_cols[p + 1], t_cols[p + 2], t_cols[p + 3]
            w0, w1, w2, w3 = w[k0], w[k1], w[k2], w[k3]
            s0 = np.float32(0.0)
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            s3 = np.float32(0.0)
            for t in range(batch):
                d0 = dz[j0, t]
                d1 = dz[j1, t]
                d2 = dz[j2, t]
                d3 = dz[j3, t]
                xt = x[i, t]
                acc[t] += (w0 * d0 + w1 * d1) + (w2 * d2 + w3 * d3)
                s0 += xt * d0
                s1 += xt * d1
                s2 += xt * d2
                s3 += xt * d3
            _put4(grad, k0, k1, k2, k3, s0, s1, s2, s3, accumulate)
            p += 4
        while p < end:
            k = t_pos[p]
            j = t_cols[p]
            wk = w[k]
            sk = np.float32(0.0)
            for t in range(batch):
                d = dz[j, t]
                acc[t] += wk * d
                sk += x[i, t] * d
            grad[k] = grad[k] + sk if accumulate else sk
            p += 1
        if fuse:
            if drop:
                for t in range(batch):
                    acc[t] *= _keep_scale(seed, i, col0 + t, stride, threshold, scale)
            if bias_sums:
                sb = np.float32(0.0)
                for t in range(batch):
                    v = acc[t] if z_prev[i, t] > 0 else s_left * acc[t]
                    dx[i, t] = v
                    sb += v
                db_prev[i] = db_prev[i] + sb if accumulate else sb
            else:
                for t in range(batch):
                    dx[i, t] = acc[t] if z_prev[i, t] > 0 else s_left * acc[t]
        else:
            for t in range(batch):
                dx[i, t] = acc[t]


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def sddmm(indptr, indices, x, dz, grad, accumulate):  # pragma: no cover - compiled
    """Weight gradient at existing connections only: ``grad[k] = <x[i_k, :], dz[j, :]>``
    (added to ``grad`` with ``accumulate``).

    A sampled dense-dense product: the dense ``dz @ x.T`` is never formed.  Used where
    no input gradient is needed (the first layer).
    """
    n_out = indptr.shape[0] - 1
    batch = x.shape[1]
    for j in prange(n_out):
        k = indptr[j]
        end = indptr[j + 1]
        while k + 4 <= end:
            i0, i1, i2, i3 = indices[k], indices[k + 1], indices[k + 2], indices[k + 3]
            s0 = np.float32(0.0)
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            s3 = np.float32(0.0)
            for t in range(batch):
                d = dz[j, t]
                s0 += x[i0, t] * d
                s1 += x[i1, t] * d
                s2 += x[i2, t] * d
                s3 += x[i3, t] * d
            _put4(grad, k, k + 1, k + 2, k + 3, s0, s1, s2, s3, accumulate)
            k += 4
        while k < end:
            ik = indices[k]
            s = np.float32(0.0)
            for t in range(batch):
                s += x[ik, t] * dz[j, t]
            grad[k] = grad[k] + s if accumulate else s
            k += 1


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def row_sums(a, out, accumulate):  # pragma: no cover - compiled
    """``out[j] = sum_t a[j, t]`` (bias gradients, batch reduction per neuron); added to
    ``out`` with ``accumulate``."""
    for j in prange(a.shape[0]):
        s = np.float32(0.0)
        row = a[j]
        for t in range(a.shape[1]):
            s += row[t]
        out[j] = out[j] + s if accumulate else s


# ------------------------------------------------------------------------- activations


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def srelu_forward(z, a, tl, al, tr, ar):  # pragma: no cover - compiled
    """S-shaped ReLU with four parameters per neuron (Jin et al. 2016)."""
    for j in prange(z.shape[0]):
        zj = z[j]
        aj = a[j]
        tlj = tl[j]
        alj = al[j]
        trj = tr[j]
        arj = ar[j]
        for t in range(z.shape[1]):
            v = zj[t]
            if v >= trj:
                aj[t] = trj + arj * (v - trj)
            elif v <= tlj:
                aj[t] = tlj + alj * (v - tlj)
            else:
                aj[t] = v


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def srelu_backward(z, da, dz, tl, al, tr, ar, g_tl, g_al, g_tr, g_ar,
                   accumulate):  # pragma: no cover - compiled
    """Input gradient of SReLU and the gradients of its four per-neuron parameters (added
    to ``g_*`` with ``accumulate``)."""
    for j in prange(z.shape[0]):
        zj = z[j]
        daj = da[j]
        dzj = dz[j]
        tlj = tl[j]
        alj = al[j]
        trj = tr[j]
        arj = ar[j]
        s_tl = np.float32(0.0)
        s_al = np.float32(0.0)
        s_tr = np.float32(0.0)
        s_ar = np.float32(0.0)
        for t in range(z.shape[1]):
            v = zj[t]
            d = daj[t]
            if v >= trj:
                dzj[t] = arj * d
                s_tr += (1.0 - arj) * d
                s_ar += (v - trj) * d
            elif v <= tlj:
                dzj[t] = alj * d
                s_tl += (1.0 - alj) * d
                s_al += (v - tlj) * d
            else:
                dzj[t] = d
        _put(g_tl, j, s_tl, accumulate)
        _put(g_al, j, s_al, accumulate)
        _put(g_tr, j, s_tr, accumulate)
        _put(g_ar, j, s_ar, accumulate)


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def dropout_inplace(a, rate, seed, col0, stride):  # pragma: no cover - compiled
    """Inverted dropout ``a[j, t] *= keep(seed, j, col0 + t)``; the same mask as the fused
    kernels (columns ``col0 ..`` of a mini-batch of ``stride`` columns)."""
    threshold, scale = _dropout_constants(rate)
    batch = a.shape[1]
    for j in prange(a.shape[0]):
        for t in range(batch):
            a[j, t] *= _keep_scale(seed, j, col0 + t, stride, threshold, scale)


# ------------------------------------------------------------------------- batch plumbing


@njit(parallel=True, cache=True, boundscheck=False)
def gather_transpose(x, rows, out):  # pragma: no cover - compiled
    """``out[i, b] = x[rows[b], i]``: a shuffled batch, made neuron-major in one pass.

    Threads own blocks of 64 features (whole rows of ``out``), reading each sample's
    slice of ``x`` contiguously.
    """
    n = x.shape[1]
    n_blocks = (n + 63) // 64
    for blk in prange(n_blocks):
        lo = blk * 64
        hi = min(lo + 64, n)
        for b in range(rows.shape[0]):
            r = rows[b]
            for i in range(lo, hi):
                out[i, b] = x[r, i]


@njit(cache=True)
def softmax_xent(logits, y, grad):  # pragma: no cover - compiled
    """Mean softmax cross-entropy of neuron-major ``logits (classes, batch)``.

    Writes ``dL/dlogits`` into ``grad`` and returns ``(loss, n_correct)``; a NaN or inf
    logit makes the loss non-finite, which the trainer reports as divergence.
    """
    n_classes, batch = logits.shape
    inv_b = 1.0 / batch
    total = 0.0
    correct = 0
    for b in range(batch):
        m = logits[0, b]
        arg = 0
        for c in range(1, n_classes):
            if logits[c, b] > m:
                m = logits[c, b]
                arg = c
        s = 0.0
        for c in range(n_classes):
            e = np.exp(np.float64(logits[c, b]) - m)
            grad[c, b] = e
            s += e
        total += np.log(s) - (logits[y[b], b] - m)
        scale = inv_b / s
        for c in range(n_classes):
            grad[c, b] = grad[c, b] * scale
        grad[y[b], b] -= inv_b
        if arg == y[b]:
            correct += 1
    return total * inv_b, correct


# --------------------------------------------------------------------------- optimizer


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def sgd_momentum_update(w, v, g, lr, momentum, weight_decay):  # pragma: no cover
    """In place: ``v = momentum * v - lr * (g + weight_decay * w)``; ``w += v``."""
    lr32 = np.float32(lr)
    mu = np.float32(momentum)
    wd = np.float32(weight_decay)
    for k in prange(w.shape[0]):
        vk = mu * v[k] - lr32 * (g[k] + wd * w[k])
        v[k] = vk
        w[k] += vk


# -------------------------------------------------------------------------- structure


@njit(cache=True)
def build_transpose(indptr, indices, n_in):  # pragma: no cover - compiled
    """Counting sort of the CSR connections by input neuron, O(nnz + n_in).

    Returns ``(t_indptr, t_cols, t_pos)``; within each input neuron the output neurons
    come out sorted because the CSR rows are visited in order.
    """
    n_out = indptr.shape[0] - 1
    nnz = indices.shape[0]
    t_indptr = np.zeros(n_in + 1, dtype=np.int64)
    for k in range(nnz):
        t_indptr[indices[k] + 1] += 1
    for i in range(n_in):
        t_indptr[i + 1] += t_indptr[i]
    cursor = t_indptr[:-1].copy()
    t_cols = np.empty(nnz, dtype=np.int32)
    t_pos = np.empty(nnz, dtype=np.int64)
    for j in range(n_out):
        for k in range(indptr[j], indptr[j + 1]):
            i = indices[k]
            p = cursor[i]
            t_cols[p] = j
            t_pos[p] = k
            cursor[i] = p + 1
    return t_indptr, t_cols, t_pos


@njit(cache=True)
def merge_sorted_keys(keys_a, w_a, v_a, keys_b, w_b):  # pragma: no cover - compiled
    """Merge two sorted, disjoint key arrays with their weights, O(len_a + len_b).

    ``v`` (optimizer state) is carried for ``a`` and zero for the new entries ``b``.
    """
    na = keys_a.shape[0]
    nb = keys_b.shape[0]
    keys = np.empty(na + nb, dtype=np.int64)
    w = np.empty(na + nb, dtype=np.float32)
    v = np.zeros(na + nb, dtype=np.float32)
    ia = 0
    ib = 0
    for o in range(na + nb):
        if ib >= nb or (ia < na and keys_a[ia] < keys_b[ib]):
            keys[o] = keys_a[ia]
            w[o] = w_a[ia]
            v[o] = v_a[ia]
            ia += 1
        else:
            keys[o] = keys_b[ib]
            w[o] = w_b[ib]
            ib += 1
    return keys, w, v


@njit(cache=True)
def keys_to_csr(keys, n_in, n_out):  # pragma: no cover - compiled
    """Sorted flat keys ``j * n_in + i`` -> ``(indptr, indices)``, O(nnz + n_out)."""
    nnz = keys.shape[0]
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    indices = np.empty(nnz, dtype=np.int32)
    for k in range(nnz):
        j = keys[k] // n_in
        indices[k] = keys[k] - j * n_in
        indptr[j + 1] += 1
    for j in range(n_out):
        indptr[j + 1] += indptr[j]
    return indptr, indices


@njit(cache=True)
def csr_to_keys(indptr, indices, n_in):  # pragma: no cover - compiled
    """``(indptr, indices)`` -> sorted flat keys ``j * n_in + i``."""
    n_out = indptr.shape[0] - 1
    keys = np.empty(indices.shape[0], dtype=np.int64)
    for j in range(n_out):
        base = np.int64(j) * n_in
        for k in range(indptr[j], indptr[j + 1]):
            keys[k] = base + indices[k]
    return keys


@njit(cache=True)
def member_of_sorted(queries, sorted_keys):  # pragma: no cover - compiled
    """Boolean mask: which of the *sorted* ``queries`` occur in ``sorted_keys`` (merge walk)."""
    out = np.zeros(queries.shape[0], dtype=np.bool_)
    p = 0
    n = sorted_keys.shape[0]
    for q in range(queries.shape[0]):
        key = queries[q]
        while p < n and sorted_keys[p] < key:
            p += 1
        if p < n and sorted_keys[p] == key:
            out[q] = True
    return out


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def row_abs_sums(indptr, w, out):  # pragma: no cover - compiled
    """Neuron strength: ``out[j] = sum |w|`` over the incoming connections of ``j``."""
    for j in prange(indptr.shape[0] - 1):
        s = np.float32(0.0)
        for k in range(indptr[j], indptr[j + 1]):
            s += abs(w[k])
        out[j] = s


# ------------------------------------------------------------------------ gradient regrowth


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def absent_grad_scores_block(dz, x, j0, indptr, indices, out):  # pragma: no cover
    """``out[r, i] = |<dz[j0 + r, :], x[i, :]>|`` for a block of output rows, and -1 where
    ``(j0 + r, i)`` is a present connection (CSR ``indptr``/``indices``).

    The dense gradient of the block is formed one block at a time, never for the whole
    layer; each thread owns whole rows of ``out``.
    """
    rows, n_in = out.shape
    batch = x.shape[1]
    for r in prange(rows):
        j = j0 + r
        for i in range(n_in):
            s = np.float32(0.0)
            for t in range(batch):
                s += dz[j, t] * x[i, t]
            out[r, i] = abs(s)
        for k in range(indptr[j], indptr[j + 1]):
            out[r, indices[k]] = np.float32(-1.0)


@njit(parallel=True, cache=True, fastmath=True, boundscheck=False)
def grad_scores_at_keys(keys, n_in, dz, x, out):  # pragma: no cover - compiled
    """``out[q] = |<dz[j, :], x[i, :]>|`` for flat keys ``j * n_in + i`` (sampled candidates)."""
    batch = x.shape[1]
    for q in prange(keys.shape[0]):
        j = keys[q] // n_in
        i = keys[q] - j * n_in
        s = np.float32(0.0)
        for t in range(batch):
            s += dz[j, t] * x[i, t]
        out[q] = abs(s)
