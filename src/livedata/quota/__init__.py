"""Quotas: per-caller rate limits and per-source budgets, counted in this process or in Redis."""
