"""Connectors: one small module per database kind, found through ``registry``."""
