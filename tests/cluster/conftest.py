"""Fixtures of the multi-node tests (``ray.cluster_utils.Cluster`` on one machine)."""
import pytest

from tests.support.local_ray import private_ray_tmp


@pytest.fixture(scope="module")
def ray_tmp():
    """A private Ray temp dir for the module's cluster and its launches (``tests.support.local_ray.private_ray_tmp``)."""
    with private_ray_tmp() as tmp:
        yield tmp
