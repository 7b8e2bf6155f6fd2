"""The restricted unpickler for result pickles: data round-trips, code never runs."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lip_det.checkpoints import CheckpointError, load_result_pickle

_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=False),
    st.text(max_size=8), st.binary(max_size=8),
    st.lists(st.floats(-1e3, 1e3), min_size=0, max_size=6).map(torch.tensor),
    st.lists(st.integers(-9, 9), min_size=1, max_size=6).map(lambda v: np.array(v, dtype=np.int64)),
    st.floats(-1e3, 1e3).map(np.float32),
)
_data = st.recursive(_leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@settings(max_examples=40)
@given(obj=_data, protocol=st.sampled_from([2, 3, 4, pickle.HIGHEST_PROTOCOL]))
def test_data_round_trips_under_every_protocol(tmp_path_factory, obj, protocol):
    path = tmp_path_factory.mktemp('pkl') / 'data.pkl'
    with open(path, 'wb') as f:
        pickle.dump(obj, f, protocol=protocol)
    assert _same(obj, load_result_pickle(str(path)))


class _Runs:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


@pytest.mark.parametrize('payload', ['reduce', 'codecs'])
def test_refuses_code(tmp_path, payload):
    marker = tmp_path / 'ran'
    if payload == 'reduce':
        data = pickle.dumps([{'img_id': 1}, _Runs(str(marker))], protocol=2)
        expected = 'os.makedirs'
    else:  # _codecs.encode is allowed only as protocol 2's latin1 bytes trick
        data = (b'\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x09\x00\x00\x00rot13_bad'
                b'\x86R.')
        expected = "encoding 'rot13_bad'"
    (tmp_path / 'x.pkl').write_bytes(data)
    with pytest.raises(CheckpointError, match=expected):
        load_result_pickle(str(tmp_path / 'x.pkl'))
    assert not marker.exists()
