"""The IO manager of the asset values: polars frames as Parquet, other values as JSON (or pickle), on any fsspec
storage (Dagster's ``UPathIOManager``; dagster-polars does not support polars 2.x).

``base_dir`` is a local folder or an fsspec URL (``s3://bucket/som``, ``memory://som`` …; the protocol's fsspec
package must be installed). Layout under it:

* unpartitioned asset ``a/b``           → ``{base_dir}/a/b.parquet`` (or ``.json`` / ``.pkl``)
* partitioned asset, partition ``k``    → ``{base_dir}/a/b/{k}.parquet`` (or ``.json`` / ``.pkl``)

polars DataFrames (and LazyFrames, streamed with ``sink_parquet`` on local disk) are written as Parquet; a
value that JSON represents exactly (``json.loads(json.dumps(v)) == v``: dicts with string keys, lists, str,
numbers without NaN) as JSON; anything else is pickled. Partition keys are percent-encoded into one path
segment, so ``/``, ``|`` (multi-partition keys) or ``..`` cannot escape the folder. On local disk writes go to
a temporary file in the target folder and are moved into place with ``os.replace``, so readers never see
half-written files; object stores write each object whole. Writing one kind removes a stale file of another
kind. Inputs annotated as ``pl.LazyFrame`` are scanned lazily (on local disk); a load spanning several
partitions returns ``{partition_key: value}``. The output metadata ``path`` is the file written.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import polars as pl

PARQUET, JSON, PICKLE = ".parquet", ".json", ".pkl"
SUFFIXES = (PARQUET, JSON, PICKLE)


def _encode_partition(key: str) -> str:
    encoded = quote(str(key), safe="")
    return encoded.replace(".", "%2E") if encoded in {"", ".", ".."} else encoded


def _json_exact(obj: Any) -> bytes | None:
    """The JSON bytes of ``obj`` if JSON represents it exactly, else None."""
    try:
        text = json.dumps(obj, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return text.encode("utf-8") if json.loads(text) == obj and type(json.loads(text)) is type(obj) else None


def _suffix(obj: Any) -> str:
    if isinstance(obj, (pl.DataFrame, pl.LazyFrame)):
        return PARQUET
    return JSON if _json_exact(obj) is not None else PICKLE


def _with_suffix(path: Any, suffix: str) -> Any:
    return path.with_name(path.name + suffix)


def _is_local(path: Any) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def _atomic_local_write(target: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the temp file onto ``target`` atomically (:func:`pipeline.atomic.write_atomic`)."""
    from pipeline.atomic import write_atomic

    write_atomic(target, lambda tmp: write(str(tmp)))


class PolarsUPathIOManager(dg.UPathIOManager):
    """Parquet for polars frames, JSON or pickle for other values, under a ``UPath`` base."""

    extension = None  # chosen per value (see the module docstring)

    def make_safe_partition_path(self, base_path: Any, partition: str) -> Any:
        return base_path / _encode_partition(partition)

    # ----------------------------------------------------------------- output
    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: Any) -> None:
        suffix = _suffix(obj)
        target = _with_suffix(path, suffix)
        local = Path(target.path) if _is_local(target) else None
        if isinstance(obj, pl.LazyFrame) and local is None:
            obj = obj.collect()
        if isinstance(obj, pl.DataFrame):
            if local is not None:
                _atomic_local_write(local, obj.write_parquet)
            else:
                buf = io.BytesIO()
                obj.write_parquet(buf)
                target.write_bytes(buf.getvalue())
        elif isinstance(obj, pl.LazyFrame):
            _atomic_local_write(local, obj.sink_parquet)
        else:
            data = _json_exact(obj) if suffix == JSON else pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            if local is not None:
                _atomic_local_write(local, lambda tmp: Path(tmp).write_bytes(data))
            else:
                target.write_bytes(data)
        for other in SUFFIXES:  # a stale value of another kind must not be loaded later
            stale = _with_suffix(path, other)
            if other != suffix and stale.exists():
                stale.unlink()

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        if obj is None:
            return {}
        return {"path": dg.MetadataValue.path(str(_with_suffix(self._output_path(context), _suffix(obj))))}

    def _output_path(self, context: dg.OutputContext) -> Any:
        if context.has_asset_partitions:
            return next(iter(self._get_paths_for_partitions(context).values()))
        return self._get_path(context)

    # ----------------------------------------------------------------- input
    def load_from_path(self, context: dg.InputContext, path: Any) -> Any:
        for suffix in SUFFIXES:
            target = _with_suffix(path, suffix)
            if not target.exists():
                continue
            if suffix == PARQUET:
                wants_lazy = getattr(context.dagster_type, "typing_type", None) is pl.LazyFrame
                if _is_local(target):
                    return pl.scan_parquet(target.path) if wants_lazy else pl.read_parquet(target.path)
                frame = pl.read_parquet(io.BytesIO(target.read_bytes()))
                return frame.lazy() if wants_lazy else frame
            data = target.read_bytes()
            return json.loads(data) if suffix == JSON else pickle.loads(data)
        raise FileNotFoundError(f"no stored value at {path} ({', '.join(SUFFIXES)})")


class PolarsParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Asset values under ``base_dir`` (a folder or an fsspec URL, e.g. ``s3://bucket/som`` or ``memory://som``)."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> PolarsUPathIOManager:
        from upath import UPath

        return PolarsUPathIOManager(base_path=UPath(self.base_dir))
