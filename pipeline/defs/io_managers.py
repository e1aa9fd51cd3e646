"""A small Parquet/pickle IO manager for polars assets (dagster-polars does not support polars 2.x).

Layout under ``base_dir``:

* unpartitioned asset ``a/b``           → ``{base_dir}/a/b.parquet`` (or ``.pkl``)
* partitioned asset, partition ``k``    → ``{base_dir}/a/b/{k}.parquet`` (or ``.pkl``)

polars DataFrames (and LazyFrames, streamed with ``sink_parquet``) are written as Parquet; any
other object is pickled. Partition keys are percent-encoded so that ``/``, ``|`` (multi-partition
keys) or ``..`` cannot escape the folder. Writes go to a temporary file in the target folder and
are moved into place with ``os.replace``, so readers never see half-written files. Inputs
annotated as ``pl.LazyFrame`` are scanned lazily; a load spanning several partitions returns
``{partition_key: value}``.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import polars as pl

PARQUET, PICKLE = ".parquet", ".pkl"


def _encode_partition(key: str) -> str:
    encoded = quote(str(key), safe="")
    return encoded.replace(".", "%2E") if encoded in {"", ".", ".."} else encoded


def _atomic_write(target: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` and move the temp file onto ``target`` atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PolarsParquetIOManager(dg.ConfigurableIOManager):
    """Stores polars frames as Parquet and other objects as pickles under ``base_dir``."""

    base_dir: str

    # ----------------------------------------------------------------- paths
    def _stem(self, context: dg.OutputContext | dg.InputContext, partition_key: str | None) -> Path:
        if context.has_asset_key:
            parts = list(context.asset_key.path)
        elif isinstance(context, dg.InputContext) and context.upstream_output is not None:
            parts = list(context.upstream_output.get_identifier())
        else:
            parts = list(context.get_identifier())
        stem = Path(self.base_dir).joinpath(*parts)
        return stem / _encode_partition(partition_key) if partition_key is not None else stem

    @staticmethod
    def _existing(stem: Path) -> Path:
        for suffix in (PARQUET, PICKLE):
            path = stem.with_name(stem.name + suffix)
            if path.exists():
                return path
        raise FileNotFoundError(f"no stored value at {stem}{PARQUET} or {stem}{PICKLE}")

    # ----------------------------------------------------------------- output
    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        """Write ``obj`` (Parquet for polars frames, pickle otherwise)."""
        partition = context.asset_partition_key if context.has_asset_partitions else None
        stem = self._stem(context, partition)
        is_frame = isinstance(obj, (pl.DataFrame, pl.LazyFrame))
        target = stem.with_name(stem.name + (PARQUET if is_frame else PICKLE))
        if isinstance(obj, pl.DataFrame):
            _atomic_write(target, obj.write_parquet)
        elif isinstance(obj, pl.LazyFrame):
            _atomic_write(target, obj.sink_parquet)
        else:
            def _pickle(tmp: str) -> None:
                with open(tmp, "wb") as fh:
                    pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)

            _atomic_write(target, _pickle)
        # Drop a stale file of the other kind so load_input cannot pick up an old value.
        other = stem.with_name(stem.name + (PICKLE if is_frame else PARQUET))
        other.unlink(missing_ok=True)
        metadata: dict[str, Any] = {"path": str(target)}
        if isinstance(obj, pl.DataFrame):
            metadata["rows"] = obj.height
            metadata["columns"] = obj.width
        context.add_output_metadata(metadata)

    # ----------------------------------------------------------------- input
    def _load_one(self, context: dg.InputContext, partition_key: str | None) -> Any:
        path = self._existing(self._stem(context, partition_key))
        if path.suffix == PICKLE:
            with open(path, "rb") as fh:
                return pickle.load(fh)
        wants_lazy = getattr(context.dagster_type, "typing_type", None) is pl.LazyFrame
        return pl.scan_parquet(path) if wants_lazy else pl.read_parquet(path)

    def load_input(self, context: dg.InputContext) -> Any:
        """Read the stored value; several partitions come back as ``{partition_key: value}``."""
        if not context.has_asset_partitions:
            return self._load_one(context, None)
        keys = list(context.asset_partition_keys)
        if len(keys) == 1:
            return self._load_one(context, keys[0])
        return {key: self._load_one(context, key) for key in keys}
