"""The SØM calculation frame (projection of budget consequences)."""

from som_models.projection.frame import FM2021, Projection, discount_factors, project

__all__ = ["FM2021", "Projection", "discount_factors", "project"]
