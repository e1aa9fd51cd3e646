"""Named worlds built on :mod:`world`: youth crime (MST-like), children placed out of home, and a small test world.

All values are illustrative placeholders chosen to produce register patterns of a plausible shape; none is
an estimate from Danish data. The stories they plant:

* ``youth_crime`` — an MST-like family therapy for 12–17-year-olds with high crime risk, rolled out by
  municipality (as MST was in Aarhus, Herning and Aalborg, 2007–2011). The business case assumed a large
  crime reduction; in the world the intervention *raises* court decisions for all participants (e.g. closer
  contact with the authorities) by 60 % in the start year, decaying by 15 % a year, and only a minority of
  responders offsets part of it — so convictions and prison days rise, as the register follow-up of MST in
  Denmark found (KORA 2017, shared/research/domain.md §7).
* ``children_placed`` — children at risk of placement; a family-based programme rolled out by municipality
  lowers responders' placement starts by half and shortens placements, with more preventive support.
* ``youth_behaviour`` — SØM's own example of silo-breaking: the children-and-youth administration (børne- og
  ungeudvalget) pays for an MST-like intervention for 13–17-year-olds with externalising behaviour; responders
  commit fewer offences, are admitted to psychiatric wards less and are placed out of home less while still
  children, and as adults they draw fewer
  weeks of kontanthjælp and are more often in work — gains that fall mainly to the employment administration
  (beskæftigelsesudvalget), the state (courts, prisons, income tax) and the kommune's tax base. The delivery
  period (2008–2021) follows the 2011–2012 cohorts for 9–10 years, until ages ~23–26, so the adult outcomes are observed.
* ``small`` — a few hundred persons over four years with a randomised trial (ARM T/C), every register
  populated; for fast tests of ingestion.
"""

from __future__ import annotations

from som_models.simulate.delivery import SimulatedDelivery
from som_models.simulate.homelessness import MUNICIPALITIES as KOMMUNER
from som_models.simulate.world import Effect, Profile, WorldSpec, simulate_world

_ADULT_BENEFITS = (("su", 0.25, 40.0), ("kontanthjaelp", 0.25, 26.0), ("dagpenge", 0.05, 14.0), ("sygedagpenge", 0.12, 10.0),
                   ("barselsdagpenge", 0.02, 30.0), ("ledighedsydelse", 0.02, 20.0), ("efterloen", 0.2, 52.0),
                   ("foertidspension", 0.02, 0.0))

YOUTH_CRIME = WorldSpec(
    scenario="youth_crime",
    intervention="MST",
    description="MST-like family therapy for 12-17-year-olds with high crime risk; crime rises instead of falling",
    first_year=2005,
    last_year=2016,
    target=Profile(birth_years=(1991, 1996), male_share=0.8, heterogeneity=3.0, crime=0.55, somatic=0.05,
                   psychiatric=0.03, outpatient=0.5, emergency=0.25, shelter=0.01, placement=0.03, placement_days=400.0,
                   placed_at_start=0.05, preventive=0.5, benefits=_ADULT_BENEFITS, employment=0.5, wage=220_000.0),
    design="staggered",
    rollout=((751, 2008), (657, 2009), (851, 2010), (461, 2010)),
    participation=0.7,
    eligible_ages=(12, 17),
    course_days=150,
    success_rate=0.3,
    effects=(Effect("crime", 0.6, 0.85, "participants"), Effect("crime", -0.2, 0.85, "responders")),
    success=("no_conviction", "convictions", "zero"),
    planted=("convictions", "prison_days"),
    mortality=0.002,
    emigration=0.004,
    immigration=0.02,
    move=0.03,
    notes=("Crime intensity of participants × (1 + 0.6·0.85^e) (all participants) and × (1 − 0.2·0.85^e) for responders "
           "(30 % of participants): convictions rise on average.",),
)

CHILDREN_PLACED = WorldSpec(
    scenario="children_placed",
    intervention="FAMILY_FIRST",
    description="children at risk of placement; a family-based programme lowers placements and adds preventive support",
    first_year=2012,
    last_year=2022,
    target=Profile(birth_years=(2000, 2012), male_share=0.55, heterogeneity=1.5, crime=0.1, psychiatric=0.02,
                   placement=0.06, placement_days=700.0, placed_at_start=0.3, preventive=0.6, emergency=0.2,
                   benefits=_ADULT_BENEFITS, employment=0.5, wage=220_000.0),
    design="staggered",
    rollout=((101, 2015), (461, 2016), (751, 2017), (561, 2018)),
    participation=0.7,
    eligible_ages=(0, 15),
    course_days=365,
    success_rate=0.4,
    effects=(Effect("placement", -0.5, 0.9, "responders"), Effect("placement_duration", -0.3, 1.0, "responders"),
             Effect("preventive", 0.4, 0.8, "participants")),
    success=("no_placement", "placement_days", "zero"),
    planted=("placement_days", "preventive_days"),
    mortality=0.0005,
    emigration=0.004,
    immigration=0.02,
    move=0.05,
    notes=("Responders (40 % of participants): placement starts × (1 − 0.5·0.9^e) and placement lengths × 0.7; "
           "all participants: preventive measures × (1 + 0.4·0.8^e).",),
)

#: the youth roll-out: 30 of the 98 kommuner adopt, 15 in 2011 and 15 in 2012 (every 3rd kommune, a deterministic
#: choice; enough treated clusters for inference at the level of assignment — docs/evaluation-spec.md, Few clusters)
YOUTH_ROLLOUT = tuple((k, 2011 + (i % 2)) for i, k in enumerate(KOMMUNER[1::3][:30]))

YOUTH_BEHAVIOUR = WorldSpec(
    scenario="youth_behaviour",
    intervention="MST_UNGE",
    description="MST-like intervention for 13-17-year-olds with externalising behaviour, paid by the children-and-youth "
                "administration; fewer convictions and placements, and as adults fewer kontanthjaelp weeks and more work",
    first_year=2008,
    last_year=2021,
    target=Profile(birth_years=(1995, 1998), male_share=0.75, heterogeneity=2.0, crime=1.2, somatic=0.05,
                   psychiatric=0.12, outpatient=0.5, emergency=0.25, shelter=0.005, placement=0.06, placement_days=400.0,
                   placed_at_start=0.05, preventive=0.5,
                   benefits=(("su", 0.2, 40.0), ("kontanthjaelp", 0.35, 30.0), ("dagpenge", 0.05, 14.0),
                             ("sygedagpenge", 0.08, 10.0), ("barselsdagpenge", 0.02, 30.0),
                             ("ledighedsydelse", 0.01, 20.0), ("foertidspension", 0.005, 0.0)),
                   employment=0.45, wage=240_000.0),
    design="staggered",
    rollout=YOUTH_ROLLOUT,
    participation=0.7,
    eligible_ages=(13, 17),
    course_days=240,
    cost_per_participant=(120_000.0, 4.0),
    success_rate=0.5,
    effects=(Effect("crime", -0.8, 0.95, "responders"), Effect("placement", -0.5, 1.0, "responders"),
             Effect("psychiatric", -0.5, 1.0, "responders"),
             Effect("kontanthjaelp", -0.5, 1.0, "responders"), Effect("employment", 0.4, 1.0, "responders")),
    success=("no_conviction", "convictions", "zero"),
    planted=("convictions", "prison_days", "placement_days", "psychiatric_bed_days", "kontanthjaelp_weeks", "earnings_dkk"),
    mortality=0.001,
    emigration=0.003,
    immigration=0.0,
    move=0.03,
    municipalities=KOMMUNER,
    notes=("Responders (50 % of participants): offence intensity × (1 − 0.8·0.95^e), placement starts × 0.5 while "
           "under 18, psychiatric admissions × 0.5, and — once adult (kontanthjælp from 18, wage income from 18) — "
           "kontanthjælp spell probability × 0.5 and the probability of wage income × 1.4 (capped at 0.98), from the "
           "start year on. Participants are 13-17 in their start year (every birth year 1995-1998 is eligible in both "
           "roll-out years, so treated and never-treated youths have the same ages: parallel trends hold for the "
           "age-steep adult outcomes).",),
)

SMALL = WorldSpec(
    scenario="small",
    intervention="SMALL_TRIAL",
    description="a few hundred persons over four years, a randomised trial, every register populated (for tests)",
    first_year=2019,
    last_year=2022,
    target=Profile(birth_years=(1960, 2000), male_share=0.65, heterogeneity=1.5, crime=0.3, somatic=0.3,
                   psychiatric=0.3, outpatient=1.0, emergency=0.5, shelter=0.5, shelter_nights=90.0,
                   benefits=_ADULT_BENEFITS, employment=0.4, wage=250_000.0),
    background=Profile(birth_years=(1950, 2022), crime=0.1, psychiatric=0.05, shelter=0.02, placement=0.05,
                       placed_at_start=0.1, preventive=0.3),
    target_share=0.4,
    design="randomised",
    randomisation=(2020,),
    participation=0.8,
    eligible_ages=(18, 70),
    course_days=300,
    success_rate=0.5,
    effects=(Effect("shelter", -0.6, 0.9, "responders"), Effect("psychiatric", -0.4, 0.9, "responders")),
    success=("no_shelter_stay", "shelter_nights", "zero"),
    planted=("shelter_nights", "psychiatric_bed_days"),
    mortality=0.01,
    emigration=0.01,
    immigration=0.05,
    move=0.05,
)


def simulate_youth_crime(persons: int, seed: int, world: WorldSpec = YOUTH_CRIME, **kw) -> SimulatedDelivery:
    """The youth-crime world (MST-like; planted: convictions and prison days rise). See :data:`YOUTH_CRIME`."""
    return simulate_world(world, persons, seed, **kw)


def simulate_children_placed(persons: int, seed: int, world: WorldSpec = CHILDREN_PLACED, **kw) -> SimulatedDelivery:
    """The children-placed world (planted: fewer placement days, more preventive days). See :data:`CHILDREN_PLACED`."""
    return simulate_world(world, persons, seed, **kw)


def simulate_small(persons: int, seed: int, world: WorldSpec = SMALL, **kw) -> SimulatedDelivery:
    """A tiny randomised world with every register populated (for tests). See :data:`SMALL`."""
    return simulate_world(world, persons, seed, **kw)


def simulate_youth_behaviour(persons: int, seed: int, world: WorldSpec = YOUTH_BEHAVIOUR, **kw) -> SimulatedDelivery:
    """The youth-behaviour world (SØM's silo example; planted: fewer convictions, prison days and placement days,
    fewer kontanthjælp weeks and higher earnings as adults). See :data:`YOUTH_BEHAVIOUR`."""
    return simulate_world(world, persons, seed, **kw)
