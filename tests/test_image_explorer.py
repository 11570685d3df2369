"""The image-track explorer (latent walks, the truncation trick) on a small stand-in generator, and its widget."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("anywidget")

from gancourse.deep.explorer_widget import (  # noqa: E402
    CONTROL_SPECS,
    CONTROLS,
    ImageExplorer,
    ImageExplorerSettings,
    ImageExplorerWidget,
    diversity,
    image_explorer,
    image_frame,
    latent_codes,
    truncate,
)
from gancourse.deep.latent import interpolate_latents  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
Z_DIM, SIZE = 8, 6


class Generator:
    """A fixed smooth map from codes (N, 8) to images (N, 1, 6, 6) in [-1, 1]; counts the codes it is given."""

    def __init__(self):
        self.W = torch.randn(Z_DIM, SIZE * SIZE, generator=torch.Generator().manual_seed(0))
        self.calls = 0

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += len(z)
        return torch.tanh(z @ self.W / 3).reshape(-1, 1, SIZE, SIZE)


@pytest.fixture
def explorer() -> ImageExplorer:
    return ImageExplorer(Generator(), Z_DIM, n_walk=5, grid=3)


@pytest.mark.parametrize("kwargs, match", [
    ({"method": "cubic"}, "slerp"), ({"t": 1.5}, r"t must be a number in \[0, 1\]"), ({"psi": -0.1}, "psi"),
    ({"seed_a": -1}, "seed_a"), ({"psi": True}, "psi"),
])
def test_bad_settings_are_refused_by_name(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        ImageExplorerSettings(**kwargs)


def test_truncation_pulls_codes_to_the_prior_mean():
    z = torch.randn(4, Z_DIM)
    assert torch.equal(truncate(z, 1.0), z) and torch.all(truncate(z, 0.0) == 0)
    assert torch.allclose(truncate(z, 0.5).norm(dim=1), 0.5 * z.norm(dim=1))


def test_codes_depend_on_their_seed_only():
    assert torch.equal(latent_codes(3, 2, Z_DIM), latent_codes(3, 2, Z_DIM))
    assert not torch.equal(latent_codes(3, 2, Z_DIM), latent_codes(4, 2, Z_DIM))


def test_the_walk_and_the_image_at_t(explorer):
    s = ImageExplorerSettings(seed_a=2, seed_b=5, method="lerp", psi=0.8)
    walk = explorer.walk(s)
    assert walk.shape == (5, SIZE, SIZE, 1) and walk.dtype == np.float32 and 0 <= walk.min() <= walk.max() <= 1
    z0, z1 = latent_codes(2, 1, Z_DIM)[0], latent_codes(5, 1, Z_DIM)[0]
    codes = 0.8 * interpolate_latents(z0, z1, n=5, method="lerp")
    expected = ((explorer.generate(codes) + 1) / 2).permute(0, 2, 3, 1).numpy()
    assert np.allclose(walk, expected, atol=1e-6)
    for k in range(5):  # the image at t = k / 4 is frame k of the walk
        at = explorer.at(ImageExplorerSettings(seed_a=2, seed_b=5, method="lerp", psi=0.8, t=k / 4))
        assert np.allclose(at[0], walk[k], atol=1e-5)


def test_slerp_keeps_the_norm_of_a_typical_code(explorer):
    mid = dict(seed_a=0, seed_b=1, t=0.5)
    on_circle = explorer.walk_code(ImageExplorerSettings(method="slerp", **mid)).norm()
    on_line = explorer.walk_code(ImageExplorerSettings(method="lerp", **mid)).norm()
    ends = latent_codes(0, 1, Z_DIM).norm()
    assert on_line < 0.9 * on_circle and abs(on_circle - ends) < 0.3 * ends


def test_diversity_falls_to_zero_with_psi(explorer):
    spread = [diversity(explorer.samples(psi)) for psi in (0.0, 0.5, 1.0, 1.5)]
    assert spread[0] == 0.0 and spread == sorted(spread) and spread[1] > 0


def test_images_are_cached_per_set_of_codes(explorer):
    s = ImageExplorerSettings()
    explorer.walk(s)
    explorer.samples(1.0)
    calls = explorer.generate.calls
    explorer.walk(s)
    explorer.samples(1.0)
    assert explorer.generate.calls == calls
    explorer.at(s)
    assert explorer.generate.calls == calls + 1  # moving t runs the generator on one code


def test_the_thread_count_is_restored(explorer):
    before = torch.get_num_threads()
    explorer.samples(0.7)
    assert torch.get_num_threads() == before


def test_a_generator_with_the_wrong_output_is_named():
    bad = ImageExplorer(lambda z: torch.zeros(len(z), SIZE, SIZE), Z_DIM)
    with pytest.raises(ValueError, match=r"\(N, C, S, S\)"):
        bad.samples(1.0)


def test_frame_messages_are_strict_json_with_float32_buffers(explorer):
    s = ImageExplorerSettings(t=0.25, psi=0.5)
    msg, buffers = image_frame(explorer, s, request=4)
    json.dumps(msg, allow_nan=False)
    assert msg["request"] == 4 and msg["size"] == SIZE and msg["channels"] == 1 and msg["grid"] == 3
    arrays = dict(zip(msg["buffers"], (np.frombuffer(b, dtype=np.float32) for b in buffers)))
    assert np.allclose(arrays["grid"].reshape(9, SIZE, SIZE, 1), explorer.samples(0.5))
    assert msg["diversity"] == pytest.approx(diversity(explorer.samples(0.5)))


def test_the_widget_answers_each_change_with_a_frame_or_an_error(explorer):
    assert [c["name"] for c in CONTROL_SPECS] == list(CONTROLS)
    w = ImageExplorerWidget(explorer)
    w._on_msg(w, {"type": "change", "request": 2, "changes": {"psi": 0.3}}, [])
    assert w.last["type"] == "frame" and w.last["request"] == 2 and w.last["settings"]["psi"] == 0.3
    w._on_msg(w, {"type": "change", "request": 3, "changes": {"psi": 9}}, [])
    assert w.last["type"] == "error" and "psi" in w.last["error"] and w.current.psi == 0.3


def test_image_explorer_reads_a_trainer():
    class Trainer:
        class config:  # noqa: N801 - the shape of GANTrainer.config
            z_dim = Z_DIM

        generate = Generator()

    w = image_explorer(Trainer(), seed_a=7)
    assert w.current.seed_a == 7 and w.frame()["settings"]["seed_a"] == 7
    with pytest.raises(ValueError, match="valid ones"):
        image_explorer(Trainer(), truncation=0.5)


def test_notebook_07_shows_the_explorer_in_one_tagged_cell():
    nb = nbformat.read(ROOT / "notebooks" / "07_dcgan.ipynb", as_version=4)
    cells = [c for c in nb.cells if "image-explorer" in c.metadata.get("tags", [])]
    assert len(cells) == 1 and "image_explorer(trainer)" in cells[0].source
