"""Who is asking, and what they may run: API keys, signed embed tokens, their grants."""
