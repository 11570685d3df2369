"""Convergence verdicts agree with Mescheder et al. (2018) and the bilinear-game literature, by formula and by simulation."""
from __future__ import annotations

import numpy as np
import pytest

from gancourse.dynamics import (
    DiracGAN,
    METHODS,
    Method,
    analyze,
    continuous_verdict,
    critical_step_size,
    dirac_r1,
    discrete_verdict,
    flow_trajectory,
    numeric_jacobian,
    simulate,
    trajectory_verdict,
    xy_game,
)
from gancourse.dynamics.analysis import convergence_table, levelled_off, simulated_verdict
from gancourse.dynamics.closed_forms import dirac_ns_cycle_radius

UNREGULARIZED = [DiracGAN("gan"), DiracGAN("wgan"), DiracGAN("wgan", clip=1.0), DiracGAN("wgan", "wgan-gp", gamma=1.0)]
REGULARIZED = [DiracGAN("gan", "r1", gamma=1.0), DiracGAN("gan", "r2", gamma=0.3), DiracGAN("ns", "r1", gamma=1.0),
               DiracGAN("gan", "instance-noise", sigma=1.0), DiracGAN("gan", "instance-noise", sigma=0.5)]
ids = lambda g: g.label()  # noqa: E731


@pytest.mark.parametrize("game", UNREGULARIZED, ids=ids)
@pytest.mark.parametrize("method", ["flow", "simgd", "altgd"])
@pytest.mark.parametrize("h", [0.05, 0.2])
def test_unregularized_gan_wgan_and_wgan_gp_do_not_converge(game, method, h):
    res = analyze(game, Method(method, h=h), start=[1.0, 1.0], steps=2000)
    assert res.verdict != "converges"
    assert res.simulated_verdict in ("cycles", "diverges")
    assert res.final_distance > 0.5


@pytest.mark.parametrize("game", REGULARIZED, ids=ids)
@pytest.mark.parametrize("method", ["flow", "simgd", "altgd", "extragradient", "optimistic"])
@pytest.mark.parametrize("h", [0.05, 0.2])
def test_r1_r2_and_instance_noise_converge_for_small_h(game, method, h):
    rho = analyze(game, Method(method, h=h), steps=1).spectral_radius
    assert rho < 1
    res = analyze(game, Method(method, h=h), start=[0.5, 0.5], steps=int(np.log(1e5) / -np.log(rho)))  # rho^N = 1e-5
    assert res.verdict == "converges"
    assert res.simulated_verdict == "converges"
    assert res.final_distance < 1e-3 * np.hypot(0.5, 0.5)


@pytest.mark.parametrize("gamma", [0.3, 1.0, 3.0])
@pytest.mark.parametrize("h", [0.05, 0.2])
def test_consensus_optimization_converges_on_the_unregularized_gan(gamma, h):
    res = analyze(DiracGAN("gan"), Method("consensus", h=h, consensus=gamma), start=[0.5, 0.5], steps=int(200 / (gamma * h)))
    assert res.verdict == "converges" and res.simulated_verdict == "converges"


def test_the_continuous_verdicts():
    assert continuous_verdict(analyze(DiracGAN("gan"), Method("flow")).continuous_eigenvalues) == "cycles"
    for g in REGULARIZED:
        lam = np.linalg.eigvals(numeric_jacobian(g.field, g.equilibrium))
        assert continuous_verdict(lam) == "converges"


@pytest.mark.parametrize("method", ["flow", "altgd"])
def test_non_saturating_gan_is_not_linearly_convergent_but_creeps_in(method):
    res = analyze(DiracGAN("ns"), Method(method, h=0.1), start=[1.0, 1.0], steps=3000)
    assert res.verdict == "cycles"  # eigenvalues +- i/2 (altgd: on the unit circle): the linearization decides nothing
    assert res.simulated_verdict == "slow"  # still shrinking in the second half of the run
    assert 1e-3 * np.sqrt(2) < res.final_distance < 0.5 * np.sqrt(2)
    assert not levelled_off(simulate(DiracGAN("ns"), Method(method, h=0.1), [1.0, 1.0], 3000).distance)


@pytest.mark.parametrize("h", [0.05, 0.1, 0.2])
def test_non_saturating_gan_under_simultaneous_gd_settles_on_a_cycle_of_radius_sqrt_2h(h):
    """Per step r^2 grows by h^2 r^2 / 4 (rho^2 = 1 + h^2/4) and shrinks by h r^4 / 8 (the NS pull): r* = sqrt(2h)."""
    r_star = dirac_ns_cycle_radius(h)
    assert r_star == pytest.approx(np.sqrt(2 * h), rel=1e-12)
    for start in ([1.0, 1.0], [0.1, 0.1]):  # from outside and from inside the cycle
        traj = simulate(DiracGAN("ns"), Method("simgd", h=h), start, 20_000)
        assert np.sqrt(np.mean(traj.distance[-2000:] ** 2)) == pytest.approx(r_star, rel=0.02), start
        assert traj.final_distance == pytest.approx(r_star, rel=0.03), start
        assert simulated_verdict(traj.distance) == "cycles", start


def test_the_ns_gan_row_of_the_table_says_cycles_and_names_the_radius():
    res = analyze(DiracGAN("ns"), Method("simgd", h=0.1), start=[1.0, 1.0], steps=3000)
    assert res.verdict == "diverges" and res.simulated_verdict == "cycles"
    assert res.final_distance == pytest.approx(np.sqrt(0.2), rel=0.01)
    assert "limit cycle" in res.note and "sqrt(2h) = 0.447" in res.note
    assert "sqrt(2h)" not in analyze(DiracGAN("gan"), Method("simgd", h=0.1), steps=1000).note  # NS-GAN only


def test_dirac_ns_cycle_radius_general_f_and_its_checks():
    assert dirac_ns_cycle_radius(0.1, fp0=1.0, fpp0=-0.5) == pytest.approx(np.sqrt(2 * 0.1 * 1.0 / 0.5))
    with pytest.raises(ValueError, match="h"):
        dirac_ns_cycle_radius(0.0)
    with pytest.raises(ValueError, match="f''"):
        dirac_ns_cycle_radius(0.1, fpp0=0.0)


def test_levelled_off_splits_slow_runs_into_creeping_and_cycling():
    t = np.arange(0, 3001.0)
    creep = 1 / np.sqrt(0.5 + t / 80)  # a power law t^-1/2, like the NS-GAN flow
    cycle = 0.45 + 0.95 * np.exp(-t / 400)  # relaxes onto a cycle of radius 0.45
    linear = np.sqrt(2) * 0.9995**t  # a linear rate close to 1
    wobble = cycle * (1 + 0.02 * np.sin(t / 3))  # the distance wobbles within a revolution
    for d in (creep, cycle, linear, wobble):
        assert trajectory_verdict(d) == "slow"  # halved, not converged: the start/end rule cannot tell them apart
    assert not levelled_off(creep) and not levelled_off(linear)
    assert levelled_off(cycle) and levelled_off(wobble)
    assert [simulated_verdict(d) for d in (creep, cycle, linear, wobble)] == ["slow", "cycles", "slow", "cycles"]
    # the other verdicts are those of trajectory_verdict
    assert simulated_verdict(np.array([1.0, 0.5, 1e-4])) == "converges"
    assert simulated_verdict(np.array([1.0, 2.0, 1.5])) == "cycles"
    assert simulated_verdict(np.array([1.0, 5.0, np.inf])) == "diverges"
    assert simulated_verdict(np.array([1.0, 0.4, 0.4, 0.4])) == "slow"  # too short to tell a cycle
    assert simulated_verdict(np.r_[1.0, np.full(20, 0.4)]) == "cycles"  # 20 steps: long enough


# the verdict pairs (eigenvalues / simulation) of `gancourse dynamics --table`, as docs/RESULTS.md reports them;
# c converges, s slow, y cycles, d diverges, n does not converge; methods in the order of METHODS
TABLE = {
    "GAN": "yy dy yy cs cs cc cs",
    "NS-GAN": "ys dy ys cs cs cc cs",
    "WGAN": "yy dd yy cc cc cc cs",
    "WGAN (clip 1)": "yy dy yy cc cc cc cs",
    "WGAN + WGAN-GP (gamma=1)": "ny ny ny ny ny ny ny",
    "GAN + R1 (gamma=1)": "cc cc cc cc cc cc cc",
    "GAN + R2 (gamma=1)": "cc cc cc cc cc cc cc",
    "GAN + instance noise (sigma=1)": "cc cc cc cc cc cc cc",
    "xy": "yy dd yy cc cc cc cs",
}
CODES = {"c": "converges", "s": "slow", "y": "cycles", "d": "diverges", "n": "does not converge"}


def test_the_convergence_table_rows():
    rows = convergence_table(h=0.1, steps=3000)
    got = {(r.game, r.method.split(" ")[0]): (r.verdict, r.simulated_verdict) for r in rows}
    expected = {(game, m): (CODES[pair[0]], CODES[pair[1]])
                for game, pairs in TABLE.items() for m, pair in zip(METHODS, pairs.split())}
    assert got == expected


def test_wgan_gp_has_a_kink_and_the_verdict_comes_from_simulation():
    res = analyze(DiracGAN("wgan", "wgan-gp", gamma=1.0), Method("simgd", h=0.1), steps=2000)
    assert res.note and "kink" in res.note
    assert res.verdict == "does not converge"


def test_step_size_one_diverges_and_one_half_converges():
    """Simultaneous GD on an R1 Dirac-GAN with gamma = 0.2: critical step 4 gamma = 0.8."""
    game = DiracGAN("gan", "r1", gamma=0.2)
    assert critical_step_size(dirac_r1(0.2)) == pytest.approx(0.8)
    big = analyze(game, Method("simgd", h=1.0), start=[0.01, 0.01], steps=400)
    small = analyze(game, Method("simgd", h=0.5), start=[0.01, 0.01], steps=400)
    assert big.spectral_radius > 1 > small.spectral_radius
    assert big.verdict == "diverges" and big.simulated_verdict == "diverges"
    assert small.verdict == "converges" and small.simulated_verdict == "converges"


def test_critical_gamma_is_two_f_prime():
    for gamma in (0.5, 0.9, 0.999):
        assert np.all(np.abs(dirac_r1(gamma).imag) > 0)
    for gamma in (1.001, 2.0, 5.0):
        assert np.all(dirac_r1(gamma).imag == 0)
    assert np.allclose(dirac_r1(1.0), [-0.5, -0.5])


# ------------------------------------------------------------------ the xy game


def steps_to_grow(rho: float, factor: float = 20.0) -> int:
    return int(np.ceil(np.log(factor) / np.log(rho))) + 10


@pytest.mark.parametrize("eta", [0.05, 0.1, 0.5, 1.0, 1.9, 3.0])
def test_simultaneous_gd_diverges_on_xy_for_every_eta(eta):
    rho = np.sqrt(1 + eta**2)
    res = analyze(xy_game(), Method("simgd", h=eta), steps=steps_to_grow(rho))
    assert res.spectral_radius > 1
    assert res.verdict == "diverges" and res.simulated_verdict == "diverges"


@pytest.mark.parametrize("eta", [0.05, 0.5, 1.0, 1.5, 1.9])
def test_alternating_gd_cycles_on_xy_below_two(eta):
    res = analyze(xy_game(), Method("altgd", h=eta), steps=5000)
    assert res.spectral_radius == pytest.approx(1.0, abs=1e-9)
    assert res.verdict == "cycles" and res.simulated_verdict == "cycles"
    traj = simulate(xy_game(), Method("altgd", h=eta), [1.0, 1.0], 5000)
    assert np.all(np.isfinite(traj.distance)) and traj.distance.min() > 0.05 and traj.distance.max() < 60


def test_alternating_gd_close_to_two_stays_on_a_long_thin_ellipse():
    # eigenvalues near -1: the orbit stretches far from the start, but it does not grow
    traj = simulate(xy_game(), Method("altgd", h=1.99), [1.0, 1.0], 8000)
    first, second = traj.distance[:4000].max(), traj.distance[4000:].max()
    assert first > 10 * np.sqrt(2)
    assert second == pytest.approx(first, rel=1e-3)


def test_alternating_gd_diverges_on_xy_above_two():
    res = analyze(xy_game(), Method("altgd", h=2.1), steps=200)
    assert res.verdict == "diverges" and res.simulated_verdict == "diverges"


def test_alternating_gd_six_cycle_exactly():
    traj = simulate(xy_game(), Method("altgd", h=1.0), [1, 1], 6)
    expected = [(1, 1), (-1, 2), (-2, 1), (-1, -1), (1, -2), (2, -1), (1, 1)]
    assert np.array_equal(traj.z, np.array(expected, dtype=float))


@pytest.mark.parametrize("method,etas", [("extragradient", [0.1, 0.5, 0.9]), ("optimistic", [0.1, 0.3, 0.5])])
def test_extragradient_and_ogda_contract_inside_their_ranges(method, etas):
    for eta in etas:
        res = analyze(xy_game(), Method(method, h=eta), steps=steps_to_grow(1 / 0.999 if eta == 0.1 else 1.02, 1e4))
        assert res.spectral_radius < 1 and res.verdict == "converges", eta
        assert res.simulated_verdict == "converges", eta


def test_extragradient_stops_contracting_at_eta_one():
    assert analyze(xy_game(), Method("extragradient", h=1.0), steps=10).verdict == "cycles"
    assert analyze(xy_game(), Method("extragradient", h=1.2), steps=10).verdict == "diverges"


def test_negative_momentum_with_alternating_updates_converges_positive_does_not():
    neg = analyze(xy_game(), Method("momentum", h=0.3, beta=-0.3), steps=6000)
    pos = analyze(xy_game(), Method("momentum", h=0.3, beta=0.3), steps=500)
    assert neg.verdict == "converges" and neg.simulated_verdict == "converges"
    assert pos.verdict == "diverges" and pos.simulated_verdict == "diverges"


def test_adaptive_flow_conserves_the_radius_on_xy_and_reaches_the_equilibrium_with_r1():
    traj = flow_trajectory(xy_game(), [1.0, 0.5], t_end=30.0)
    np.testing.assert_allclose(traj.distance, np.hypot(1.0, 0.5), rtol=1e-7)
    traj = flow_trajectory(DiracGAN("gan", "r1", gamma=1.0), [1.0, 1.0], t_end=60.0)
    assert traj.final_distance < 1e-8
    rk4 = simulate(DiracGAN("gan", "r1", gamma=1.0), Method("flow", h=0.05), [1.0, 1.0], 200)
    adaptive = flow_trajectory(DiracGAN("gan", "r1", gamma=1.0), [1.0, 1.0], t_end=10.0, n_points=3)
    np.testing.assert_allclose(rk4.z[-1], adaptive.z[-1], atol=1e-7)


def test_trajectory_verdicts():
    assert trajectory_verdict(np.array([1.0, 0.5, 1e-4])) == "converges"
    assert trajectory_verdict(np.array([1.0, 0.9, 0.3])) == "slow"
    assert trajectory_verdict(np.array([1.0, 2.0, 1.5])) == "cycles"
    assert trajectory_verdict(np.array([1.0, 5.0, np.inf])) == "diverges"
    with pytest.raises(ValueError, match="starts at the equilibrium"):
        trajectory_verdict(np.array([0.0, 0.0]))


def test_discrete_verdict_thresholds():
    assert discrete_verdict(np.array([0.5, 0.99])) == "converges"
    assert discrete_verdict(np.array([1j, -1j])) == "cycles"
    assert discrete_verdict(np.array([1.01])) == "diverges"


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_on_every_game(method):
    for game in (*UNREGULARIZED, *REGULARIZED, xy_game()):
        res = analyze(game, Method(method, h=0.1, n_d=2), steps=20)
        d = res.to_dict()
        assert np.isfinite(d["spectral_radius"]) and len(d["discrete_eigenvalues"]) in (2, 4)
