"""The HTTP layer: translates requests to service calls and errors to status codes."""
