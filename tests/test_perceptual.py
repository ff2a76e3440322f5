"""Perceptual distances and perceptual path length (closed forms and stand-in weight files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentstudio.errors import ExtractorWeightsMissing, LatentStudioError, ShapeError
from latentstudio.metrics import load_perceptual, perceptual_distance, perceptual_path_length
from latentstudio.metrics.perceptual import VGG16_WEIGHTS_FILE, vgg16_weights_path
from latentstudio.metrics.ppl import filtered_mean


def test_pyramid_l2_closed_form_and_invariants():
    d = load_perceptual("pyramid-l2")
    assert not d.is_lpips and "NOT LPIPS" in d.label
    a = torch.full((2, 3, 16, 16), 0.25)
    b = torch.full((2, 3, 16, 16), -0.5)
    torch.testing.assert_close(d(a, b), torch.full((2,), 0.75**2))  # constant images: (c1 - c2)^2
    x, y = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(d(x, x), torch.zeros(3))
    torch.testing.assert_close(d(x, y), d(y, x))
    assert (d(x, y) > 0).all()
    grey = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(d(grey, -grey), d(grey.repeat(1, 3, 1, 1), -grey.repeat(1, 3, 1, 1)))
    torch.testing.assert_close(perceptual_distance(a, b, "pyramid-l2"), d(a, b))


def test_bad_inputs_and_missing_weights_fail_fast():
    with pytest.raises(LatentStudioError, match="unknown perceptual distance 'ssim'"):
        load_perceptual("ssim")
    with pytest.raises(ShapeError, match="same shape"):
        load_perceptual("pyramid-l2")(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 4, 4))
    # TORCH_HOME is an empty temp folder in tests: a clear error naming the file, no download
    with pytest.raises(ExtractorWeightsMissing, match=VGG16_WEIGHTS_FILE) as err:
        load_perceptual("vgg16-features")
    assert str(vgg16_weights_path()) in str(err.value) and "pyramid-l2" in str(err.value)


@pytest.fixture
def standin_weights(tmp_path):
    """A VGG16 state dict in torchvision's layout at the hub-cache path and an LPIPS v0.1 lin file."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    feats = make_layers(cfgs["D"], batch_norm=False)
    path = vgg16_weights_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, path)
    lin = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    lin_path = tmp_path / "vgg.pth"
    torch.save(lin, lin_path)
    yield feats.eval(), lin, lin_path
    path.unlink()


def test_lpips_vgg_matches_its_definition(standin_weights):
    feats, lin, lin_path = standin_weights
    d = load_perceptual("lpips-vgg", lin_weights=lin_path)
    assert d.is_lpips and d.name == "lpips-vgg"
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    got = d(a, b)
    # explicit computation: LPIPS scaling, normalised relu1_2 .. relu5_3, weighted squared differences
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    ha, hb = (a - shift) / scale, (b - shift) / scale
    want = torch.zeros(2)
    for i, (s, e) in enumerate(((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))):
        with torch.no_grad():
            ha, hb = feats[s:e](ha), feats[s:e](hb)
        na = ha / (ha.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = hb / (hb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        want += ((na - nb) ** 2 * lin[f"lin{i}.model.1.weight"]).sum(1).mean([1, 2])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(d(a, a), torch.zeros(2))
    # gradients reach the images (projection uses this), never the network
    x = a.clone().requires_grad_(True)
    d(x, b).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in d.parameters())
    base = load_perceptual("vgg16-features")
    assert not base.is_lpips and "NOT LPIPS" in base.label


def test_filtered_mean_drops_outer_percentiles():
    v = np.concatenate([np.ones(990), np.full(5, 1000.0), np.full(5, -1000.0)])
    assert filtered_mean(v) == pytest.approx(1.0)


class _LinearG(torch.nn.Module):
    """Stub generator: w = A z (one style), image = constant plane of value v . w."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.A = torch.nn.Parameter(torch.randn(4, 4, generator=g))
        self.v = torch.randn(4, generator=g)
        self.z_dim = 4

    def mapping(self, z):
        return (z @ self.A.t())[:, None, :]

    def synthesis(self, ws, noise_mode="const"):
        return (ws[:, 0] @ self.v)[:, None, None, None].expand(-1, 3, 8, 8)


def test_ppl_closed_form_on_a_linear_generator():
    G = _LinearG()
    d = load_perceptual("pyramid-l2")
    ppl, values = perceptual_path_length(G, d, num_samples=64, space="w", sampling="full", epsilon=1e-2, seed=3)
    # d = (eps * v.(w2 - w1))^2 / eps^2 = (v.(w2 - w1))^2, whatever t is
    g = torch.Generator().manual_seed(3)
    want = []
    for n in (32, 32):
        z = torch.randn(2 * n, 4, generator=g)
        torch.rand(n, 1, generator=g)
        w = G.mapping(z)[:, 0]
        want.append(((w[n:] - w[:n]) @ G.v).double() ** 2)
    want = torch.cat(want).detach().numpy()
    np.testing.assert_allclose(values, want, rtol=2e-3, atol=1e-6)
    assert ppl == pytest.approx(filtered_mean(want), rel=2e-3)
    with pytest.raises(LatentStudioError, match="space"):
        perceptual_path_length(G, d, num_samples=4, space="x")
