"""The fast paths of ingestion give exactly what the plain computations give."""


import numpy as np
import polars as pl

from pipeline.quality.polars_engine import _dup


def test_sorted_hash_candidates_flag_exactly_the_duplicated_rows():
    rng = np.random.default_rng(5)
    for n, k in ((0, 1), (1, 1), (50, 10), (5_000, 4_000), (20_000, 60_000)):
        df = pl.DataFrame({"a": rng.integers(0, k, n).astype(str), "b": rng.integers(0, 3, n),
                           "c": rng.integers(0, k, n)})
        df = df.with_columns(pl.when(pl.col("c") % 7 == 0).then(None).otherwise(pl.col("a")).alias("a"))
        for cols in (["a"], ["c"], ["a", "b"], ["a", "b", "c"]):
            key = pl.col(cols[0]) if len(cols) == 1 else pl.struct(cols)
            got = df.select(_dup([pl.col(c) for c in cols]).alias("d")).get_column("d")
            want = df.select(key.is_duplicated().alias("d")).get_column("d")
            assert got.to_list() == want.to_list(), (n, cols)
            assert n < 50 or want.any()  # the cases do contain duplicates


def test_persons_are_numbered_in_pseudonym_text_order_by_either_sort(monkeypatch):
    import pipeline.registers.panel as panel

    rng = np.random.default_rng(11)
    pnrs = pl.Series("PNR", [f"{x:010d}" for x in rng.integers(0, 10**10, 3_000)] * 2)  # each PNR twice
    persons = panel._Persons(pnrs, b"k" * 32)
    assert persons.person_id.to_list() == sorted(persons.person_id.to_list())  # hex pseudonyms: the 64-bit sort
    assert persons.map.get_column("pid").to_list() == list(range(persons.n)) and persons.n == pnrs.n_unique()
    # pseudonyms that are no 16-digit hex text fall back to sorting the text
    monkeypatch.setattr(panel, "pseudonymise", lambda text, key: text.str.reverse() + "Z")
    odd = panel._Persons(pnrs, b"k" * 32)
    assert odd.person_id.to_list() == sorted(odd.person_id.to_list()) and odd.person_id.str.ends_with("Z").all()


def test_attach_gives_the_eager_join_on_frames_of_many_chunks():
    import pipeline.registers.panel as panel

    pnrs = [f"{x:010d}" for x in range(1_000, 1_600)]
    persons = panel._Persons(pl.Series("PNR", pnrs), b"k" * 32)
    parts = [pl.DataFrame({"PNR": pnrs[i:i + 50], "v": list(range(i, i + 50))}) for i in range(0, 600, 50)]
    df = pl.concat(parts, rechunk=False).with_columns(pl.lit(1).alias("w"))
    want = (df.with_columns(pl.col("PNR").cast(pl.Int64).alias("_k")).drop("PNR").rechunk()
            .join(persons.map, on="_k", how="left", maintain_order="left").drop("_k"))
    assert persons.attach(df, how="left").equals(want)
    assert persons.attach(df).sort("v").equals(want.sort("v"))


def test_grid_rows_and_scatter_follow_the_sorted_person_years():
    import pipeline.registers.panel as panel

    rng = np.random.default_rng(3)
    years = range(2010, 2016)
    cells = rng.choice(40 * len(years), 150, replace=False)  # 150 of the 240 person-years, in random order
    pid, year = (cells // len(years)).astype(np.uint32), (cells % len(years) + years[0]).astype(np.int32)
    grid = panel._Grid(pid, year, 40, years)
    order = np.lexsort((year, pid))
    assert grid.order.tolist() == order.tolist()
    # rows: each present pair → its position in (pid, year) order; absent pairs and years outside → −1
    ask_pid = np.array([pid[order[0]], pid[order[-1]], 0, 0, 39], dtype=np.uint32)
    ask_year = np.array([year[order[0]], year[order[-1]], 2009, 2016, 2012], dtype=np.int32)
    present = {(int(p), int(y)) for p, y in zip(pid, year, strict=True)}
    want = [0, 149, -1, -1, sorted(present).index((39, 2012)) if (39, 2012) in present else -1]
    assert grid.rows(ask_pid, ask_year).tolist() == want
    inside = grid.rows(pid[order], year[order])  # every pair present: the fast path
    assert inside.tolist() == list(range(150))
    # scatter: values land on their rows, 0 elsewhere; pairs outside the panel are dropped
    frame = pl.DataFrame({"pid": np.r_[pid[order[:3]], np.uint32(0)], "year": np.r_[year[order[:3]], np.int32(2030)],
                          "v": [5.0, 6.0, 7.0, 9.0]})
    got = grid.scatter(frame, "v")
    assert got[:3].tolist() == [5, 6, 7] and not got[3:].any() and got.dtype == np.uint8
    whole = grid.scatter(frame.head(3), "v")  # every pair present
    assert whole[:3].tolist() == [5, 6, 7] and not whole[3:].any()


def test_any_coded_equals_the_masked_reduction():
    from pipeline.registers.panel import _any_coded

    rng = np.random.default_rng(8)
    for _ in range(300):
        n = int(rng.integers(0, 60))
        counts = ((rng.random((n, 16)) < rng.random() * 0.2) * rng.integers(1, 54, (n, 16))).astype(np.uint8)
        coded = rng.random(16) < 0.8
        want = counts[:, coded].any(axis=1)
        assert _any_coded(counts, coded).tolist() == want.tolist()  # the 8-byte path
        assert _any_coded(counts.astype(np.uint16), coded).tolist() == want.tolist()  # the general path
