"""The IO manager of the asset values: polars frames as Parquet, other values as JSON, on any fsspec storage
(Dagster's ``UPathIOManager``; dagster-polars does not support polars 2.x). Nothing is pickled.

``base_dir`` is a local folder or an fsspec URL (``s3://bucket/som``, ``memory://som`` …; the protocol's fsspec
package must be installed). Layout under it:

* unpartitioned asset ``a/b``           → ``{base_dir}/a/b.parquet`` (or ``.json``)
* partitioned asset, partition ``k``    → ``{base_dir}/a/b/{k}.parquet`` (or ``.json``)

polars DataFrames (and LazyFrames, streamed with ``sink_parquet`` on local disk) are written as Parquet; a
value that JSON represents exactly (``json.loads(json.dumps(v)) == v``: dicts with string keys, lists, str,
numbers without NaN) as JSON; any other value is refused (:class:`UnstorableValue`, naming the asset and the
type): stored values stay readable and auditable without the code that wrote them, and loading one never runs code
(unpickling does — a concern for shared or object storage). A ``.pkl`` an older version left is refused on load
with the advice to rematerialise the asset. Partition keys are percent-encoded into one path
segment, so ``/``, ``|`` (multi-partition keys) or ``..`` cannot escape the folder. On local disk writes go to
a temporary file in the target folder and are moved into place with ``os.replace``, so readers never see
half-written files; object stores write each object whole. Writing one kind removes a stale file of another
kind. Inputs annotated as ``pl.LazyFrame`` are scanned lazily (on local disk); a load spanning several
partitions returns ``{partition_key: value}``. The output metadata ``path`` is the file written.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
import polars as pl

PARQUET, JSON, PICKLE = ".parquet", ".json", ".pkl"
SUFFIXES = (PARQUET, JSON)


class UnstorableValue(TypeError):
    """An asset value that is neither a polars frame nor a value JSON holds exactly."""


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


def _suffix(obj: Any) -> str | None:
    """``.parquet`` for polars frames, ``.json`` for values JSON holds exactly, else None (not storable)."""
    if isinstance(obj, (pl.DataFrame, pl.LazyFrame)):
        return PARQUET
    return JSON if _json_exact(obj) is not None else None


def _with_suffix(path: Any, suffix: str) -> Any:
    return path.with_name(path.name + suffix)


def _is_local(path: Any) -> bool:
    return getattr(path, "protocol", "") in ("", "file", "local")


def _atomic_local_write(target: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and move the temp file onto ``target`` atomically (:func:`pipeline.atomic.write_atomic`)."""
    from pipeline.atomic import write_atomic

    write_atomic(target, lambda tmp: write(str(tmp)))


class PolarsUPathIOManager(dg.UPathIOManager):
    """Parquet for polars frames, JSON for other values, under a ``UPath`` base (nothing pickled)."""

    extension = None  # chosen per value (see the module docstring)

    def make_safe_partition_path(self, base_path: Any, partition: str) -> Any:
        return base_path / _encode_partition(partition)

    # ----------------------------------------------------------------- output
    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: Any) -> None:
        suffix = _suffix(obj)
        if suffix is None:
            raise UnstorableValue(
                f"asset {context.asset_key.to_user_string()}: a {type(obj).__name__} value cannot be stored (the IO "
                "manager stores polars frames as Parquet and plain JSON values — dicts with text keys, lists, text, "
                "finite numbers, booleans, null — exactly; convert tuples, dates or NaN before returning)")
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
            data = _json_exact(obj)
            assert data is not None
            if local is not None:
                _atomic_local_write(local, lambda tmp: Path(tmp).write_bytes(data))
            else:
                target.write_bytes(data)
        for other in (*SUFFIXES, PICKLE):  # a stale value of another kind must not be loaded later
            stale = _with_suffix(path, other)
            if other != suffix and stale.exists():
                stale.unlink()

    def get_metadata(self, context: dg.OutputContext, obj: Any) -> dict[str, Any]:
        suffix = _suffix(obj) if obj is not None else None
        if suffix is None:
            return {}
        return {"path": dg.MetadataValue.path(str(_with_suffix(self._output_path(context), suffix)))}

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
            return json.loads(target.read_bytes())
        if _with_suffix(path, PICKLE).exists():
            raise UnstorableValue(f"{_with_suffix(path, PICKLE)}: a pickled value left by an older version is not "
                                  "loaded (unpickling runs code); rematerialise the asset")
        raise FileNotFoundError(f"no stored value at {path} ({', '.join(SUFFIXES)})")


class PolarsParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Asset values under ``base_dir`` (a folder or an fsspec URL, e.g. ``s3://bucket/som`` or ``memory://som``)."""

    base_dir: str

    def create_io_manager(self, context: dg.InitResourceContext) -> PolarsUPathIOManager:
        from upath import UPath

        return PolarsUPathIOManager(base_path=UPath(self.base_dir))
