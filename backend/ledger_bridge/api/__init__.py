"""HTTP layer: routers, dependencies, middleware and problem responses."""
