"""Independent oracles for the pooling ops: the expressions the papers write, and a naive loop.

Nothing here shares code with ``lip_det.ops``: the fused kernels and the plain-PyTorch
implementation are both checked against these.
"""
import itertools
import math

import torch
import torch.nn.functional as F

AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def weighted_avg_expression(x, logit, k, s, p, ceil_mode):
    """The LIP authors' expression avg_pool(x·e^l) / avg_pool(e^l) (padding cancels)."""
    pool = AVG_POOL[x.dim() - 2]
    w = logit.exp()
    return pool(x * w, k, s, p, ceil_mode) / pool(w, k, s, p, ceil_mode)


def out_len(size, k, s, p, ceil_mode):
    """PyTorch's pooled length, written out from the documentation."""
    span = size + 2 * p - k
    n = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (n - 1) * s >= size + p:
        n -= 1
    return n


def naive_windows(x, k, s, p, ceil_mode):
    """Yield (n, c, oh, ow, values) for every output of a 2-D pooling, values = valid pixels."""
    N, C, H, W = x.shape
    oh_n, ow_n = out_len(H, k[0], s[0], p[0], ceil_mode), out_len(W, k[1], s[1], p[1], ceil_mode)
    for n, c, oh, ow in itertools.product(range(N), range(C), range(oh_n), range(ow_n)):
        h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
        hs = [h for h in range(h0, h0 + k[0]) if 0 <= h < H]
        ws = [w for w in range(w0, w0 + k[1]) if 0 <= w < W]
        vals = x[n, c][hs][:, ws].reshape(-1)
        yield n, c, oh, ow, vals, (oh_n, ow_n)


def naive_maxent(x, lam_full, k, s, p, ceil_mode):
    """Max-Ent pooling by a loop; ``lam_full`` broadcast to (N, C, oH, oW)."""
    out = None
    for n, c, oh, ow, v, shape in naive_windows(x, k, s, p, ceil_mode):
        if out is None:
            out = x.new_zeros(x.shape[:2] + shape)
        w = torch.softmax(lam_full[n, c, oh, ow] * v, 0)
        out[n, c, oh, ow] = (w * v).sum()
    return out


def naive_gauss(x, eta_full, k, s, p, ceil_mode, eps=1e-6):
    """Gaussian pooling μ + ησ over valid pixels by a loop; ``eta_full`` is (N, C, oH, oW)."""
    out = None
    for n, c, oh, ow, v, shape in naive_windows(x, k, s, p, ceil_mode):
        if out is None:
            out = x.new_zeros(x.shape[:2] + shape)
        mu = v.mean()
        var = (v * v).mean() - mu * mu
        out[n, c, oh, ow] = mu + eta_full[n, c, oh, ow] * var.clamp(min=eps).sqrt()
    return out
