"""Register deliveries → the canonical person-year panel (polars).

``read_manifest(folder)`` → :class:`Manifest`; ``build_panel(manifest, key, columns=None)`` →
:class:`PanelBuild` (panel, treatments, register counts); ``ingest(folder, out, key)`` validates and writes
``panel.parquet``/``treatments.parquet`` atomically. Errors are :class:`DeliveryError`.
"""

from pipeline.registers.config import REGISTERS, ColumnMap, ConfigError, load_column_map
from pipeline.registers.files import DeliveryError, Manifest, delivery_hash, read_manifest
from pipeline.registers.ingest import IngestResult, ingest
from pipeline.registers.panel import PanelBuild, build_panel
from pipeline.registers.pseudonym import load_key, pseudonymise

__all__ = ["REGISTERS", "ColumnMap", "ConfigError", "DeliveryError", "IngestResult", "Manifest", "PanelBuild", "build_panel",
           "delivery_hash", "ingest", "load_column_map", "load_key", "pseudonymise", "read_manifest"]
