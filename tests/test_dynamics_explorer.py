"""The game-dynamics explorer's maths: settings, which controls apply, and every part of a frame."""
from __future__ import annotations

import numpy as np
import pytest

from gancourse.dynamics import (
    DiracGAN,
    Method,
    analyze,
    consensus_field,
    eigenvalue_mismatch,
    simulate,
    xy_game,
    xy_rho_alternating,
    xy_rho_extragradient,
    xy_rho_simultaneous,
)
from gancourse.dynamics.explorer import (
    CONTROLS,
    GAMES,
    ExplorerSettings,
    applicable_controls,
    explore,
    field_on_grid,
    linear_reason,
    make_game,
    make_method,
    plane_embeddings,
    start_state,
)
from gancourse.dynamics.games import Bilinear

RUN = {"game", "method", "h", "steps", "lim", "start"}


# --- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    ({"game": "chess"}, "valid options are: 'dirac', 'xy', 'bilinear'"),
    ({"method": "adam"}, "valid options are: 'flow', 'simgd'"),
    ({"reg": "r3"}, "valid options are: 'none', 'r1'"),
    ({"h": 0.0}, "h"),
    ({"beta": 1.0}, r"beta must lie in \(-1, 1\)"),
    ({"A": (1.0, 2.0, 3.0)}, r"A must have shape \(4,\)"),
    ({"start": (np.nan, 1.0)}, "start contains 1 NaN"),
    ({"grid": 1}, "grid"),
])
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExplorerSettings(**kwargs)


def test_unknown_setting_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown explorer settings \['eta'\]; valid ones are: A, alternating"):
        ExplorerSettings.from_mapping({"eta": 0.1})
    s = ExplorerSettings.from_mapping({"A": [1, 2, 3, 4], "start": [0.5, -1]})
    assert s.A == (1.0, 2.0, 3.0, 4.0) and s.start == (0.5, -1.0)


# --- which controls apply ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, extra", [
    ({}, {"loss", "reg", "clipping"}),
    ({"reg": "r1"}, {"loss", "reg", "clipping", "gamma"}),
    ({"reg": "r2"}, {"loss", "reg", "clipping", "gamma"}),
    ({"reg": "wgan-gp"}, {"loss", "reg", "clipping", "gamma"}),
    ({"reg": "instance-noise"}, {"loss", "reg", "clipping", "sigma"}),
    ({"clipping": True}, {"loss", "reg", "clipping", "clip"}),
    ({"game": "xy"}, set()),
    ({"game": "xy", "reg": "r1", "clipping": True}, set()),  # the xy game has no loss, penalty or clipping
    ({"game": "bilinear"}, {"A"}),
    ({"game": "xy", "method": "altgd"}, {"n_d", "n_g"}),
    ({"game": "xy", "method": "consensus"}, {"consensus"}),
    ({"game": "xy", "method": "momentum"}, {"beta", "alternating"}),
    ({"game": "xy", "method": "extragradient"}, set()),
])
def test_applicable_controls(kwargs, extra):
    assert applicable_controls(ExplorerSettings(**kwargs)) == RUN | extra


def test_every_setting_is_a_control_and_every_control_applies_somewhere():
    names = {f for f in vars(ExplorerSettings())} - {"grid"}
    assert names == set(CONTROLS)
    seen = set()
    for game in GAMES:
        for method in ("altgd", "consensus", "momentum"):
            for reg in ("r1", "instance-noise"):
                seen |= applicable_controls(ExplorerSettings(game=game, method=method, reg=reg, clipping=True))
    assert seen == set(CONTROLS)


def test_settings_that_do_not_apply_do_not_change_the_game_or_the_method():
    base = ExplorerSettings()
    assert make_game(base) == make_game(ExplorerSettings(gamma=3.0, sigma=2.0, clip=0.3, A=(2, 0, 0, 2)))
    assert make_method(base) == make_method(ExplorerSettings(n_d=3, consensus=0.2, beta=0.4, alternating=False))
    assert make_game(ExplorerSettings(reg="r1", gamma=0.3)) == DiracGAN("gan", "r1", gamma=0.3)
    assert make_game(ExplorerSettings(clipping=True, clip=0.3)).clip == 0.3
    assert make_method(ExplorerSettings(method="altgd", n_d=3)) == Method("altgd", h=0.1, n_d=3)


# --- planes -----------------------------------------------------------------------------------------------


def test_the_planes_of_a_bilinear_game_are_its_singular_pairs():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 2))
    game = Bilinear(A)
    E = plane_embeddings(game)
    s = game.singular_values
    for k, Ek in enumerate(E):
        assert np.allclose(Ek.T @ Ek, np.eye(2))
        J = Ek.T @ game.jacobian(np.zeros(4)) @ Ek  # v' restricted to the plane: s_k times a rotation
        assert np.allclose(J, s[k] * np.array([[0.0, -1.0], [1.0, 0.0]]))
        assert np.allclose(game.jacobian(np.zeros(4)) @ Ek, Ek @ J)  # the plane is invariant
    z0 = start_state(game, (0.7, -0.4))
    assert all(np.allclose(Ek.T @ z0, [0.7, -0.4]) for Ek in E)
    with pytest.raises(ValueError, match="x\\^T A y with a 2x2 A"):
        plane_embeddings(Bilinear(np.ones((2, 3))))


@pytest.mark.parametrize("method", ["simgd", "altgd", "extragradient", "optimistic", "consensus", "momentum", "flow"])
def test_each_bilinear_plane_runs_as_an_xy_game_of_its_scale(method):
    A = np.array([[1.0, 2.0], [-0.5, 1.5]])
    s = ExplorerSettings(game="bilinear", A=tuple(A.ravel()), method=method, h=0.2, steps=40, start=(0.6, -0.3))
    frame = explore(s)
    for k, sk in enumerate(np.linalg.svd(A, compute_uv=False)):
        alone = simulate(Bilinear(np.array([[sk]])), make_method(s), [0.6, -0.3], 40)
        assert np.allclose(frame.planes[k].trajectory, alone.z, atol=1e-10), (method, k)


# --- frames ------------------------------------------------------------------------------------------------


def test_a_frame_is_the_analysis_laid_out():
    s = ExplorerSettings(reg="r1", gamma=0.7, method="extragradient", h=0.3, start=(0.8, -0.5), steps=200)
    frame = explore(s)
    game, method = make_game(s), make_method(s)
    res = analyze(game, method, start=[0.8, -0.5], steps=200)
    assert frame.verdict == res.verdict and frame.simulated_verdict == res.simulated_verdict
    assert frame.spectral_radius == pytest.approx(res.spectral_radius)
    assert eigenvalue_mismatch(frame.discrete_eigenvalues, res.discrete_eigenvalues) < 1e-12
    assert np.allclose(frame.planes[0].trajectory, simulate(game, method, [0.8, -0.5], 200).z)
    assert np.allclose(frame.distance, np.linalg.norm(frame.planes[0].trajectory, axis=1))
    assert np.allclose(frame.flow_image, np.exp(0.3 * frame.continuous_eigenvalues))
    assert frame.controls == applicable_controls(s) and frame.note == res.note
    assert frame.game_label == "GAN + R1 (gamma=0.7)" and frame.method_label == "extragradient (h=0.3)"


def test_the_field_is_the_one_the_method_follows():
    game = DiracGAN("ns")
    axis, F = field_on_grid(game, Method("simgd"), 1.5, 5)
    assert F.shape == (1, 5, 5, 2) and np.allclose(axis, np.linspace(-1.5, 1.5, 5))
    assert np.allclose(F[0, 1, 3], game.field(np.array([axis[3], axis[1]])))  # F[i, j] at (p_j, q_i)
    _, W = field_on_grid(game, Method("consensus", consensus=0.4), 1.5, 5)
    assert np.allclose(W[0, 4, 0], consensus_field(game, np.array([axis[0], axis[4]]), 0.4))
    assert explore(ExplorerSettings(method="consensus", consensus=0.4)).field_name == "w = v - 0.4 v'^T v"


@pytest.mark.parametrize("method, rho", [
    ("simgd", xy_rho_simultaneous(0.5)),
    ("altgd", xy_rho_alternating(0.5)),
    ("extragradient", xy_rho_extragradient(0.5)),
])
def test_xy_spectral_radius_matches_the_closed_form(method, rho):
    assert explore(ExplorerSettings(game="xy", method=method, h=0.5)).spectral_radius == pytest.approx(rho)


def test_the_verdicts_and_the_note():
    gan = explore(ExplorerSettings())  # simultaneous GD on the GAN: unstable, yet the run only circles
    assert (gan.verdict, gan.simulated_verdict, gan.agree) == ("diverges", "cycles", False)
    assert gan.note.startswith("the linearization says unstable") and "rho(F_h') = 1.00125 > 1" in gan.reason
    r1 = explore(ExplorerSettings(reg="r1", gamma=1.0))
    assert (r1.verdict, r1.simulated_verdict, r1.agree, r1.note) == ("converges", "converges", True, "")
    flow = explore(ExplorerSettings(game="xy", method="flow"))
    assert flow.verdict == "cycles" and flow.reason.startswith("max Re lambda = 0")
    gp = explore(ExplorerSettings(loss="wgan", reg="wgan-gp"))
    assert "kink" in gp.reason and "kink" in gp.note


def test_a_blow_up_is_cut_off_with_inf():
    frame = explore(ExplorerSettings(game="xy", method="simgd", h=3.0, steps=1000))
    d = frame.distance
    assert frame.simulated_verdict == "diverges" and np.isinf(d[-1]) and np.isfinite(d[0])
    assert np.all(np.isinf(frame.planes[0].trajectory[np.isinf(d)]))


def test_a_start_at_the_equilibrium_is_refused():
    with pytest.raises(ValueError, match="the start is the equilibrium"):
        explore(ExplorerSettings(start=(0.0, 0.0)))


@pytest.mark.parametrize("verdict, flow, start", [
    ("converges", False, "rho(F_h') = 0.9 < 1"), ("diverges", False, "rho(F_h') = 0.9 > 1"),
    ("cycles", False, "rho(F_h') = 1:"), ("converges", True, "max Re lambda = -0.5 < 0"),
    ("diverges", True, "max Re lambda = -0.5 > 0"), ("cycles", True, "max Re lambda = 0:"),
])
def test_linear_reason_states_the_criterion(verdict, flow, start):
    assert linear_reason(verdict, 0.9, np.array([-0.5 + 1j, -0.5 - 1j]), flow=flow).startswith(start)


def test_frames_of_the_same_run_share_the_simulation():
    a = explore(ExplorerSettings(game="xy", method="altgd", h=1.0, steps=6))
    b = explore(ExplorerSettings(game="xy", method="altgd", h=1.0, steps=6, lim=4.0))
    assert np.array_equal(a.planes[0].trajectory, b.planes[0].trajectory)
    assert a.axis[-1] == 2.0 and b.axis[-1] == 4.0
    assert np.array_equal(a.planes[0].trajectory[-1], [1.0, 1.0])  # the 6-cycle of alternating GD at h = 1
    assert xy_game() == make_game(ExplorerSettings(game="xy"))
