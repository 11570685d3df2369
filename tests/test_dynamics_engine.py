"""Integrators' chain-rule Jacobians, the MLP-GAN field, the command line and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from gancourse.cli import main
from gancourse.dynamics import (
    Bilinear,
    DiracGAN,
    METHODS,
    Method,
    analyze,
    eigenvalues,
    make_mlp_game,
    mlp_spectrum,
    numeric_jacobian,
    simulate,
    xy_game,
)
from gancourse.nn import MLP, apply_penalty, d_loss_bce, g_loss_nonsaturating

GAMES = [DiracGAN("gan"), DiracGAN("ns", "r1", gamma=0.7), DiracGAN("wgan", clip=3.0),
         DiracGAN("gan", "instance-noise", sigma=0.6), xy_game(), Bilinear(np.arange(6.0).reshape(2, 3) / 5)]
VARIANTS = [dict(), dict(n_d=3, n_g=2), dict(beta=0.4), dict(beta=-0.4, alternating=False)]


@pytest.mark.parametrize("game", GAMES, ids=lambda g: g.label())
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_step_jacobian_matches_centred_differences(game, method, variant):
    m = Method(method, h=0.25, consensus=0.6, **VARIANTS[variant])
    rng = np.random.default_rng(variant)
    s = rng.uniform(-0.8, 0.8, m.state_size(game))
    np.testing.assert_allclose(m.step_jacobian(game, s), numeric_jacobian(lambda q: m.step(game, q), s), atol=1e-8)


def test_alternating_order_discriminator_first():
    # one alternating step on xy from (1, 1) with h = 1: y moves first (to 2), then x sees the new y
    s = Method("altgd", h=1.0).step(xy_game(), np.array([1.0, 1.0]))
    assert s.tolist() == [-1.0, 2.0]
    s = Method("altgd", h=0.5, n_d=2, n_g=1).step(xy_game(), np.array([1.0, 0.0]))
    assert s.tolist() == [0.5, 1.0]  # y: 0 -> 0.5 -> 1.0, then x: 1 - 0.5 * 1.0


def test_weight_clipping_keeps_psi_in_the_box():
    traj = simulate(DiracGAN("wgan", clip=0.5), Method("simgd", h=0.3), [1.0, 0.2], 300)
    assert np.abs(traj.z[:, 1]).max() <= 0.5


def test_simulation_stops_at_blowup_and_pads_with_inf():
    traj = simulate(xy_game(), Method("simgd", h=3.0), [1.0, 1.0], 400)
    assert np.isinf(traj.final_distance)
    assert np.isfinite(traj.distance[:5]).all()


# ------------------------------------------------------------------ MLP GAN


def test_mlp_game_field_is_the_engine_gradient():
    game = make_mlp_game(loss="ns", gamma=0.5, perturb=0.2, seed=3)
    w = game.point
    v = game.field(w)
    G, D, x, z = game.G, game.D, game.x, game.z
    # discriminator loss and R1, differentiated by centred differences on psi only
    def d_objective(psi):
        D.theta[...] = psi
        fake = G.forward(z)
        loss = d_loss_bce(D.forward(x), D.forward(fake))[0]
        D.zero_grad()
        return loss + apply_penalty(D, x, "r1", 0.5)

    def g_objective(theta):
        G.theta[...] = theta
        return g_loss_nonsaturating(D.forward(G.forward(z)))[0]

    psi0, theta0 = w[game.n_g:].copy(), w[: game.n_g].copy()
    num_psi = numeric_jacobian(lambda p: np.array([d_objective(p)]), psi0)[0]
    D.theta[...] = psi0
    num_theta = numeric_jacobian(lambda t: np.array([g_objective(t)]), theta0)[0]
    np.testing.assert_allclose(v[game.n_g:], -num_psi, atol=1e-8)
    np.testing.assert_allclose(v[: game.n_g], -num_theta, atol=1e-8)


def test_mlp_game_starts_at_an_exact_equilibrium():
    game = make_mlp_game(loss="ns", gamma=1.0)
    assert np.linalg.norm(game.field(game.point)) < 1e-14


def test_r1_moves_the_mlp_spectrum_left():
    game = make_mlp_game(loss="ns", gamma=1.0)
    slowest = []
    for gamma in (0.0, 0.5, 2.0):
        lam = mlp_spectrum(game, gamma=gamma)
        nonzero = lam[np.abs(lam) > 1e-3]
        assert nonzero.size > 0
        assert nonzero.real.max() < 1e-9  # at an exact equilibrium nothing is repelling
        slowest.append(nonzero.real.max())
    assert slowest[0] > slowest[1] > slowest[2]
    assert game.gamma == 1.0  # mlp_spectrum restores the game's own weight


def test_mlp_spectrum_matches_eigenvalues_of_the_jacobian():
    game = make_mlp_game(loss="gan", gamma=0.3, perturb=0.05, seed=1)
    lam = mlp_spectrum(game)
    J = game.jacobian(game.point)
    assert J.shape == (game.dim, game.dim)
    np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(eigenvalues(J)), atol=1e-12)


def test_mlp_game_needs_float64():
    with pytest.raises(TypeError, match="float64"):
        from gancourse.dynamics import MLPGame

        MLPGame(MLP([1, 2, 1]), MLP([1, 2, 1]), np.zeros((4, 1)), np.zeros((4, 1)))


# ------------------------------------------------------------------ command line

FIELDS = {"continuous_eigenvalues", "discrete_eigenvalues", "spectral_radius", "verdict", "final_distance"}


def run_json(capsys, *argv):
    assert main(["dynamics", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_json_fields(capsys):
    out = run_json(capsys, "--game", "dirac", "--method", "simgd", "--loss", "gan", "--reg", "r1", "--gamma", "0.2",
                   "--h", "1", "--steps", "50", "--start", "0.01", "0.01")
    assert FIELDS <= set(out)
    assert all(len(p) == 2 for p in out["continuous_eigenvalues"] + out["discrete_eigenvalues"])
    np.testing.assert_allclose(out["continuous_eigenvalues"], [[-0.1, -np.sqrt(0.24)], [-0.1, np.sqrt(0.24)]], atol=1e-8)
    assert out["spectral_radius"] == pytest.approx(np.hypot(0.9, np.sqrt(0.24)), abs=1e-8)
    assert out["verdict"] == "diverges"


def test_cli_eta_alias_and_consensus_strength(capsys):
    a = run_json(capsys, "--game", "xy", "--method", "consensus", "--eta", "0.2", "--consensus", "0.5")
    b = run_json(capsys, "--game", "xy", "--method", "consensus", "--h", "0.2", "--consensus", "0.5")
    assert a == b
    assert a["spectral_radius"] == pytest.approx(np.sqrt((1 - 0.1) ** 2 + 0.04), abs=1e-8)
    assert a["verdict"] == "converges" and a["final_distance"] < 1e-6


def test_cli_six_cycle(capsys):
    out = run_json(capsys, "--game", "xy", "--method", "altgd", "--h", "1", "--steps", "6", "--start", "1", "1")
    assert out["verdict"] == "cycles"
    assert out["final_distance"] == pytest.approx(np.sqrt(2), abs=1e-12)


def test_cli_table_has_every_method_and_variant(capsys):
    rows = run_json(capsys, "--table", "--steps", "50")
    assert len(rows) == 9 * len(METHODS)
    assert {r["method"].split(" ")[0] for r in rows} == set(METHODS)
    games = {r["game"] for r in rows}
    assert len(games) == 9 and "xy" in games
    assert all(FIELDS <= set(r) for r in rows)
    assert main(["dynamics", "--table", "--steps", "20"]) == 0
    text = capsys.readouterr().out
    assert "closed-form eigenvalues" in text and text.count("\n") >= 9 * len(METHODS)
    assert " NO " not in text  # every closed form agrees with its numeric value


def test_cli_text_output(capsys):
    assert main(["dynamics", "--loss", "wgan", "--reg", "wgan-gp", "--steps", "100"]) == 0
    out = capsys.readouterr().out
    assert "verdict: does not converge" in out and "kink" in out


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["--h", "0"], "step size h must be a finite number > 0"),
        (["--method", "momentum", "--beta", "1.5"], "beta must lie in (-1, 1)"),
        (["--reg", "r1", "--gamma", "-1"], "gamma must be a finite number > 0"),
        (["--steps", "0"], "steps must be a positive integer"),
        (["--method", "altgd", "--n-d", "0"], "n_d must be a positive integer"),
        (["--start", "nan", "1"], "NaN/inf"),
    ],
)
def test_cli_bad_values_exit_2_with_a_message(capsys, argv, msg):
    assert main(["dynamics", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_cli_rejects_dirac_flags_on_xy(capsys):
    assert main(["dynamics", "--game", "xy", "--reg", "r1"]) == 2
    assert "gancourse dynamics: error: --reg applies only to --game dirac" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--method", "adam"], ["--game", "go"], ["--loss", "hinge"], ["--reg", "dropout"]])
def test_cli_unknown_choices(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["dynamics", *argv])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ------------------------------------------------------------------ bad input in the library


def test_library_errors():
    with pytest.raises(ValueError, match="unknown method 'adam'"):
        Method("adam")
    with pytest.raises(ValueError, match="unknown reg"):
        DiracGAN(reg="dropout")
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        DiracGAN(reg="instance-noise", sigma=0.0)
    with pytest.raises(ValueError, match=r"state must have shape \(2,\)"):
        simulate(xy_game(), Method(), [1.0, 2.0, 3.0], 5)
    with pytest.raises(ValueError, match="A must be a non-empty matrix"):
        Bilinear(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="A must have shape"):
        Bilinear(np.ones(3))
    with pytest.raises(ValueError, match="two coordinates"):
        from gancourse.viz.dynamics import plot_vector_field

        plot_vector_field(Bilinear(np.ones((2, 2))))
    with pytest.raises(ValueError, match="starts at the equilibrium"):
        analyze(xy_game(), Method(), start=[0.0, 0.0], steps=3)


# a flag that does not apply to the chosen game or method is refused and named, never ignored
MISUSED = [
    (["--gamma", "0.5"], "--gamma applies only with --reg r1 or r2 or wgan-gp (got --reg none)"),
    (["--reg", "r1", "--sigma", "2"], "--sigma applies only with --reg instance-noise (got --reg r1)"),
    (["--game", "xy", "--gamma", "1", "--method", "consensus"], "the consensus strength is --consensus"),
    (["--game", "xy", "--loss", "ns", "--clip", "1"], "--loss, --clip apply only to --game dirac"),
    (["--consensus", "2"], "--consensus applies only to --method consensus (got --method simgd)"),
    (["--method", "altgd", "--beta", "0.3"], "--beta applies only to --method momentum (got --method altgd)"),
    (["--no-alternating"], "--alternating applies only to --method momentum"),
    (["--n-g", "2"], "--n-g applies only to --method altgd"),
    (["--table", "--method", "simgd", "--game", "xy"], "--method, --game: --table runs every game and every method"),
    (["--table", "--trajectory"], "--trajectory: --table runs every game"),
    (["--format", "csv"], "--format lays out --table"),
]


@pytest.mark.parametrize("argv,msg", MISUSED, ids=[" ".join(a) for a, _ in MISUSED])
def test_cli_refuses_flags_that_do_not_apply(capsys, argv, msg):
    assert main(["dynamics", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gancourse dynamics: error: ") and msg in err, err


def test_cli_table_options_reach_their_rows(capsys):
    rows = run_json(capsys, "--table", "--steps", "5", "--gamma", "0.4", "--consensus", "2", "--beta", "-0.2")
    by = {(r["game"], r["method"].split(" ")[0]): r for r in rows}
    assert "gamma=0.4" in by[("GAN + R1 (gamma=0.4)", "simgd")]["game"]
    assert "strength=2" in by[("GAN", "consensus")]["method"]
    assert "beta=-0.2" in by[("GAN", "momentum")]["method"]
    lam = np.array(by[("GAN", "consensus")]["continuous_eigenvalues"])  # -c f'(0)^2 +- f'(0) i with c = 2
    np.testing.assert_allclose(sorted(lam[:, 0]), [-0.5, -0.5], atol=1e-6)


def test_cli_table_text_fits_100_columns_and_has_a_block_per_game(capsys):
    assert main(["dynamics", "--table", "--steps", "30"]) == 0
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) <= 100
    heads = [ln for ln in text.splitlines() if ln.endswith("(h = 0.1)")]
    assert len(heads) == 9 and heads[0] == "GAN (h = 0.1)" and heads[-1] == "xy (h = 0.1)"
    assert "+0.0000±0.5000i" in text  # a conjugate pair in one cell


def test_cli_table_markdown_and_csv(capsys):
    import csv
    import io

    assert main(["dynamics", "--table", "--steps", "30", "--format", "markdown"]) == 0
    md = capsys.readouterr().out.strip().splitlines()
    assert md[0].startswith("| game | method |") and md[1].startswith("|---|")
    assert len(md) == 2 + 9 * len(METHODS) and all(ln.count("|") == 10 for ln in md)
    assert main(["dynamics", "--table", "--steps", "30", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 9 * len(METHODS)
    simgd = next(r for r in rows if r["game"] == "GAN" and r["method"] == "simgd")
    assert float(simgd["spectral_radius"]) == pytest.approx(np.sqrt(1 + 0.1**2 / 4), abs=1e-9)


def test_cli_trajectory_prints_the_six_cycle(capsys):
    assert main(["dynamics", "--game", "xy", "--method", "altgd", "--eta", "1", "--steps", "6", "--trajectory"]) == 0
    lines = capsys.readouterr().out.splitlines()
    k = lines.index("    step  state (x, y)")
    states = [tuple(float(v) for v in ln.split()[1:]) for ln in lines[k + 1:k + 8]]
    assert states == [(1, 1), (-1, 2), (-2, 1), (-1, -1), (1, -2), (2, -1), (1, 1)]
    out = run_json(capsys, "--game", "xy", "--method", "altgd", "--eta", "1", "--steps", "6", "--trajectory")
    assert out["trajectory"][3] == [-1.0, -1.0]


def test_cli_long_trajectory_is_shortened_in_text(capsys):
    assert main(["dynamics", "--steps", "500", "--trajectory"]) == 0
    out = capsys.readouterr().out
    assert "(301 states not shown; --json --trajectory gives them all)" in out
    assert "\n     500  " in out and "\n      99  " in out and "\n     100  " not in out
