import os
import socket

import pytest

from hypothesis import HealthCheck, settings

# CI runs every test; keep hypothesis bounded and free of wall-clock deadlines (2 shared cores).
settings.register_profile('ci', deadline=None, max_examples=60, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile('dev', deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))


@pytest.fixture(autouse=True)
def _mmdet_default_scope():
    """Run each test in mmdet's scope and drop whatever scope it left (a Runner makes its own).

    A no-op without mmengine: tests/ops and tests/layers also run where only torch is installed.
    """
    try:
        from mmengine.registry import DefaultScope
    except ImportError:
        yield
        return
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


@pytest.fixture
def free_port() -> int:
    """A TCP port free on the loopback device just now, for a torchrun rendezvous."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
