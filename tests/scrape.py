"""A `/metrics` scrape, parsed by the Prometheus client's own parser."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """One scrape of ``url``; ``scrape(name, **labels)`` is one sample, ``total(name)`` the
    sum of a metric over every label."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        response = httpx.get(f"{url}/metrics", headers=headers, timeout=60)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        self.samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str) -> float:
        return sum(value for (sample, _), value in self.samples.items() if sample == name)
