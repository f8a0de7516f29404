"""The contract suite's fixtures: one sample source per connector kind."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from livedata.connectors.base import Connector
from tests.samples import KINDS, Sample


@pytest.fixture(scope="session", params=[pytest.param(kind, id=kind) for kind in KINDS])
def sample(request: pytest.FixtureRequest, sample_of: Callable[[str], Sample]) -> Sample:
    return sample_of(request.param)


@pytest.fixture
def connector(sample: Sample) -> Iterator[Connector[Any]]:
    connector = sample.connector()
    yield connector
    connector.close()
