"""Dagster definitions building blocks (IO managers, resources, assets)."""
