"""Few-cluster inference: the wild cluster bootstrap-t (Webb weights) and randomisation inference over a roll-out."""

import numpy as np
import pytest

from som_models.estimators.bootstrap import WEBB_POINTS, assignment_count, rollout_randomisation_test, wild_cluster_bootstrap


def test_webb_weights_have_mean_zero_and_variance_one():
    assert WEBB_POINTS.mean() == pytest.approx(0) and (WEBB_POINTS**2).mean() == pytest.approx(1)
    assert len(set(np.round(WEBB_POINTS, 12))) == 6


def _difference_in_means(seed, clusters=8, treated=4, size=30, effect=0.0):
    """Clusters 0..treated−1 treated; a cluster shock (sd 1) shared by its members, person noise (sd 2)."""
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(clusters), size)
    d = cl < treated
    y = rng.normal(size=clusters)[cl] + 2 * rng.normal(size=cl.size) + effect * d
    p = d.mean()
    est = y[d].mean() - y[~d].mean()
    psi = np.where(d, (y - y[d].mean()) / p, -(y - y[~d].mean()) / (1 - p))
    return np.bincount(cl, psi), est, cl.size, np.bincount(cl), np.arange(clusters) < treated


def test_the_se_is_the_cluster_robust_one_by_hand():
    scores, est, n, sizes, groups = _difference_in_means(0)
    got = wild_cluster_bootstrap(scores, est, n=n, draws=199, seed=1, sizes=sizes, groups=groups)
    assert got.se == pytest.approx(np.sqrt(8 / 7 * np.sum(scores**2)) / n)
    assert got.statistic == pytest.approx(est / got.se) and got.clusters == 8
    assert got.ci_low < est < got.ci_high
    # a linear combination: 2·θ has twice the estimate and the se, the same t and p
    two = wild_cluster_bootstrap(scores[:, None], np.array([est]), contrast=np.array([2.0]), n=n, draws=199, seed=1,
                                 sizes=sizes, groups=groups)
    assert two.estimate == pytest.approx(2 * est) and two.se == pytest.approx(2 * got.se)
    assert two.p_value == pytest.approx(got.p_value)


def test_rejection_rate_under_the_null_with_eight_clusters_is_near_alpha():
    # 400 simulated evaluations with 8 clusters (4 treated) under the null; MC-SE of a 5 % rate ≈ 1.1 points.
    # The unrestricted wild bootstrap-t is known to over-reject slightly with few treated clusters (≈ 6 % here);
    # the normal-theory test with the same cluster-robust se rejects far more often, which the test also checks.
    wild, normal = [], []
    for seed in range(400):
        scores, est, n, sizes, groups = _difference_in_means(seed)
        got = wild_cluster_bootstrap(scores, est, n=n, draws=399, seed=seed, sizes=sizes, groups=groups)
        wild.append(got.p_value < 0.05)
        normal.append(abs(got.statistic) > 1.959964)
    rate, mcse = np.mean(wild), np.sqrt(0.05 * 0.95 / 400)
    assert abs(rate - 0.05) <= 3 * mcse, f"wild bootstrap rejected {rate:.3f}"
    assert np.mean(normal) > rate + 0.02


def test_the_bootstrap_detects_a_real_effect_and_tests_equivalence():
    scores, est, n, sizes, groups = _difference_in_means(3, clusters=16, treated=8, effect=3.0)
    got = wild_cluster_bootstrap(scores, est, n=n, draws=999, seed=0, sizes=sizes, groups=groups, margin=2.5,
                                 null=est)
    assert got.p_value == pytest.approx(1.0) and got.tost_p < 0.05  # tested at its own value: within ±2.5 (se 0.68)
    assert got.ci_low < est - 1.0 and got.ci_high > est + 1.0
    far = wild_cluster_bootstrap(scores, est, n=n, draws=999, seed=0, sizes=sizes, groups=groups)
    assert far.p_value < 0.01 and far.p_greater < 0.01 and far.p_less > 0.99


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least 2 clusters"):
        wild_cluster_bootstrap(np.array([1.0]), 0.0, n=10)
    with pytest.raises(ValueError, match="must agree"):
        wild_cluster_bootstrap(np.ones((4, 2)), np.array([1.0]), n=10)
    with pytest.raises(ValueError, match="webb, rademacher or mammen"):
        wild_cluster_bootstrap(np.array([1.0, -1.0]), 0.0, n=10, weights="gauss")


def test_randomisation_inference_exact_by_hand():
    # 4 clusters with outcomes 1, 2, 3, 4; clusters 3 and 4 adopted (time 5), 1 and 2 never (0).
    # Statistic: mean of adopters − mean of the others. Observed 3.5 − 1.5 = 2. The 6 assignments give
    # −2, −1, 0, 0, 1, 2: two-sided p = 2/6, p_greater = 1/6, p_less = 6/6.
    y = np.array([1.0, 2.0, 3.0, 4.0])

    def stat(adoption):
        treated = adoption > 0
        return y[treated].mean() - y[~treated].mean()

    got = rollout_randomisation_test(stat, np.array([0, 0, 5, 5]))
    assert got.exact and got.assignments == 6 and got.statistic == pytest.approx(2)
    assert got.p_value == pytest.approx(2 / 6) and got.p_greater == pytest.approx(1 / 6) and got.p_less == 1.0


def test_randomisation_over_a_staggered_rollout_counts_distinct_assignments():
    adoption = np.array([0, 0, 3, 3, 4, 4, 4, 0])
    assert assignment_count(adoption) == 8 * 7 * 6 * 5 * 4 // (6 * 2)  # 8! / (3! · 2! · 3!) = 560
    seen = set()
    got = rollout_randomisation_test(lambda a: seen.add(tuple(a)) or float(a[0]), adoption)
    assert got.exact and got.assignments == 560 and len(seen) == 560
    # sampled when there are too many: (1 + #extreme) / (1 + B), never 0
    sampled = rollout_randomisation_test(lambda a: float(np.dot(a, np.arange(8))), adoption, max_exact=100, draws=199,
                                         seed=2)
    assert not sampled.exact and sampled.draws == 199 and 1 / 200 <= sampled.p_value <= 1
    with pytest.raises(ValueError, match="nothing to permute"):
        rollout_randomisation_test(lambda a: 0.0, np.array([3, 3, 3]))
