"""Matplotlib figures for the course (and the widgets built on them).

Sub-modules are imported on demand so that ``import gancourse`` stays light:
``gancourse.viz.toy`` (samples, losses, animations of toy GANs),
``gancourse.viz.dynamics`` (vector fields, eigenvalues, root loci, convergence),
``gancourse.viz.divergences`` (densities, optimal discriminators, transport plans),
``gancourse.viz.mode_collapse`` (lecture 5's data gallery, snapshots, mode coverage and trick bars),
``gancourse.viz.demo`` (``gancourse demo``: trains the recommended recipe and writes its figures),
``gancourse.viz.layout`` (figure sizes that fit a notebook column: at most 11 inches wide).
"""
