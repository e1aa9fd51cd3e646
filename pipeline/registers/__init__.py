"""Register deliveries → the canonical person-year panel (polars)."""

from pipeline.registers.files import DeliveryError, Manifest, delivery_hash, read_manifest
from pipeline.registers.panel import PanelBuild, build_panel
from pipeline.registers.pseudonym import load_key, pseudonymise

__all__ = ["DeliveryError", "Manifest", "PanelBuild", "build_panel", "delivery_hash", "load_key", "pseudonymise", "read_manifest"]
