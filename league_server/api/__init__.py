"""The HTTP API: dependencies, error handlers, rate limits and the route modules."""
