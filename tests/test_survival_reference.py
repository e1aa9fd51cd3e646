"""Kaplan–Meier and Cox fits against R survival's printed output (tests/reference/survival_r/SOURCE.md).

Each expected number is a string exactly as R printed it; the check allows half a unit of its last digit.
"""

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from som_models.estimators.survival import cox_ph, kaplan_meier

REF = Path(__file__).parent / "reference" / "survival_r"


def _load(name: str) -> pl.DataFrame:
    path = REF / name
    prov = {p["csv"]: p for p in json.loads((REF / "PROVENANCE.json").read_text())}
    assert hashlib.sha256(path.read_bytes()).hexdigest() == prov[name]["csv_sha256"]
    return pl.read_csv(path)


def _printed(got: float, text: str) -> None:
    """``got`` equals the number R printed as ``text`` to the printed precision (half a unit of the last digit)."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    assert abs(got - float(text)) <= 0.5 * 10 ** -decimals + 1e-12, (got, text)


def _check(fit, coef: list[str], se: list[str], robust_se: list[str] | None = None) -> None:
    for k in range(len(coef)):
        _printed(float(fit.coef[k]), coef[k])
        _printed(float(fit.se_model[k]), se[k])
        if robust_se:
            _printed(float(fit.se[k]), robust_se[k])


@pytest.fixture(scope="module")
def ovarian():
    return _load("ovarian.csv")


@pytest.fixture(scope="module")
def aml():
    return _load("aml.csv").with_columns((pl.col("x") == "Nonmaintained").cast(pl.Int64).alias("nonmaintained"))


def test_ovarian_single_and_multiple_covariates(ovarian):
    # tests/ovarian.Rout.save
    fit = cox_ph(ovarian, time_col="futime", event_col="fustat", covariates=["age"])
    _check(fit, ["0.16162"], ["0.04974"])
    _printed(fit.tests["likelihood_ratio"][0], "14.29")
    fit = cox_ph(ovarian, time_col="futime", event_col="fustat", covariates=["age", "rx", "ecog_ps"])
    _check(fit, ["0.1470", "-0.8146", "0.1032"], ["0.0463", "0.6342", "0.6064"])
    _printed(fit.tests["likelihood_ratio"][0], "15.92")
    fit = cox_ph(ovarian, time_col="futime", event_col="fustat", covariates=["resid_ds", "rx", "ecog_ps"])
    _check(fit, ["1.3466", "-0.7493", "0.4528"], ["0.6803", "0.5949", "0.5903"])
    _printed(fit.tests["likelihood_ratio"][0], "6.03")
    assert fit.converged and not fit.robust


def test_ovarian_stratified_model_and_its_three_tests(ovarian):
    # tests/ovarian.Rout.save: summary(coxph(Surv(futime, fustat) ~ age + ecog.ps + strata(rx)))
    fit = cox_ph(ovarian, time_col="futime", event_col="fustat", covariates=["age", "ecog_ps"], strata_col="rx")
    _check(fit, ["0.13853", "-0.09670"], ["0.04801", "0.62994"])
    for test, value in (("likelihood_ratio", "12.71"), ("wald", "8.43"), ("score", "12.24")):
        _printed(fit.tests[test][0], value)
        assert fit.tests[test][1] == 2
    assert fit.n_strata == 2 and fit.n_events == 12


def test_ovarian_kaplan_meier_log_intervals(ovarian):
    # tests/ovarian.Rout.save: summary(survfit(Surv(futime, fustat) ~ 1), censor = TRUE), event rows
    km = kaplan_meier(ovarian, time_col="futime", event_col="fustat")
    rows = km.table.filter(pl.col("n_event") > 0)
    expected = [  # time, n.risk, survival, std.err, lower, upper
        (59, 26, "0.962", "0.0377", "0.890", "1.000"), (268, 23, "0.846", "0.0708", "0.718", "0.997"),
        (365, 20, "0.731", "0.0870", "0.579", "0.923"), (431, 17, "0.688", "0.0919", "0.529", "0.894"),
        (475, 14, "0.596", "0.0999", "0.429", "0.828"), (638, 11, "0.497", "0.1051", "0.328", "0.752"),
    ]
    got = {r["time"]: r for r in rows.iter_rows(named=True)}
    for t, n, s, se, lo, hi in expected:
        r = got[float(t)]
        assert r["n_risk"] == n
        for key, text in (("survival", s), ("std_err", se), ("ci_low", lo), ("ci_high", hi)):
            _printed(r[key], text)
    censored_row = km.table.filter(pl.col("time") == 1227).row(0, named=True)
    assert censored_row["n_risk"] == 1 and censored_row["n_censor"] == 1
    _printed(censored_row["survival"], "0.497")
    assert km.medians.row(0, named=True)["median"] == 638  # first time with S ≤ 0.5


def test_aml_breslow_and_efron_ties(aml):
    # tests/doaml.Rout.save
    fit = cox_ph(aml, time_col="time", event_col="status", covariates=["nonmaintained"], ties="breslow")
    _check(fit, ["0.9042"], ["0.5122"])
    _printed(fit.tests["likelihood_ratio"][0], "3.3")
    fit = cox_ph(aml, time_col="time", event_col="status", covariates=["nonmaintained"], ties="efron")
    _check(fit, ["0.9155"], ["0.5119"])
    _printed(fit.tests["likelihood_ratio"][0], "3.38")


def test_aml_kaplan_meier_by_group_and_medians(aml):
    # tests/doaml.Rout.save: survfit(Surv(time, status) ~ x) and its summary
    km = kaplan_meier(aml, time_col="time", event_col="status", group_col="x")
    med = {r["group"]: r for r in km.medians.iter_rows(named=True)}
    assert (med["Maintained"]["n"], med["Maintained"]["events"], med["Maintained"]["median"]) == (11, 7, 31)
    assert med["Maintained"]["ci_low"] == 18 and med["Maintained"]["ci_high"] != med["Maintained"]["ci_high"]  # NA
    assert (med["Nonmaintained"]["n"], med["Nonmaintained"]["events"], med["Nonmaintained"]["median"]) == (12, 11, 23)
    assert med["Nonmaintained"]["ci_low"] == 8
    expected = {  # group: [(time, n.risk, n.event, survival, std.err, lower, upper)]
        "Maintained": [(9, 11, 1, "0.909", "0.0867", "0.7541", "1.000"), (18, 8, 1, "0.716", "0.1397", "0.4884", "1.000"),
                       (23, 7, 1, "0.614", "0.1526", "0.3769", "0.999"), (48, 2, 1, "0.184", "0.1535", "0.0359", "0.944")],
        "Nonmaintained": [(5, 12, 2, "0.8333", "0.1076", "0.6470", "1.000"), (8, 10, 2, "0.6667", "0.1361", "0.4468", "0.995"),
                          (23, 6, 1, "0.4861", "0.1481", "0.2675", "0.883"), (43, 2, 1, "0.0972", "0.0919", "0.0153", "0.620")],
    }
    for group, rows in expected.items():
        curve = {r["time"]: r for r in km.table.filter(pl.col("group") == group).iter_rows(named=True)}
        for t, n, d, s, se, lo, hi in rows:
            r = curve[float(t)]
            assert (r["n_risk"], r["n_event"]) == (n, d)
            for key, text in (("survival", s), ("std_err", se), ("ci_low", lo), ("ci_high", hi)):
                _printed(r[key], text)
    last = km.table.filter((pl.col("group") == "Nonmaintained") & (pl.col("time") == 45)).row(0, named=True)
    assert last["survival"] == 0 and last["std_err"] != last["std_err"]  # R: 0.0000, NaN


def test_stanford_heart_time_varying_transplant_kalbfleisch_prentice():
    # tests/jasa.Rout.save: the Kalbfleisch & Prentice models, counting-process data, Breslow ties
    jasa1 = _load("jasa1.csv").with_columns((pl.col("age") * pl.col("transplant")).alias("age_tx"),
                                            (pl.col("surgery") * pl.col("transplant")).alias("surgery_tx"))
    fit = cox_ph(jasa1, start_col="start", time_col="stop", event_col="event", ties="breslow",
                 covariates=["age", "surgery", "transplant", "age_tx", "surgery_tx"])
    _check(fit, ["0.01386", "-0.54652", "0.11572", "0.03473", "-0.29037"],
           ["0.01813", "0.61091", "0.32729", "0.02725", "0.75819"])
    for test, value in (("likelihood_ratio", "12.45"), ("wald", "11.62"), ("score", "12.02")):
        _printed(fit.tests[test][0], value)
    assert fit.n == 170 and fit.n_events == 75 and fit.counting_process
    fit = cox_ph(jasa1, start_col="start", time_col="stop", event_col="event", ties="breslow",
                 covariates=["age", "transplant", "surgery", "year", "age_tx"])
    _check(fit, ["0.01527", "0.04457", "-0.62113", "-0.13608", "0.02703"],
           ["0.01750", "0.32171", "0.36786", "0.07090", "0.02714"])
    _printed(fit.tests["likelihood_ratio"][0], "16.06")


def test_bladder_andersen_gill_robust_clustered_by_patient():
    # tests/bladder.Rout.save: summary(coxph(Surv(start, stop, event) ~ rx + size + number, cluster = id, ...))
    fit = cox_ph(_load("bladder2.csv"), start_col="start", time_col="stop", event_col="event", ties="breslow",
                 covariates=["rx", "size", "number"], cluster_col="id")
    assert fit.robust and fit.n_clusters == 85
    _check(fit, ["-0.45979", "-0.04256", "0.17164"], ["0.19996", "0.06903", "0.04733"],
           ["0.25801", "0.07555", "0.06131"])
    for test, value in (("likelihood_ratio", "16.77"), ("wald", "11.76"), ("score", "18.57"), ("robust_score", "11.44")):
        _printed(fit.tests[test][0], value)


def test_diabetic_efron_robust_clustered_by_patient():
    # tests/Examples/survival-Ex.Rout.save, help page of `diabetic`
    data = _load("diabetic.csv").with_columns((pl.col("age") < 20).cast(pl.Int64).alias("juvenile"))
    fit = cox_ph(data, time_col="time", event_col="status", covariates=["trt", "juvenile"], cluster_col="id")
    _check(fit, ["-0.77893", "-0.05388"], ["0.16893", "0.16211"], ["0.14851", "0.17864"])
    _printed(fit.tests["likelihood_ratio"][0], "22.48")
    # the robust and model-based SEs differ, so the robust variance is not the model one in disguise
    assert abs(fit.se[0] - fit.se_model[0]) > 0.01
