"""Game dynamics: the Dirac-GAN and bilinear games as vector fields, integrators, Jacobians and verdicts.

NumPy only (SciPy for the adaptive ODE solver and eigenvalue matching).

>>> from gancourse.dynamics import DiracGAN, Method, analyze
>>> analyze(DiracGAN(reg="r1", gamma=1.0), Method("simgd", h=0.1)).verdict
'converges'
"""
from gancourse.dynamics.analysis import (
    Analysis,
    analyze,
    closed_form_continuous,
    closed_form_discrete,
    convergence_table,
    format_number,
    format_table,
    verdict_note,
)
from gancourse.dynamics.closed_forms import (
    alternating_2x2,
    dirac_consensus,
    dirac_continuous_eigenvalues,
    dirac_instance_noise,
    dirac_jacobian,
    dirac_r1,
    dirac_simgd,
    dirac_unregularized,
    dirac_wgan,
    discrete_from_continuous,
    xy_rho,
    xy_rho_alternating,
    xy_rho_consensus,
    xy_rho_extragradient,
    xy_rho_optimistic,
    xy_rho_simultaneous,
)
from gancourse.dynamics.games import LOSSES, REGULARIZERS, Bilinear, DiracGAN, Game, xy_game
from gancourse.dynamics.integrators import (
    METHODS,
    Method,
    Trajectory,
    consensus_field,
    flow_trajectory,
    simulate,
    wants_progress,
)
from gancourse.dynamics.jacobian import (
    continuous_verdict,
    critical_step_size,
    discrete_verdict,
    eigenvalue_mismatch,
    eigenvalues,
    numeric_jacobian,
    spectral_radius,
    trajectory_verdict,
)
from gancourse.dynamics.mlp_game import MLPGame, find_stationary_point, make_mlp_game, mlp_spectrum

__all__ = [
    "alternating_2x2",
    "Analysis",
    "analyze",
    "Bilinear",
    "closed_form_continuous",
    "closed_form_discrete",
    "consensus_field",
    "continuous_verdict",
    "convergence_table",
    "critical_step_size",
    "DiracGAN",
    "dirac_consensus",
    "dirac_continuous_eigenvalues",
    "dirac_instance_noise",
    "dirac_jacobian",
    "dirac_r1",
    "dirac_simgd",
    "dirac_unregularized",
    "dirac_wgan",
    "discrete_from_continuous",
    "discrete_verdict",
    "eigenvalue_mismatch",
    "eigenvalues",
    "find_stationary_point",
    "flow_trajectory",
    "format_number",
    "format_table",
    "Game",
    "LOSSES",
    "make_mlp_game",
    "Method",
    "METHODS",
    "MLPGame",
    "mlp_spectrum",
    "numeric_jacobian",
    "REGULARIZERS",
    "simulate",
    "spectral_radius",
    "trajectory_verdict",
    "wants_progress",
    "Trajectory",
    "verdict_note",
    "xy_game",
    "xy_rho",
    "xy_rho_alternating",
    "xy_rho_consensus",
    "xy_rho_extragradient",
    "xy_rho_optimistic",
    "xy_rho_simultaneous",
]
