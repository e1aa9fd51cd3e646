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
