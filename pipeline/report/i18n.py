"""The report's message catalogue: Danish (the default) and English, one entry per text, no second template.

``MESSAGES[key] = (da, en)``; :func:`translator` returns ``t(key, **fields)`` for one language, which formats the
entry with ``str.format`` and raises ``KeyError`` for a key the catalogue lacks (a typo fails the render, it
never prints a key). :data:`GLOSSARY` holds the Danish terms a reader meets in the report with an explanation in
both languages; :func:`number` writes numbers the way each language does (Danish ``1.234.567,8``).

Terms follow the Danish public-finance usage of SØM (Socialstyrelsen's *Den Socialøkonomiske Investeringsmodel*)
and the Finance Ministry's discounting guidance (Finansministeriet, *Vejledning i samfundsøkonomiske
konsekvensvurderinger*, 2017, updated 2021).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LANGUAGES = ("da", "en")
DEFAULT_LANGUAGE = "da"

MESSAGES: dict[str, tuple[str, str]] = {
    # header
    "doc_title": ("{title} — revisionsrapport", "{title} — audit report"),
    "intro": ("Evaluering {evaluation} af indsatsen {intervention} (parameterversion {version}) på registerleverancen "
              "{vintage}. Dannet {generated}.",
              "Evaluation {evaluation} of intervention {intervention} (parameter version {version}) on register "
              "delivery vintage {vintage}. Generated {generated}."),
    "small_cells": ("Celler med færre end {n} personer er undertrykt og markeret “{mark}”.",
                    "Cells based on fewer than {n} persons are suppressed and marked “{mark}”."),
    "suppressed": ("undertrykt (<{n})", "suppressed (<{n})"),
    "contents": ("Indhold", "Contents"),
    # alerts and problems
    "h_alerts": ("Alarmer", "Alerts"),
    "alerts_note": ("Tærskler fra evalueringsspecifikationens “alerts:”; P(NNV ≥ 0) fra Monte Carlo-"
                    "beregningen af den foreslåede version.",
                    "Thresholds set by the spec's “alerts:”; P(NPV ≥ 0) from the projection Monte Carlo "
                    "of the proposed version."),
    "not_new": ("(ikke ny)", "(not new)"),
    "severity_error": ("FEJL", "ERROR"),
    "severity_warning": ("ADVARSEL", "WARNING"),
    "h_problems": ("Fejl og advarsler", "Failures and warnings"),
    "problems_none": ("Ingen datakontrol fejlede, og beregningen gav ingen advarsler.",
                      "No data check failed and the projection raised no warnings."),
    "failed_checks": ("{n} af {total} datakontroller fejlede:", "{n} of {total} data checks failed:"),
    "projection_warning": ("Beregningen ({which})", "Projection ({which})"),
    # plain summary
    "h_summary": ("Resumé", "Summary"),
    "h_assumed": ("Hvad blev antaget", "What was assumed"),
    "h_shown": ("Hvad viser registrene", "What the registers show"),
    "h_changed": ("Hvad ændrer sig (forslaget)", "What changed (the proposal)"),
    "h_who": ("Hvem vinder, og hvem betaler", "Who gains and who pays"),
    "assumed_text": ("Version {version} antog {participants} deltagere (kohorter {cohorts}), en succesrate på {s} "
                     "og udgifter til indsatsen med en nutidsværdi på {cost} kr. Med de antagelser giver indsatsen "
                     "en nutidsværdi for hele den offentlige sektor på {npv} kr over {horizon} år "
                     "({price_year}-priser, {discount}).",
                     "Version {version} assumed {participants} participants (cohorts {cohorts}), a success rate of {s} "
                     "and intervention costs with a present value of {cost} kr. On those assumptions the intervention "
                     "has a net present value for the whole public sector of {npv} kr over {horizon} years ({price_year} prices, "
                     "{discount})."),
    "shown_text": ("Registrene for {first}–{last} ({persons} personer i målgruppe og sammenligningsgruppe, leverance "
                   "{vintage}) viser: {consistent} antagelse(r) holdt, {refuted} blev afkræftet, og {inconclusive} "
                   "kunne ikke afgøres endnu.",
                   "The registers for {first}–{last} ({persons} persons in the target and comparison groups, delivery "
                   "{vintage}) show: {consistent} assumption(s) held, {refuted} were refuted and {inconclusive} could "
                   "not be decided yet."),
    "shown_item": ("{name}: {label} (antaget {assumed}, realiseret {realised}).",
                   "{name}: {label} (assumed {assumed}, realised {realised})."),
    "changed_text": ("Forslaget, version {version} ({status}), ændrer {n} værdier i {k} parametre. Nutidsværdien for "
                     "den offentlige sektor går fra {npv_before} kr til {npv_after} kr; succesraten fra {s_before} til "
                     "{s_after}.",
                     "The proposal, version {version} ({status}), changes {n} values in {k} parameters. The net "
                     "present value for the public sector moves from {npv_before} kr to {npv_after} kr; the success "
                     "rate from {s_before} to {s_after}."),
    "changed_none": ("Evalueringen foreslog ingen ny parameterversion; beregningen nedenfor bygger på version {version}.",
                     "The evaluation proposed no new parameter version; the figures below rest on version {version}."),
    "who_payer": ("{payer}: nutidsværdi {npv} kr — {role}{payback}.", "{payer}: net present value {npv} kr — {role}{payback}."),
    "role_gains": ("vinder netto", "gains on balance"),
    "role_pays": ("betaler netto", "pays on balance"),
    "role_none": ("ingen strømme", "no flows"),
    "payback_in": ("; tjent hjem i {year}", "; paid back in {year}"),
    "payback_never": ("; ikke tjent hjem inden for horisonten", "; not paid back within the horizon"),
    "who_udvalg": ("Blandt udvalgene investerer {payer_udvalg} mest ({npv} kr), og {gain_udvalg} får den største gevinst "
                   "({gain} kr).",
                   "Among the udvalg, {payer_udvalg} invests most ({npv} kr) and {gain_udvalg} gains most ({gain} kr)."),
    "who_udvalg_none": ("Beregningen fordeler ikke kommunens beløb på udvalg.",
                        "The projection does not split the kommune's amounts by udvalg."),
    "figures_from": ("Tallene er fra {which}.", "Figures from {which}."),
    "the_proposal": ("den foreslåede version {version}", "the proposed version {version}"),
    "the_evaluated": ("den evaluerede version {version}", "the evaluated version {version}"),
    # verdicts
    "h_verdicts": ("Hvordan antagelserne holdt", "How the assumptions held"),
    "col_assumption": ("Antagelse", "Assumption"),
    "col_verdict": ("Vurdering", "Verdict"),
    "col_assumed": ("Antaget", "Assumed"),
    "col_realised": ("Realiseret", "Realised"),
    "col_ci": ("95 %-konfidensinterval", "95 % CI"),
    "col_interval": ("Interval", "Interval"),
    "range": ("{lo} til {hi}", "{lo} to {hi}"),
    "col_explanation": ("Forklaring", "Explanation"),
    "verdict_note": ("Test: {test}; ækvivalensmargin ±{margin} % af antagelsen; α = {alpha}. Forklaringerne er "
                     "beregningens egne (på engelsk).",
                     "Test: {test}; equivalence margin ±{margin} % of the assumption; α = {alpha}."),
    "label_consistent": ("i overensstemmelse", "consistent"),
    "label_refuted-overestimated": ("afkræftet — overvurderet", "refuted — overestimated"),
    "label_refuted-underestimated": ("afkræftet — undervurderet", "refuted — underestimated"),
    "label_inconclusive": ("uafklaret", "inconclusive"),
    # payers and udvalg
    "payer_kommune": ("Kommunen", "Kommune"),
    "payer_region": ("Regionen", "Region"),
    "payer_stat": ("Staten", "Stat (state)"),
    "payer_total": ("Offentlig sektor i alt", "Public sector total"),
    "h_payers": ("Hvem vinder, og hvem betaler: betalere og udvalg", "Who gains and who pays: payers and udvalg"),
    "col_payer": ("Betaler", "Payer"),
    "col_udvalg": ("Udvalg", "Udvalg (committee)"),
    "col_npv_before": ("Nutidsværdi, evalueret (kr)", "NPV, evaluated (kr)"),
    "col_npv_after": ("Nutidsværdi, forslag (kr)", "NPV, proposal (kr)"),
    "col_npv": ("Nutidsværdi (kr)", "NPV (kr)"),
    "col_nominal": ("Netto, ikke tilbagediskonteret (kr)", "Net, undiscounted (kr)"),
    "col_udvalg_total": ("I alt (udvalgene)", "Total (the udvalg)"),
    "col_change": ("Ændring (kr)", "Change (kr)"),
    "col_payback": ("Tjent hjem (år)", "Payback year"),
    "col_role": ("Rolle", "Role"),
    "col_pbe": ("P(nutidsværdi ≥ 0)", "P(NPV ≥ 0)"),
    "col_year": ("År", "Year"),
    "col_version": ("Version", "Version"),
    "role_invests": ("investerer", "invests"),
    "role_gains_u": ("vinder", "gains"),
    "role_neutral": ("neutral", "neutral"),
    "show_explanation": ("vis begrundelsen (på engelsk)", "show the reasoning"),
    "no_stake": ("ingen andel", "no stake"),
    "no_outlay": ("ingen udgift", "no outlay"),
    "unassigned": ("ikke fordelt på udvalg", "not assigned to an udvalg"),
    "who_unassigned": ("Beløb, der ikke er fordelt på et udvalg (fx indsatsens udgifter uden udvalg): {npv} kr.",
                       "Amounts not assigned to an udvalg (e.g. intervention costs without one): {npv} kr."),
    "none_within": ("ikke inden for horisonten", "not within the horizon"),
    "h_udvalg": ("Udvalg: nutidsværdi, tilbagebetaling og rolle", "Udvalg: net present value, payback and role"),
    "udvalg_note": ("Hver betalers beløb fordelt på udvalg og sektorer efter beregningsdokumentets fordeling (ellers "
                    "standardfordelingen i assets/udvalg); refusion og skat følger posten. Positive beløb er "
                    "besparelser, negative er udgifter. Break-even: den succesrate og den pris pr. deltager, hvor "
                    "udvalgets nutidsværdi er 0.",
                    "Each payer's amounts split by udvalg and sector as the calculation document assigns them (else "
                    "the default mapping in assets/udvalg); refusion and tax follow the item. Positive amounts are "
                    "savings, negative amounts costs. Break-even: the success rate and the price per participant at "
                    "which the udvalg's net present value is 0."),
    "col_be_success": ("Break-even succesrate", "Break-even success rate"),
    "col_be_cost": ("Break-even pris pr. deltager (kr)", "Break-even cost per participant (kr)"),
    "be_break_even": ("break-even", "break-even"),
    "be_no_effect": ("påvirkes ikke af succesraten", "not moved by the success rate"),
    "be_falls_with_success": ("falder med succesraten", "falls as the success rate rises"),
    "be_no_cost": ("ingen udgift til indsatsen", "no intervention cost"),
    "be_not_even_at_zero_cost": ("ikke engang ved pris 0", "not even at zero cost"),
    "be_no_stake": ("ingen strømme", "no flows"),
    "h_cross": ("Krydssubsidiering: hvem investerer og hvem vinder, år for år",
                "Cross-subsidy: who invests and who gains, by year"),
    "cross_note": ("Tilbagediskonteret netto pr. udvalg og år (kr, {which}); negative tal: udvalget investerer det år.",
                   "Discounted net per udvalg and year (kr, {which}); negative figures: the udvalg invests that year."),
    "h_udvalg_compare": ("Fremskrevet (evalueret version) mod realiseret (forslaget) pr. udvalg",
                         "Projected (evaluated version) vs realised (the proposal) per udvalg"),
    "udvalg_none": ("Beregningen fordeler ikke beløbene på udvalg (dokumentet angiver ingen udvalg).",
                    "The projection does not split amounts by udvalg (the document assigns none)."),
    # diff
    "h_diff": ("Hvad ændrede sig mellem versionerne", "What changed between the versions"),
    "diff_intro": ("Version {before} → version {after}: {n} værdier ændret i {k} parametre.",
                   "Version {before} → version {after}: {n} values changed in {k} parameters."),
    "diff_none": ("Ingen ny version at sammenligne med.", "No new version to compare with."),
    "col_parameter": ("Parameter", "Parameter"),
    "col_changes": ("Ændrede værdier", "Values changed"),
    "col_path": ("Sti", "Path"),
    "col_change_kind": ("Ændring", "Change"),
    "col_from": ("Fra", "From"),
    "col_to": ("Til", "To"),
    "diff_all": ("Alle ændrede værdier ({n})", "All changed values ({n})"),
    "change_added": ("tilføjet", "added"),
    "change_removed": ("fjernet", "removed"),
    "change_changed": ("ændret", "changed"),
    # paths
    "h_paths": ("Antaget mod realiseret, år for år siden start", "Assumed vs realised, by year since start"),
    "paths_none": ("Ingen effektforløb kunne vises.", "No effect path could be shown."),
    "paths_hidden": ("({n} år undertrykt: færre end {m} personer)", "({n} year(s) suppressed: fewer than {m} persons)"),
    "chart_success": ("Succesrate (konsekvensår 1)", "Success rate (consequence year 1)"),
    "chart_course": ("Effekt på {outcome} pr. deltager under forløbet", "Effect on {outcome} per participant during the course"),
    "chart_effect": ("Effekt på {outcome} pr. behandlet person", "Effect on {outcome} per treated person"),
    "ax_years_since": ("år siden start", "years since start"),
    "ax_year": ("år", "year"),
    "ax_cum": ("kumuleret tilbagediskonteret netto, mio. kr", "cumulative discounted net, million kr"),
    "ax_npv_total": ("nutidsværdi i alt, mio. kr", "NPV, public sector total, million kr"),
    "ax_draws": ("antal trækninger", "number of draws"),
    "ax_vintage": ("dataårgang", "data vintage"),
    "lg_realised": ("realiseret", "realised"),
    "lg_realised_ci": ("realiseret, 95 %-interval", "realised, 95 % CI"),
    "lg_assumed": ("antaget", "assumed"),
    "lg_payback": ("{name} (tjent hjem {year})", "{name} (payback {year})"),
    "lg_pbe": ("{name}: P(nutidsværdi ≥ 0) = {p}", "{name}: P(NPV ≥ 0) = {p}"),
    "v_before": ("evalueret", "evaluated"),
    "v_after": ("forslag", "proposal"),
    "per_person_year": ("{unit} pr. behandlet person pr. år", "{unit} per treated person per year"),
    "per_participant_course": ("{unit} pr. deltager pr. forløbsår", "{unit} per participant per course year"),
    "share_participants": ("andel af deltagerne", "share of participants"),
    "history_title": ("{name}: realiseret mod antaget pr. dataårgang", "{name}: realised vs assumed by data vintage"),
    # volumes
    "h_volumes": ("Deltagere, forløbslængde og udgift pr. deltager", "Participants, course length and cost per participant"),
    "volumes_note": ("Beskrivende kontrol af indsatsregistret og udgiftsfilen mod parametersættets volumener, "
                     "forløbslængde og udgifter (optællinger og gennemsnit, ikke kausale estimater).",
                     "Descriptive checks of the intervention register and the cost file against the parameter set's "
                     "volumes, course length and costs (counts and means, not causal estimates)."),
    "volumes_none": ("Ingen vurderinger af volumen, forløbslængde eller udgift i denne kørsel.",
                     "No volume, course-length or cost verdicts in this run."),
    "h_cohorts": ("Deltagere pr. kohorteår", "Participants per cohort year"),
    "col_cohort": ("Kohorteår", "Cohort year"),
    "col_realised_register": ("Realiseret (indsatsregistret)", "Realised (intervention register)"),
    "col_ratio": ("Realiseret / antaget", "Realised / assumed"),
    "not_observed": ("ikke observeret endnu", "not observed yet"),
    "cohorts_note": ("Den foreslåede version fremskriver de observerede kohorter med de realiserede deltagere; senere "
                     "kohorter beholder det antagne antal.",
                     "The proposed version projects the cohorts already observed with their realised participants; "
                     "later cohorts keep the assumed volume."),
    # plan
    "h_plan": ("Evalueringsplanen", "The evaluation plan"),
    "plan_intro": ("Planen for version {version} (som plan; varianser: {source}): hvornår registrene kan "
                   "afkræfte en afvigelse på ±{margin} % eller bekræfte hver antagelse.",
                   "The plan of version {version} (som plan; variances: {source}): when the registers can "
                   "refute a miss of ±{margin} % or confirm each assumption."),
    "plan_none": ("Der er ikke gemt nogen plan for version {version} (kør som plan).",
                  "No plan is stored for version {version} (run som plan)."),
    "col_refute_from": ("Kan afkræftes fra", "Refutable from"),
    "col_confirm_from": ("Kan bekræftes fra", "Confirmable from"),
    "col_planned_se": ("Planlagt standardfejl", "Planned se"),
    "col_realised_se": ("Realiseret standardfejl", "Realised se"),
    "col_planned_vintage": ("Planlagt årgang", "Planned vintage"),
    "col_mdd": ("Mindste påviselige afvigelse (80 % styrke)", "Minimum detectable deviation (80 % power)"),
    "col_evppi": ("Værdi af information (kr)", "Value of information (kr)"),
    "col_data_vintage": ("Dataårgang", "Data vintage"),
    "not_planned": ("ikke planlagt", "not planned"),
    "not_decidable": ("kan ikke afgøres (≤ 5 behandlede klynger)", "not decidable (≤ 5 treated clusters)"),
    "h_plan_realised": ("Realiseret mod planlagt præcision", "Realised vs planned precision"),
    "plan_realised_note": ("Pr. dataårgang: den planlagte standardfejl ved det sidste registerår, leverancen dækker, mod "
                           "den realiserede.",
                           "Per data vintage: the planned standard error at the last register year the delivery covers, "
                           "against the realised one."),
    # over time
    "h_over_time": ("Hvordan hver antagelse har holdt over tid", "How each assumption held over time"),
    "col_tested": ("Testet", "Tested"),
    "col_run": ("Kørsel", "Run"),
    "col_look": ("Kig", "Look"),
    "col_changed": ("Ændret", "Changed"),
    "over_time_note": ("Én række pr. dataårgang og testet version; genkørsler på uændrede data tilføjer ingen række.",
                       "One row per data vintage and tested version; reruns on unchanged data add no row."),
    "h_versions": ("Parameterversioner", "Parameter versions"),
    "col_parent": ("Forælder", "Parent"),
    "col_status": ("Status", "Status"),
    "col_created": ("Oprettet", "Created"),
    "col_decided_by": ("Besluttet af", "Decided by"),
    "col_reason": ("Begrundelse", "Reason"),
    "proposed_text": ("Kørslen foreslog version {version} (status {status}): {reason}",
                      "This run proposed version {version} (status {status}): {reason}"),
    "h_profiles": ("Konsekvensprofiler: evalueret og foreslået", "Consequence profiles: evaluated and proposed"),
    "profiles_note": ("Enheder pr. person med succes pr. konsekvensår. Ikke-verificerede år havde ingen data i denne "
                      "evaluering: de er ekstrapoleret fra de observerede år med en standardfejl, der vokser med "
                      "afstanden til data — behandl dem som antagelser, ikke som resultater.",
                      "Units per successful person by consequence year. Unverified years had no data in this "
                      "evaluation: they are extrapolated from the observed years with a standard error that widens "
                      "with the distance from the data — treat them as assumptions, not findings."),
    "col_item": ("Post", "Item"),
    "col_evaluated_v": ("Evalueret (v{v})", "Evaluated (v{v})"),
    "col_proposed_v": ("Foreslået (v{v})", "Proposed (v{v})"),
    "col_se": ("Standardfejl", "SE"),
    "status_unverified": ("ikke verificeret (ekstrapoleret)", "unverified (extrapolated)"),
    "status_unchanged": ("uændret", "unchanged"),
    "status_updated": ("opdateret fra data", "updated from data"),
    "course_year": ("forløbsår {k}", "course {k}"),
    # effects
    "h_effects": ("Realiserede effekter (hændelsestid og samlet)", "Realised effects (event-time and overall)"),
    # projection
    "h_projection": ("Beregningen før og efter (SØM-beregningsrammen)", "Projection before and after (SØM calculation frame)"),
    "col_parameters": ("Parametre", "Parameters"),
    "col_success_rate": ("Succesrate", "Success rate"),
    "fig_cumulative": ("Kumuleret tilbagediskonteret netto for den offentlige sektor, evalueret og foreslået version.",
                       "Cumulative discounted net for the public sector, evaluated and proposed version."),
    "h_mc": ("Usikkerhed (Monte Carlo, {n} trækninger med fast frø)", "Uncertainty (Monte Carlo, {n} seeded draws)"),
    "mc_note": ("Succesrate og konsekvenser trækkes fra deres standardfejl, priser og udgifter fra deres intervaller; "
                "sandsynligheden for at indsatsen mindst hviler i sig selv (nutidsværdi ≥ 0), som WSIPP opgør den.",
                "Success rate and consequences drawn from their standard errors, prices and costs from their ranges; "
                "the probability that the intervention at least breaks even (NPV ≥ 0), as WSIPP reports it."),
    "col_p5": ("Nutidsværdi i alt, 5 %", "NPV total 5 %"),
    "col_p50": ("median", "median"),
    "col_p95": ("95 %", "95 %"),
    "unverified_contrib": ("{which}: {what} — trukket med deres bredere standardfejl; de bidrager med {total} kr til "
                           "den samlede nutidsværdi (kommune {kommune}, region {region}, stat {stat}).",
                           "{which}: {what} — drawn with their wider standard errors; they contribute {total} kr to the "
                           "total NPV (kommune {kommune}, region {region}, stat {stat})."),
    "fig_mc": ("Fordelingen af den samlede nutidsværdi over trækningerne, før og efter opdateringen.",
               "Distribution of the total NPV over the draws, before and after the update."),
    # method and sample
    "h_method": ("Metode, datagrundlag og begrænsninger", "Methods, data and limitations"),
    "m_period": ("Registerperiode", "Register period"),
    "m_vintage": ("Dataårgang (leverance)", "Data vintage (delivery)"),
    "m_persons": ("Personer i panelet", "Persons in the panel"),
    "m_treated": ("Behandlede / sammenligningspersoner (samlet estimat)", "Treated / comparison persons (overall estimate)"),
    "m_design": ("Design", "Design"),
    "m_comparison": ("Sammenligningsgruppe", "Comparison group"),
    "m_inference": ("Inferensniveau", "Inference level"),
    "m_clusters": ("{clusters} klynger ({level}), heraf {treated} behandlede{few}",
                   "{clusters} clusters ({level}), {treated} of them treated{few}"),
    "m_few": ("; få klynger: metode for få klynger", "; few clusters: a few-cluster method"),
    "m_person": ("personen (standardfejl klynget på person)", "the person (standard errors clustered by person)"),
    "m_tests": ("Test og multiplicitet", "Tests and multiplicity"),
    "m_margin": ("Ækvivalensmargin", "Equivalence margin"),
    "m_price_year": ("Prisår", "Price year"),
    "m_discount": ("Diskonteringsrente", "Discount rate"),
    "m_horizon": ("Horisont", "Horizon"),
    "m_horizon_v": ("{first}–{last} ({n} år)", "{first}–{last} ({n} years)"),
    "m_not_tested": ("Ikke testet", "Not tested"),
    "m_not_tested_none": ("alle antagelser i parametersættet blev testet", "every assumption of the parameter set was tested"),
    "m_limits": ("Begrænsninger", "Limitations"),
    "limit_unverified": ("Konsekvensår uden data er ekstrapoleret og ikke verificeret: {items}.",
                         "Consequence years without data are extrapolated and unverified: {items}."),
    "limit_inconclusive": ("{n} antagelse(r) kunne ikke afgøres med de data, der er nu.",
                           "{n} assumption(s) cannot be decided on the data available now."),
    "limit_descriptive": ("Udgifter og volumener er beskrivende optællinger, ikke kausale estimater.",
                          "Costs and volumes are descriptive counts, not causal estimates."),
    "limit_prices": ("Enhedspriser og refusion er ikke testet mod data; de kommer fra parametersættet.",
                     "Unit prices and refusion were not tested against data; they come from the parameter set."),
    "limit_english": ("Beregningens forklarende sætninger er på engelsk.", "—"),
    # quality
    "h_quality": ("Datakvalitet", "Data quality"),
    "quality_text": ("{n} kontroller kørte i denne kørsel; {failed} fejlede.", "{n} checks ran in this run; {failed} failed."),
    "passed_checks": ("Beståede kontroller ({n})", "Passed checks ({n})"),
    "col_asset": ("Asset", "Asset"),
    "col_check": ("Kontrol", "Check"),
    "col_result": ("Resultat", "Result"),
    "col_severity": ("Alvor", "Severity"),
    "col_failing": ("Fejlende rækker", "Failing rows"),
    "passed": ("bestået", "passed"),
    "failed": ("fejlet", "failed"),
    # glossary and provenance
    "h_glossary": ("Ordliste", "Glossary"),
    "col_term": ("Begreb", "Term"),
    "col_meaning": ("Betydning", "Meaning"),
    "h_provenance": ("Proveniens", "Provenance"),
    "p_hash": ("Leverancens hash (sha256)", "Delivery hash (sha256)"),
    "p_code": ("Kodeversion", "Code version"),
    "p_run": ("Evalueringskørsel", "Evaluation run"),
    "p_params": ("Evaluerede parametre", "Parameters evaluated"),
    "p_params_v": ("version {v}", "version {v}"),
    "p_proposed_v": ("foreslået version {v}", "proposed version {v}"),
    "p_spec": ("Evalueringsspecifikation:", "Evaluation spec:"),
}

#: Danish terms of the report: (term, Danish explanation, English explanation)
GLOSSARY: tuple[tuple[str, str, str], ...] = (
    ("SØM", "Den Socialøkonomiske Investeringsmodel: Socialstyrelsens regnemodel for de offentlige budgetkonsekvenser "
            "af en social indsats, år for år og pr. betaler.",
     "Den Socialøkonomiske Investeringsmodel, the Danish social agency's model of the public budget consequences of a "
     "social intervention, by year and payer."),
    ("Udvalg", "Et politisk udvalg i kommunen (fx børne- og ungeudvalget, beskæftigelsesudvalget), der har budgettet "
               "for et område; beregningen viser, hvilket udvalg der betaler, og hvilket der får gevinsten.",
     "A committee of the municipal council (e.g. children and youth, employment) holding the budget for an area; the "
     "report shows which udvalg pays and which gains."),
    ("Kommune, region, stat", "De tre offentlige betalere: kommunen, regionen (sundhed) og staten.",
     "The three public payers: the municipality, the region (health care) and the state."),
    ("Refusion", "Statens delvise betaling af kommunens udgifter, fx til forsørgelsesydelser (refusionstrappen: 80/40/30/"
                 "20 % efter antal uger på ydelse) eller særligt dyre enkeltsager.",
     "The state's partial reimbursement of the municipality's costs, e.g. of benefits (the refusion staircase 80/40/30/"
     "20 % by weeks on benefit) or of very expensive individual cases."),
    ("§ 176", "Servicelovens § 176 (nu Barnets lov § 198 for børn): statsrefusion af en del af kommunens udgifter til "
              "særligt dyre enkeltsager over en tærskel.",
     "Section 176 of the Social Services Act (now § 198 of the Children's Act for children): state reimbursement of "
     "part of the municipality's costs of very expensive individual cases above a threshold."),
    ("Kontanthjælp", "Den kommunale forsørgelsesydelse til personer uden andet forsørgelsesgrundlag; opgjort i uger.",
     "Cash benefit (social assistance) paid by the municipality to persons without other support; counted in weeks."),
    ("Forsorgshjem (§ 110)", "Midlertidigt ophold for hjemløse efter servicelovens § 110; opgjort i overnatninger.",
     "Temporary shelter for homeless persons under § 110 of the Social Services Act; counted in nights."),
    ("Succesrate", "Andelen af deltagerne, der opnår indsatsens succesmål (fx ingen ophold på forsorgshjem).",
     "The share of participants who reach the intervention's success measure (e.g. no shelter stay)."),
    ("Konsekvensprofil", "Hvor meget en person med succes bruger af hver ydelse år for år sammenlignet med en uden succes.",
     "How much a person who succeeds uses of each service, year by year, compared with one who does not."),
    ("Nutidsværdi", "Summen af de årlige netto-beløb tilbagediskonteret til i dag (Finansministeriets kalkulationsrente: "
                    "3,5 % år 0–35, 2,5 % år 36–70, 1,5 % derefter).",
     "Net present value: the yearly net amounts discounted to today (the Finance Ministry's rate: 3.5 % years 0–35, "
     "2.5 % years 36–70, 1.5 % after)."),
    ("Tjent hjem", "Det første år, hvor den kumulerede tilbagediskonterede netto bliver positiv.",
     "Payback year: the first year in which the cumulative discounted net turns positive."),
    ("Dataårgang", "Den registerleverance (fx 2023-06), som evalueringen bygger på.",
     "The register delivery (e.g. 2023-06) an evaluation rests on."),
    ("Afkræftet / i overensstemmelse / uafklaret", "Vurderingen af en antagelse: data viser en anden værdi (afkræftet), "
     "data viser værdien inden for marginen (i overensstemmelse), eller data kan endnu ikke afgøre det (uafklaret).",
     "The verdict on an assumption: the data show another value (refuted), show it within the margin (consistent), or "
     "cannot tell yet (inconclusive)."),
    ("Diskretionsgrænse", "Danmarks Statistiks regel: intet tal offentliggøres, når det bygger på færre end 5 personer.",
     "Statistics Denmark's rule: no figure is published when it rests on fewer than 5 persons."),
)

#: outcome name endings → the real unit (da, en)
_UNITS: tuple[tuple[str, tuple[str, str]], ...] = (
    ("_nights", ("nætter", "nights")), ("_weeks", ("uger", "weeks")), ("_days", ("dage", "days")),
    ("_dkk", ("kr", "kr")), ("earnings", ("kr", "kr")), ("convictions", ("domme", "convictions")),
    ("_visits", ("besøg", "visits")), ("_contacts", ("kontakter", "contacts")),
)


def check_language(lang: str) -> str:
    """``lang`` if the catalogue has it; else a ``ValueError`` naming the languages it has."""
    if lang not in LANGUAGES:
        raise ValueError(f"report language {lang!r} is not available (choose one of {', '.join(LANGUAGES)})")
    return lang


def translator(lang: str = DEFAULT_LANGUAGE) -> Callable[..., str]:
    """``t(key, **fields)``: the catalogue entry ``key`` in ``lang``, formatted with ``fields``."""
    i = LANGUAGES.index(check_language(lang))

    def t(key: str, **fields: Any) -> str:
        text = MESSAGES[key][i]
        return text.format(**fields) if fields else text

    return t


def glossary(lang: str = DEFAULT_LANGUAGE) -> list[dict[str, str]]:
    """The glossary rows (term, meaning) in ``lang``."""
    i = LANGUAGES.index(check_language(lang))
    return [{"term": term, "meaning": (da, en)[i]} for term, da, en in GLOSSARY]


def outcome_unit(outcome: str | None, lang: str = DEFAULT_LANGUAGE) -> str | None:
    """The real unit of an outcome column by its name (``shelter_nights`` → nights), or None when unknown."""
    i = LANGUAGES.index(check_language(lang))
    for ending, names in _UNITS:
        if outcome and outcome.endswith(ending):
            return names[i]
    return None


def discounting_text(text: str, lang: str = DEFAULT_LANGUAGE) -> str:
    """The calculation frame's discount schedule in words (:func:`som_models.projection.engine.describe_discounting`,
    in English) in ``lang``: for Danish, "years" → "år", decimal commas, the Finance Ministry's name."""
    if check_language(lang) == "en":
        return text
    import re

    text = text.replace("— Finance Ministry schedule since 2021", "— Finansministeriets kalkulationsrente siden 2021")
    text = text.replace("years ", "år ").replace("none (0 %)", "ingen (0 %)")
    return re.sub(r"(\d)\.(\d)", r"\1,\2", text)


def number(x: Any, lang: str = DEFAULT_LANGUAGE, digits: int = 0) -> str:
    """``x`` with thousands separators and ``digits`` decimals: ``1,234.5`` in English, ``1.234,5`` in Danish;
    empty for None/NaN, a string unchanged."""
    if x is None or (isinstance(x, float) and x != x):
        return ""
    if isinstance(x, str):
        return x
    text = f"{x:,.{digits}f}"
    if check_language(lang) == "da":
        text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return text.replace("-", "−")
