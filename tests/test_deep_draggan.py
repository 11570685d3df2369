"""DragGAN in miniature: feature sampling, motion supervision, point tracking, the drag loop, inversion, the
StyleGAN adapter and the drag evaluation."""
from __future__ import annotations

import pytest
import torch

from gancourse.deep.draggan import (
    check_mask, disk_points, drag, handle_distances, invert, motion_supervision_loss, reached, sample_features,
    segment_mask, square_points, stylegan_renderer, track_points,
)
from gancourse.deep.draggan_eval import drag_tasks, evaluate_drags, generated_styles, ink_centroid_shift
from gancourse.deep.stylegan import StyleGenerator

torch.set_num_threads(1)
S = 32


class BlobRenderer:
    """A stand-in generator: the image is a Gaussian blob whose centre is ``S/2 + 4 ws[0, 0, :2]``; the other
    styles only change its brightness. Features: the blob and the coordinates relative to its centre, so each
    point of the blob has its own feature and the features move with it."""

    num_ws, w_dim = 3, 4

    def __init__(self, sigma: float = 3.0):
        self.sigma = sigma
        self.w_avg = torch.zeros(self.w_dim)

    def centre(self, ws: torch.Tensor) -> torch.Tensor:
        return S / 2 + 4 * ws[0, 0, :2]

    def __call__(self, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.centre(ws)
        ys, xs = torch.meshgrid(torch.arange(S).float(), torch.arange(S).float(), indexing="ij")
        dx, dy = xs - c[0], ys - c[1]
        blob = torch.exp(-(dx ** 2 + dy ** 2) / (2 * self.sigma ** 2)) * (1 + 0.1 * ws[0, 1:, 0].sum())
        return (2 * blob - 1)[None, None], torch.stack([blob, dx / 8, dy / 8])[None]


def ramp(fx: float, fy: float, channels: int = 1) -> torch.Tensor:
    """Feature map (1, C, S, S) with F(x, y) = fx x + fy y in every channel."""
    ys, xs = torch.meshgrid(torch.arange(S).float(), torch.arange(S).float(), indexing="ij")
    return (fx * xs + fy * ys).expand(1, channels, S, S).clone()


# ------------------------------------------------------------------------------------------ sampling
def test_sample_features_is_exact_on_pixels_and_linear_between():
    feat = torch.randn(1, 5, S, S, generator=torch.Generator().manual_seed(0))
    pts = torch.tensor([[3.0, 7.0], [0.0, 0.0], [31.0, 31.0]])
    assert torch.allclose(sample_features(feat, pts), feat[0, :, pts[:, 1].long(), pts[:, 0].long()].T, atol=1e-6)
    mid = sample_features(feat, torch.tensor([[3.5, 7.0], [3.0, 7.25]]))
    assert torch.allclose(mid[0], (feat[0, :, 7, 3] + feat[0, :, 7, 4]) / 2, atol=1e-6)
    assert torch.allclose(mid[1], 0.75 * feat[0, :, 7, 3] + 0.25 * feat[0, :, 8, 3], atol=1e-6)
    # bilinear interpolation reproduces a linear map exactly
    pts = torch.rand(20, 2, generator=torch.Generator().manual_seed(1)) * (S - 1)
    assert torch.allclose(sample_features(ramp(2.0, -3.0), pts)[:, 0], 2 * pts[:, 0] - 3 * pts[:, 1], atol=1e-4)


def test_sample_features_gradient_and_bad_shapes():
    feat = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    pts = torch.tensor([[1.3, 2.6], [4.9, 0.2]])
    assert torch.autograd.gradcheck(lambda f: sample_features(f, pts), (feat,))
    with pytest.raises(ValueError, match=r"\(1, F, H, W\)"):
        sample_features(torch.zeros(2, 3, 4, 4), pts)
    with pytest.raises(ValueError, match=r"\(K, 2\)"):
        sample_features(torch.zeros(1, 3, 4, 4), torch.zeros(3))


def test_neighbourhoods():
    q = disk_points(torch.tensor([10.0, 10.0]), 1.0, (S, S))
    assert sorted(map(tuple, q.tolist())) == [(9, 10), (10, 9), (10, 10), (10, 11), (11, 10)]
    assert len(disk_points(torch.tensor([0.0, 0.0]), 1.0, (S, S))) == 3  # clipped at the corner
    assert len(disk_points(torch.tensor([10.0, 10.0]), 2.0, (S, S))) == 13
    assert len(square_points(torch.tensor([10.4, 9.6]), 2, (S, S))) == 25
    assert square_points(torch.tensor([10.4, 9.6]), 0, (S, S)).tolist() == [[10.0, 10.0]]
    with pytest.raises(ValueError, match="inside the image"):
        disk_points(torch.tensor([40.0, 40.0]), 2.0, (S, S))


# ------------------------------------------------------------------------------------------ motion supervision
def test_motion_loss_value_on_a_ramp():
    p = torch.tensor([[10.0, 10.0]])
    # F = x, d = (1, 0): every q of the 13-pixel disk (r1 = 2) differs by 1 from q + d
    assert motion_supervision_loss(ramp(1, 0), p, torch.tensor([[15.0, 10.0]]), r1=2).item() == pytest.approx(13)
    # F = x + y in 3 channels, d = (3, 4) / 5: |F(q) - F(q + d)| = 7/5 per channel
    loss = motion_supervision_loss(ramp(1, 1, 3), p, torch.tensor([[13.0, 14.0]]), r1=2)
    assert loss.item() == pytest.approx(13 * 3 * 1.4, rel=1e-4)
    # two handles add up
    two = motion_supervision_loss(ramp(1, 0), torch.tensor([[10.0, 10.0], [20.0, 5.0]]),
                                  torch.tensor([[15.0, 10.0], [20.0, 9.0]]), r1=2)
    assert two.item() == pytest.approx(13)  # the second drags along y, where F = x does not change


def test_motion_loss_is_zero_when_features_do_not_change_along_d():
    rows = torch.randn(1, 4, S, 1, generator=torch.Generator().manual_seed(0)).expand(1, 4, S, S).contiguous()
    p = torch.tensor([[12.0, 12.0]])
    assert motion_supervision_loss(rows, p, torch.tensor([[20.0, 12.0]]), r1=3).item() == 0.0  # along x
    assert motion_supervision_loss(rows, p, torch.tensor([[12.0, 20.0]]), r1=3).item() > 0.1  # along y
    assert motion_supervision_loss(rows, p, p, r1=3).item() == 0.0  # a handle on its target adds nothing


def test_motion_loss_gradient_flows_only_through_the_shifted_features():
    feat = ramp(1, 0).requires_grad_(True)
    p = torch.tensor([[10.0, 10.0]])
    motion_supervision_loss(feat, p, torch.tensor([[15.0, 10.0]]), r1=2).backward()
    # L = sum_q |sg(F(q)) - F(q + (1, 0))| with F(q) - F(q + d) = -1: dL/dF = +1 at every q + (1, 0), else 0
    expected = torch.zeros(S, S)
    for x, y in disk_points(p[0], 2, (S, S)).long().tolist():
        expected[y, x + 1] = 1.0
    assert torch.equal(feat.grad[0, 0], expected)


def test_mask_term():
    feat0 = torch.randn(1, 2, S, S, generator=torch.Generator().manual_seed(0))
    delta = torch.randn(1, 2, S, S, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(S, S)
    mask[8:16, 8:16] = 1  # editable square
    p = torch.tensor([[12.0, 12.0]])
    loss = motion_supervision_loss(feat0 + delta, p, p, feat0=feat0, mask=mask, lam=20.0)
    assert loss.item() == pytest.approx(20 * (delta * (1 - mask)).abs().sum().item(), rel=1e-5)
    assert motion_supervision_loss(feat0 + delta * mask, p, p, feat0=feat0, mask=mask).item() == 0.0
    with pytest.raises(ValueError, match="feat0"):
        motion_supervision_loss(feat0, p, p, mask=mask)
    with pytest.raises(ValueError, match=r"shape \(32, 32\)"):
        check_mask(torch.ones(8, 8), (S, S))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        check_mask(torch.full((S, S), 2.0), (S, S))
    assert check_mask(None, (S, S)) is None


def test_segment_mask_covers_the_drag_and_nothing_far_from_it():
    m = segment_mask(torch.tensor([[10.0, 10.0]]), torch.tensor([[20.0, 10.0]]), 2.0, (S, S))
    assert m.shape == (S, S) and set(m.unique().tolist()) == {0.0, 1.0}
    assert m[10, 10:21].eq(1).all() and m[12, 15] == 1 and m[13, 15] == 0  # 2 px either side of the segment
    assert m[10, 7] == 0 and m[10, 8] == 1 and m[10, 23] == 0  # round caps at both ends
    assert m.sum() == pytest.approx(11 * 5 + 2 * 4, abs=0)  # 11 columns x 5 rows + 4 more pixels per cap
    assert check_mask(m, (S, S)) is not None


# ------------------------------------------------------------------------------------------ tracking, stopping
def test_tracking_finds_a_shifted_feature_inside_its_window_only():
    feat = torch.randn(1, 8, S, S, generator=torch.Generator().manual_seed(0))
    f_ref = feat[0, :, 13, 18][None]  # the feature now at (x, y) = (18, 13)
    p = torch.tensor([[15.0, 15.0]])
    assert track_points(feat, p, f_ref, r2=4).tolist() == [[18.0, 13.0]]
    off = track_points(feat, p, f_ref, r2=2)  # (18, 13) is 3 columns away: outside the window
    assert off.tolist() != [[18.0, 13.0]] and (off - p).abs().max() <= 2
    two = track_points(feat, torch.tensor([[15.0, 15.0], [5.0, 5.0]]),
                       torch.stack([feat[0, :, 13, 18], feat[0, :, 6, 4]]), r2=3)
    assert two.tolist() == [[18.0, 13.0], [4.0, 6.0]]
    with pytest.raises(ValueError, match="f_ref"):
        track_points(feat, p, torch.zeros(1, 3))


def test_stopping_rule():
    t = torch.tensor([[10.0, 10.0], [20.0, 20.0]])
    assert reached(t + torch.tensor([[1.0, 0.0], [0.0, -1.0]]), t, tolerance=1.0)
    assert not reached(t + torch.tensor([[1.0, 1.0], [0.0, 0.0]]), t, tolerance=1.0)  # sqrt(2) > 1
    assert reached(t + torch.tensor([[1.0, 1.0], [0.0, 0.0]]), t, tolerance=2.0)
    assert handle_distances(t + torch.tensor([[3.0, 4.0], [0.0, 0.0]]), t).tolist() == [5.0, 0.0]


# ------------------------------------------------------------------------------------------ the drag loop
def test_drag_moves_the_blob_to_the_target():
    R = BlobRenderer()
    ws0 = torch.zeros(1, 3, 4)
    h, t = torch.tensor([[16.0, 16.0], [18.0, 16.0]]), torch.tensor([[22.0, 19.0], [24.0, 19.0]])
    res = drag(R, ws0, h, t, steps=200, lr=0.05, n_edit=1, r1=2, r2=3)
    d0, d1 = res.distances()
    assert res.converged and (d1 <= 1.0).all() and (d1 < d0 / 5).all()
    assert res.shrink() > 0.8
    # the blob itself moved by about the drag (pixels, not features)
    assert (R.centre(res.ws) - (R.centre(ws0) + (t - h)[0])).norm() < 1.5
    assert torch.equal(res.path[0], h) and len(res.path) == res.steps + 1
    assert torch.equal(res.ws[:, 1:], ws0[:, 1:])  # only the first n_edit styles changed
    assert torch.equal(res.image0, R(ws0)[0])
    assert 0 < ink_centroid_shift(res.image0, res.image, h[0], t[0]) < 8


def test_drag_without_steps_or_with_handles_on_target_changes_nothing():
    R, ws0 = BlobRenderer(), torch.zeros(1, 3, 4)
    h = torch.tensor([[16.0, 16.0]])
    for res in (drag(R, ws0, h, h + 5, steps=0), drag(R, ws0, h, h, steps=20)):
        assert res.steps == 0 and torch.equal(res.ws, ws0) and len(res.path) == 1
    with pytest.raises(ValueError, match="n_edit"):
        drag(R, ws0, h, h, n_edit=4)
    with pytest.raises(ValueError, match="one shape"):
        drag(R, ws0, h, torch.zeros(2, 2))


def test_drag_with_a_mask_keeps_the_outside():
    R, ws0 = BlobRenderer(), torch.zeros(1, 3, 4)
    h, t = torch.tensor([[16.0, 16.0]]), torch.tensor([[22.0, 16.0]])
    everywhere = torch.ones(S, S)
    frozen = torch.zeros(S, S)  # nothing may change: the mask term fights the drag
    free = drag(R, ws0, h, t, steps=40, lr=0.05, n_edit=1, mask=everywhere)
    held = drag(R, ws0, h, t, steps=40, lr=0.05, n_edit=1, mask=frozen, lam=1000.0)
    assert free.distances()[1].item() <= 1.0
    assert held.distances()[1].item() > free.distances()[1].item() + 2


# ------------------------------------------------------------------------------------------ inversion
@pytest.mark.parametrize("space", ["w", "w+"])
def test_inversion_recovers_the_blob(space):
    R = BlobRenderer()
    ws_true = torch.zeros(1, 3, 4)
    ws_true[0, :, :2] = torch.tensor([0.8, -0.5])
    target, _ = R(ws_true)
    res = invert(R, target, R.w_avg, R.num_ws, space=space, steps=150, lr=0.05)
    start_error = (R(torch.zeros(1, 3, 4))[0] - target).square().mean().item()
    assert res.error < start_error / 50
    assert (R.centre(res.ws) - R.centre(ws_true)).norm() < 0.3
    assert res.ws.shape == (1, 3, 4)
    if space == "w":
        assert torch.equal(res.ws[:, 0], res.ws[:, 2])  # one w for every style


def test_inversion_arguments():
    R = BlobRenderer()
    with pytest.raises(ValueError, match="'w', 'w\\+'"):
        invert(R, torch.zeros(1, 1, S, S), R.w_avg, 3, space="z")
    with pytest.raises(ValueError, match="lenet on the generator's device: .*load_lenet\\('cpu'\\)"):
        invert(R, torch.zeros(1, 1, S, S), R.w_avg, 3, feature_weight=1.0)


# ------------------------------------------------------------------------------------------ StyleGAN adapter
def tiny_stylegan() -> StyleGenerator:
    torch.manual_seed(0)
    return StyleGenerator(z_dim=8, w_dim=8, mapping_layers=2, width=4)


def test_stylegan_renderer_exposes_features_through_a_hook():
    G = tiny_stylegan()
    R = stylegan_renderer(G, layer=4)
    assert R.n_spatial == 5 and R.num_ws == G.num_ws == 8  # styles at 4, 8, 8, 16, 16
    ws = G.ws(torch.randn(1, 8)).clone().requires_grad_(True)
    image, feat = R(ws)
    assert image.shape == (1, 1, S, S) and feat.shape == (1, 8, S, S)  # layer 4: 2 * width channels at 16x16
    assert not G.layers[4]._forward_hooks  # the hook is gone after the call
    assert torch.equal(image, G.synthesis(ws, noise_mode="const"))  # the image is G's, with fixed noise
    feat.abs().sum().backward()
    assert ws.grad[0, :5].abs().sum() > 0 and ws.grad[0, 5:].abs().sum() == 0  # layer 4 sees styles 0..4 only
    with pytest.raises(ValueError, match="0..6"):
        stylegan_renderer(G, layer=7)


def test_drag_and_evaluation_run_on_the_stylegan():
    G = tiny_stylegan()
    R = stylegan_renderer(G)
    ws = generated_styles(G, 3, seed=0, psi=0.7)
    with torch.no_grad():
        images = torch.cat([R(ws[i: i + 1])[0] for i in range(3)])
    images = images / images.abs().amax(dim=(1, 2, 3), keepdim=True)  # an untrained G: make sure there is "ink"
    tasks = drag_tasks(images, n=3, seed=0)
    from gancourse.deep.lenet import LeNet
    ev = evaluate_drags(R, ws, tasks, LeNet().eval(), steps=3, n_edit=R.n_spatial)
    assert ev.shrink.shape == (3,) and ev.kept.dtype == bool and (ev.steps <= 3).all()
    for task, res in zip(tasks, ev.results):
        assert torch.equal(res.ws[:, 5:], ws[task.index: task.index + 1, 5:])  # the later styles are kept
    assert set(ev.summary()) >= {"mean shrink", "label kept", "converged"}
    masked = evaluate_drags(R, ws, tasks[:1], LeNet().eval(), mask_radius=3.0, steps=2, n_edit=R.n_spatial)
    assert masked.steps.shape == (1,)


def test_drag_tasks_put_handles_on_ink_and_targets_at_the_distance():
    images = -torch.ones(4, 1, S, S)
    images[:, 0, 10:22, 14:18] = 1.0  # a vertical bar of ink
    tasks = drag_tasks(images, n=8, seed=3, distance=(3, 5))
    assert [t.index for t in tasks] == [0, 1, 2, 3, 0, 1, 2, 3]
    for t in tasks:
        x, y = map(int, t.handle)
        assert images[t.index, 0, y, x] > 0
        assert 2.5 <= t.distance <= 5.75 and all(3 <= v < S - 3 for v in t.target)
    assert tasks == drag_tasks(images, n=8, seed=3, distance=(3, 5))
    assert tasks != drag_tasks(images, n=8, seed=4, distance=(3, 5))
    with pytest.raises(ValueError, match="no ink"):
        drag_tasks(-torch.ones(1, 1, S, S), n=1)


# ------------------------------------------------------------------------------------------ the interactive demo
def test_drag_session_builds_on_its_drags_and_undoes_them():
    from gancourse.deep.draggan_widget import DragSession

    R = BlobRenderer()
    session = DragSession(R, torch.zeros(1, 3, 4), steps=100, lr=0.05, n_edit=1, tolerance=0.5)
    session.run((16, 16), (21, 16))
    first = R.centre(session.ws).clone()
    session.run((21, 16), (21, 21))  # the second drag starts where the first ended
    assert (first - torch.tensor([21.0, 16.0])).norm() < 1.0
    assert (R.centre(session.ws) - torch.tensor([21.0, 21.0])).norm() < 1.0
    session.undo()
    assert torch.equal(R.centre(session.ws), first)
    session.reset()
    assert torch.equal(session.ws, torch.zeros(1, 3, 4)) and session.history == []
    session.undo()  # nothing to undo: no error


def test_drag_widget_runs_the_session_from_its_button():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from gancourse.deep.draggan_widget import DragSession, drag_widget

    R = BlobRenderer()
    box = drag_widget(DragSession(R, torch.zeros(1, 3, 4), lr=0.05, n_edit=1), handle=(16, 16), target=(20, 16),
                      steps=50)
    box.buttons["Drag"].click()
    assert len(box.session.history) == 1 and "reached" in box.status.value
    assert (R.centre(box.session.ws) - torch.tensor([20.0, 16.0])).norm() < 1.5
    box.buttons["Reset"].click()
    assert box.session.history == []
