"""The result cache: entries on disk, keyed by everything that changes a result."""
