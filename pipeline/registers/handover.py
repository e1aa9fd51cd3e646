"""A handed-over panel as a kind of delivery: the same evaluation graph, checks and report as register data.

An analyst may evaluate on a person-year panel that did not come from Statistics Denmark's registers (a
published trial's data, a municipality's own follow-up): a CSV (``,`` or Danish ``;`` with decimal comma,
UTF-8 or Latin-1) or Parquet file with any column names, plus optionally a treatments file. The panel
becomes a *panel delivery* — a folder with the files and a ``manifest.json`` of ``kind: panel`` — and from
there follows the one evaluation path: the ``delivery`` asset hashes it, the ``registers`` asset builds the
canonical panel with :func:`build_handover` instead of the register readers, and every downstream asset,
check and the report are the same.

Canonical columns: ``columns`` maps ``person_id``, ``year``, ``start_year`` and ``arm`` to the file's names.
Without a treatments file the panel carries the first treatment year itself (0, negative or empty = never
treated; constant within a person). ``arm`` (optional; read when mapped or when a column of that name exists)
is the randomised arm of a trial, as in the intervention register's ``ARM``: ``T`` (intervention) or ``C``
(control); ``1``/``0`` and ``true``/``false`` are read as ``T``/``C``. Person ids are pseudonymised with the
keyed HMAC of the register path, so an id that happens to be a person number never reaches storage.

A delivery's manifest may say at which level the intervention was assigned (``"assigned_by": "municipality"``,
a panel column): :func:`assignment_level` reads it, and the evaluation clusters its standard errors there by
default (``docs/evaluation-spec.md``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl

from pipeline.registers.files import VINTAGE_PATTERN, DeliveryError, Manifest, check_vintage  # noqa: F401 (re-exported)

CANONICAL = ("person_id", "year", "start_year")
#: how the values of a handed-over arm column are read (text is compared case-insensitively)
ARM_VALUES = {"t": "T", "c": "C", "1": "T", "0": "C", "1.0": "T", "0.0": "C", "true": "T", "false": "C"}


def read_frame(path: Path, what: str, text_columns: tuple[str, ...] = ()) -> pl.DataFrame:
    """A CSV (``,``, or ``;`` with decimal comma; UTF-8 or Latin-1) or Parquet file as a frame.

    ``text_columns`` of a CSV are read as text (an id such as ``0101801234`` keeps its leading zero)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DeliveryError(f"{what} {path}: file not found")
    if suffix not in (".parquet", ".csv"):
        raise DeliveryError(f"{what} {path.name}: unsupported file type {suffix!r} (use .parquet or .csv)")
    try:
        if suffix == ".parquet":
            return pl.read_parquet(path)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        first = text.split("\n", 1)[0]
        sep = ";" if first.count(";") > first.count(",") else ","
        header = pl.read_csv(text.encode("utf-8"), separator=sep, n_rows=0).columns
        return pl.read_csv(text.encode("utf-8"), separator=sep, decimal_comma=(sep == ";"), infer_schema_length=10000,
                           schema_overrides={c: pl.Utf8 for c in text_columns if c in header} or None)
    except Exception as exc:  # polars raises several error types; name the file, not the data
        raise DeliveryError(f"{what} {path.name}: cannot be read ({type(exc).__name__})") from None


def _arm(frame: pl.DataFrame, col: str, what: str) -> pl.Expr:
    """The arm column as ``T``/``C`` text (see :data:`ARM_VALUES`); an unreadable value is an error naming the
    file, the column, how many rows have it and the first rows (never the value)."""
    text = frame.get_column(col).cast(pl.Utf8).str.strip_chars().str.to_lowercase()
    bad = text.is_not_null() & ~text.is_in(list(ARM_VALUES))
    if bad.any():
        rows = bad.arg_true().head(5).to_list()
        raise DeliveryError(f"{what}: column {col!r} (arm) must be T/C or 1/0; {int(bad.sum())} row(s) hold other "
                            f"values (rule arm-values; rows {rows})")
    return pl.col(col).cast(pl.Utf8).str.strip_chars().str.to_lowercase().replace_strict(
        ARM_VALUES, default=None, return_dtype=pl.Utf8).alias("arm")


def read_panel(panel_path: Path, treatments_path: Path | None,
               columns: Mapping[str, str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The panel (``person_id`` as text, ``year`` as int, other columns as given) and the treatments
    (``person_id``, ``start_year``, and ``arm`` when the data have one; never-treated persons dropped), with the
    file's columns mapped."""
    columns = dict(columns or {})
    pid, year, start = (columns.get(c, c) for c in CANONICAL)
    arm = columns.get("arm", "arm")
    panel = read_frame(panel_path, "panel", (pid,))
    name = Path(panel_path).name
    for col, role in ((pid, "person_id"), (year, "year")):
        if col not in panel.columns:
            raise DeliveryError(f"panel {name}: column {col!r} ({role}) not found; has {', '.join(panel.columns)}")
    if treatments_path is not None:
        tr = read_frame(treatments_path, "treatments", (pid,))
        for col, role in ((pid, "person_id"), (start, "start_year")):
            if col not in tr.columns:
                raise DeliveryError(f"treatments {Path(treatments_path).name}: column {col!r} ({role}) not found; "
                                    f"has {', '.join(tr.columns)}")
        if "arm" in columns and arm not in tr.columns:
            raise DeliveryError(f"treatments {Path(treatments_path).name}: column {arm!r} (arm) not found; "
                                f"has {', '.join(tr.columns)}")
        what = f"treatments {Path(treatments_path).name}"
        treatments = tr.select(pl.col(pid).cast(pl.Utf8).alias("person_id"), pl.col(start).alias("start_year"),
                               *([_arm(tr, arm, what)] if arm in tr.columns else []))
    else:
        if start not in panel.columns:
            raise DeliveryError(f"panel {name}: no treatments file and no column {start!r} (start_year) in the panel")
        if "arm" in columns and arm not in panel.columns:
            raise DeliveryError(f"panel {name}: column {arm!r} (arm) not found; has {', '.join(panel.columns)}")
        with_arm = arm in panel.columns and arm not in (pid, year, start)
        treatments = panel.select(pl.col(pid).cast(pl.Utf8).alias("person_id"), pl.col(start).alias("start_year"),
                                  *([_arm(panel, arm, f"panel {name}")] if with_arm else []))
        for col, role in ((start, "start_year"), *([(arm, "arm")] if with_arm else [])):
            canonical = "arm" if role == "arm" else "start_year"
            varying = treatments.group_by("person_id").agg(pl.col(canonical).n_unique().alias("n")).filter(pl.col("n") > 1)
            if varying.height:
                raise DeliveryError(f"panel {name}: column {col!r} ({role}) varies within {varying.height} person(s)")
        treatments = treatments.unique("person_id", keep="first", maintain_order=True)
    try:
        treatments = treatments.with_columns(pl.col("start_year").cast(pl.Int64, strict=True))
    except Exception:
        raise DeliveryError(f"column {start!r} (start_year) is not an integer year") from None
    treatments = treatments.filter(pl.col("start_year").is_not_null() & (pl.col("start_year") > 0))
    drop = [start] if treatments_path is None and start not in (pid, year) else []
    if treatments_path is None and "arm" in treatments.columns:
        drop.append(arm)
    panel = panel.drop(drop).rename({k: v for k, v in {pid: "person_id", year: "year"}.items() if k != v})
    try:
        panel = panel.with_columns(pl.col("person_id").cast(pl.Utf8), pl.col("year").cast(pl.Int64, strict=True))
    except Exception:
        raise DeliveryError(f"panel {name}: column {year!r} (year) is not an integer year") from None
    bad_years = panel.filter(pl.col("year").is_null()).height
    if bad_years:
        raise DeliveryError(f"panel {name}: column {year!r} (year) is empty in {bad_years} row(s)")
    return panel, treatments


def default_vintage(panel_path: Path) -> str:
    """The vintage label of a handed-over panel when none is given: its file name without the suffix."""
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(panel_path).stem).strip("-._")[:64]
    return label or "panel"


def write_panel_delivery(panel_path: Path, treatments_path: Path | None, *, vintage: str,
                         columns: Mapping[str, str] | None, root: Path,
                         check: Callable[[pl.DataFrame], object] | None = None) -> Path:
    """Stage a handed-over panel as a panel delivery under ``root`` and return its folder.

    The folder name and manifest depend only on the files' bytes, the column map and the vintage, so
    handing over the same data again stages the same delivery (same data hash, no new parameter version).
    The files are checked first (:func:`read_panel`, then ``check(panel)`` — e.g. that the evaluation's outcome
    columns are there); the folder is written atomically.
    """
    from pipeline.hashing import file_sha256

    check_vintage(vintage)
    panel_path = Path(panel_path)
    panel, _ = read_panel(panel_path, treatments_path, columns)
    if check is not None:
        check(panel)
    years = panel.get_column("year")
    files = {"panel" + panel_path.suffix.lower(): panel_path}
    if treatments_path is not None:
        files["treatments" + Path(treatments_path).suffix.lower()] = Path(treatments_path)
    sha = {name: file_sha256(src) for name, src in files.items()}
    names = list(files)
    manifest = {
        "kind": "panel", "vintage": vintage,
        "period_start": dt.date(int(years.min()), 1, 1).isoformat(),
        "period_end": dt.date(int(years.max()), 12, 31).isoformat(),
        "files": names, "sha256": sha,
        "handover": {"panel": names[0], "treatments": names[1] if len(names) > 1 else None,
                     "columns": dict(columns or {}), "source": {n: p.name for n, p in files.items()}},
    }
    text = json.dumps(manifest, indent=2, sort_keys=True)
    folder = Path(root) / f"{vintage}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if (folder / "manifest.json").is_file() and (folder / "manifest.json").read_text(encoding="utf-8") == text:
        return folder
    from pipeline.atomic import atomic_dir

    with atomic_dir(folder) as staging:
        for name, src in files.items():
            shutil.copyfile(src, staging / name)
        (staging / "manifest.json").write_text(text, encoding="utf-8")
    return folder


def assignment_level(folder: Path) -> str | None:
    """The level at which the intervention was assigned, as the delivery's ``manifest.json`` says it
    (``"assigned_by": "municipality"`` — a column of the canonical panel), or None when it does not say."""
    path = Path(folder) / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DeliveryError(f"{path}: cannot be read as JSON") from None
    level = doc.get("assigned_by") if isinstance(doc, dict) else None
    if level is not None and (not isinstance(level, str) or not level.strip()):
        raise DeliveryError(f"{path}: 'assigned_by' must name a panel column such as municipality (got {level!r})")
    return level


def build_handover(manifest: Manifest, key: bytes):
    """The :class:`~pipeline.registers.panel.PanelBuild` of a panel delivery: the handed-over panel with
    pseudonymised ``person_id`` and its treatments (``person_id``, ``start_year``)."""
    from pipeline.registers.panel import PanelBuild
    from pipeline.registers.pseudonym import pseudonymise

    h = manifest.handover
    treat_file = h.get("treatments")
    panel, treatments = read_panel(manifest.folder / h["panel"], manifest.folder / treat_file if treat_file else None,
                                   h.get("columns") or {})
    panel = panel.with_columns(pseudonymise(panel.get_column("person_id"), key).alias("person_id"))
    treatments = treatments.with_columns(pseudonymise(treatments.get_column("person_id"), key).alias("person_id"))
    outcomes = tuple(c for c, t in panel.schema.items() if c not in ("person_id", "year") and t.is_numeric())
    return PanelBuild(panel.sort("person_id", "year"), treatments, {"panel": panel.height, "treatments": treatments.height},
                      outcomes=outcomes)
