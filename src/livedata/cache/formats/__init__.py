"""Cache formats: how an entry's Arrow data is laid out on disk, one module per format."""
