"""Benchmarks that decide defaults: the cache format study (``livedata bench formats``).

It runs the cache's own format classes (``livedata.cache.formats``) and the real server, so a
figure here is what the cache pays. Layout: ``shapes`` (the data), ``formats`` (one format on
one shape), ``memory`` (peaks, in a fresh process), ``hits`` and ``serve`` (through HTTP),
``fidelity`` (what a round trip lost), ``run`` (the whole study), ``report`` and ``plots``.
"""
