"""Hypothesis strategies for pooling geometries (kernels 1-7, strides, paddings, ceil_mode)."""
from hypothesis import strategies as st


@st.composite
def geometry(draw, nd=2, max_kernel=7, max_extra=8, unpadded_fit=False):
    """(shape, kernel, stride, padding, ceil_mode) valid for PyTorch pooling in ``nd`` dims."""
    k = tuple(draw(st.integers(1, max_kernel)) for _ in range(nd))
    s = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    p = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    sizes = tuple(draw(st.integers(kk if unpadded_fit else max(1, kk - 2 * pp), kk + max_extra))
                  for kk, pp in zip(k, p))
    n = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    ceil_mode = draw(st.booleans())
    return (n, c) + sizes, k, s, p, ceil_mode
