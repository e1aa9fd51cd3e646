"""CLI command modules; each defines ``register(app)`` (see ``pipeline.cli``)."""
