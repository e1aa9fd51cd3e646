"""A Dagster IO manager for check tests: upstream values given in advance, nothing materialised."""

from __future__ import annotations

import dagster as dg


class StaticIOManager(dg.IOManager):
    """Loads each input from ``values`` by asset key; any output is a test error."""

    def __init__(self, values: dict):
        self.values = values

    def handle_output(self, context, obj):  # pragma: no cover - nothing is materialised here
        raise AssertionError("no outputs expected")

    def load_input(self, context):
        return self.values[context.asset_key.to_user_string()]
