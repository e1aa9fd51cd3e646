"""The synthetic worlds: realism of the registers, the planted truth, and the potential-outcome machinery."""

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from som_models.simulate import SCENARIOS, simulate, write_delivery
from som_models.simulate.rand import Streams, poisson
from som_models.simulate.spells import union_days_per_year
from som_models.simulate.world import OUTCOMES


@pytest.fixture(scope="module")
def small():
    return simulate("small", 600, 21)


@pytest.fixture(scope="module")
def youth():
    return simulate("youth_crime", 1500, 3)


def test_every_scenario_writes_every_register_of_the_contract():
    for name in SCENARIOS:
        sim = simulate(name, 300 if name != "homelessness" else 200, 1)
        stems = set(sim.stems)
        for y in range(sim.truth["years"][0], sim.truth["years"][1] + 1):
            assert {f"bef{y}12", f"ind{y}", f"lpr_adm{y}", f"kraf{y}"} <= stems, (name, y)
        assert {"dream", "krin", "shelter", "bua", "indsats"} <= stems, name
        assert sim.truth["att_by_event_time"], name
        row = sim.truth["att_by_event_time"][0]
        assert {"event_time", "n_treated"} <= set(row) and len(row) >= 4


def test_simulation_is_deterministic_and_seed_dependent():
    a, b, c = simulate("small", 200, 5), simulate("small", 200, 5), simulate("small", 200, 6)
    assert a.expected.equals(b.expected) and a.truth == b.truth
    assert not a.expected.equals(c.expected)
    assert np.array_equal(a.dream.codes, b.dream.codes)


def test_population_has_births_moves_and_exits(small):
    t = small.truth["population"]
    assert t["born_in_period"] > 0 and t["deaths"] > 0 and t["emigrations"] > 0
    befs = [small.frames[f"bef{y}12"] for y in range(2019, 2023)]
    first, last = set(befs[0]["PNR"]), set(befs[-1]["PNR"])
    assert first - last and last - first  # people leave and arrive
    kom = pl.concat([b.select("PNR", "KOM") for b in befs]).group_by("PNR").agg(pl.col("KOM").n_unique())
    assert kom.filter(pl.col("KOM") > 1).height > 0  # moves between municipalities
    born = befs[-1].filter(pl.col("FOED_DAG") >= dt.date(2020, 1, 1))
    assert born.height > 0 and not set(born["PNR"]) & first  # newborns were not in the first year's BEF


def test_pnrs_are_ten_characters_with_birth_date_and_sex_digit(small):
    bef = small.frames["bef202212"]
    assert bef["PNR"].str.len_chars().unique().to_list() == [10]
    ddmmyy = bef.select(pl.col("FOED_DAG").dt.strftime("%d%m%y")).to_series()
    assert (bef["PNR"].str.slice(0, 6) == ddmmyy).all()
    odd = bef["PNR"].str.slice(9, 1).cast(pl.Int64) % 2 == 1
    assert ((bef["KOEN"] == 1) == odd).all()


def test_registers_have_the_awkward_cases_ingestion_must_handle(small):
    lpr = pl.concat([small.frames[f"lpr_adm{y}"] for y in range(2019, 2023)])
    crossing = lpr.filter(pl.col("D_UDDTO").dt.year() > pl.col("D_INDDTO").dt.year())
    assert crossing.height > 0  # contacts crossing New Year
    assert lpr["D_UDDTO"].is_null().any()  # contacts still open at the end of the period
    assert set(lpr["C_PATTYPE"].unique()) == {0, 1, 2, 3}
    shelter = small.frames["shelter"]
    assert shelter["SLUT_DATO"].is_null().any() and (shelter["SLUT_DATO"] == dt.date(9999, 12, 31)).any()
    assert (shelter["START_DATO"] < dt.date(2019, 1, 1)).any()  # stays begun before the period
    assert (shelter.filter(pl.col("SLUT_DATO").is_not_null() & (pl.col("SLUT_DATO") < dt.date(9999, 1, 1)))
            .select((pl.col("SLUT_DATO").dt.year() > pl.col("START_DATO").dt.year()).any()).item())
    bua = small.frames["bua"]
    assert (bua["SAG_VTIL"] == dt.date(9999, 12, 31)).any() and (bua["SAG_VFRA"] < dt.date(2019, 1, 1)).any()
    kraf = pl.concat([small.frames[f"kraf{y}"] for y in range(2019, 2023)])
    assert (kraf["AFG_AFGTYP3"] >= 900).any() and (kraf["AFG_AFGTYP3"] < 900).any()  # acquittals and convictions
    assert small.frames["indsats"]["ARM"].unique().sort().to_list() == ["C", "T"]


def test_dream_has_priority_overwrite_exit_codes_and_absent_persons(small):
    codes = small.dream.codes
    assert set(np.unique(codes)) >= {0, 701, 783, 651, 890}
    assert np.isin(codes, [997, 998]).any()  # censoring codes after death/emigration
    resident_any = set(small.expected["pnr"])
    assert len(set(small.dream.pnr)) < len(resident_any)  # persons without any benefit are absent from DREAM
    # Priority: where sickness benefit and cash benefit spells would share a week, sickness (higher) wins: a
    # person-year can hold both codes, and a week never holds two — checked via the counts adding up.
    exp = small.expected
    weeks = sum(pl.col(c) for c in [f"{b}_weeks" for b in ("dagpenge", "kontanthjaelp", "ledighedsydelse", "efterloen", "su",
                                                           "foertidspension", "barselsdagpenge", "sygedagpenge", "exit")])
    total = exp.select((weeks + pl.col("self_support_weeks")).alias("t"), "year")
    iso = {2019: 52, 2020: 53, 2021: 52, 2022: 52}
    assert all(r["t"] == iso[r["year"]] for r in total.to_dicts())


def test_priority_overwrite_removes_lower_benefit_weeks():
    from som_models.simulate.registers import dream

    streams = Streams(1)
    spells = {"kontanthjaelp": np.array([[0, 52]]), "sygedagpenge": np.array([[0, 10]])}
    d, out = dream(streams, np.array([0]), np.array([2018, 2019]), spells, counted_years=np.array([2019]))
    assert out["kontanthjaelp_weeks"][0, 0] == 42 and out["sygedagpenge_weeks"][0, 0] == 10
    assert out["self_support_weeks"][0, 0] == 0


def test_truth_has_expected_panel_fingerprints_matching_the_expected_rows(small):
    fp = small.truth["expected_panel"]["by_year"]
    exp = small.expected
    for year, entry in fp.items():
        rows = exp.filter(pl.col("year") == int(year))
        assert entry["person_years"] == rows.height
        for o in OUTCOMES:
            assert entry[o]["sum"] == pytest.approx(float(rows[o].sum()))
            assert entry[o]["nonzero"] == int((rows[o] != 0).sum())


def test_truth_json_has_no_person_numbers(small, tmp_path):
    folder = write_delivery(small, tmp_path / "d")
    text = (folder / "truth.json").read_text()
    assert not any(p in text for p in small.frames["bef202212"]["PNR"].to_list())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["registers"]) == {"bef", "dream", "ind", "lpr", "kraf", "krin", "shelter", "bua", "indsats"}
    assert set(manifest["sha256"]) == set(manifest["files"])


def test_counter_based_draws_give_common_random_numbers():
    s = Streams(9)
    a = s.uniform("x", np.arange(10), 3)
    assert np.array_equal(a, s.uniform("x", np.arange(10), 3)) and not np.array_equal(a, s.uniform("y", np.arange(10), 3))
    assert np.array_equal(a[4:6], s.uniform("x", np.array([4, 5]), 3))  # any block of persons gets the same numbers
    u = s.uniform("p", np.arange(200_000))
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    k = poisson(u, 2.5)
    assert abs(k.mean() - 2.5) < 0.02 and abs(k.var() - 2.5) < 0.05
    assert (poisson(u, 3.0) >= k).all()  # monotone coupling: a higher rate never gives fewer events


def test_union_days_counts_overlaps_once_and_splits_years():
    d = lambda s: np.datetime64(s, "D")  # noqa: E731
    person = np.array([0, 0, 0, 1])
    start = np.array([d("2019-12-30"), d("2019-12-31"), d("2020-03-01"), d("2020-02-27")])
    end = np.array([d("2020-01-03"), d("2020-01-02"), d("2020-03-01"), d("2020-03-02")])
    out = union_days_per_year(person, start, end, np.array([2019, 2020]), 2)
    assert out.tolist() == [[2, 2], [0, 4]]


def test_youth_crime_plants_a_rise_in_convictions(youth):
    rows = youth.truth["att_by_event_time"]
    assert {"no_conviction", "convictions", "prison_days"} <= set(rows[0])
    assert all(r["convictions"] > 0 for r in rows[:5])  # crime rises in the first years
    assert sum(r["no_conviction"] for r in rows[:5]) < 0
    ages = youth.frames["indsats"].join(youth.frames["bef200812"].select("PNR", "FOED_DAG"), on="PNR", how="left")
    start_age = ages.select(pl.col("START_DATO").dt.year() - pl.col("FOED_DAG").dt.year()).to_series().drop_nulls()
    assert start_age.min() >= 12 and start_age.max() <= 17


def test_children_placed_plants_fewer_placement_days():
    sim = simulate("children_placed", 1500, 4)
    rows = sim.truth["att_by_event_time"]
    assert sum(r["placement_days"] for r in rows) < 0 and sum(r["preventive_days"] for r in rows) > 0
    assert {"no_placement", "placement_days", "preventive_days"} <= set(rows[0])


def test_homelessness_target_group_can_be_drawn_from_a_population():
    sim = simulate("homelessness", 1000, 3, target_share=0.25)
    assert sim.truth["population"]["target_group"] == 250 and sim.truth["population"]["background"] == 750
    first = sim.expected.filter(pl.col("year") == 2015)
    assert (first["shelter_nights"] > 0).sum() >= 250  # the target group all had shelter nights in the first year


def test_unknown_scenario_and_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown scenario"):
        simulate("nope", 100, 1)
    with pytest.raises(ValueError, match="persons must be at least 20"):
        simulate("small", 5, 1)
    with pytest.raises(ValueError, match="outside the period"):
        simulate("youth_crime", 200, 1, first_year=2012)


def test_record_numbers_stay_unique_when_duplicates_cross_new_year():
    from som_models.simulate.registers import hospital

    years = np.arange(2018, 2022)
    idx = np.arange(40)
    lam = np.full((40, 4), 4.0)
    zero = np.zeros((40, 4))
    g = hospital(Streams(3), idx, years, somatic=lam, psychiatric=lam, outpatient=zero, emergency=zero, partday=zero,
                 period_end=dt.date(2021, 12, 31), duplicate_share=1.0, psychiatric_los=60.0)
    lpr = g.extra["lpr"]
    starts = lpr["D_INDDTO"].astype("datetime64[Y]")
    assert len(np.unique(lpr["RECNUM"])) == len(lpr["RECNUM"])
    assert (starts.astype(int) + 1970 > 2018).sum() > 0
