"""Latent-space geometry: interpolation paths and the truncation trick (closed forms)."""

from __future__ import annotations

import math

import pytest
import torch

from latentstudio.errors import ConfigError
from latentstudio.latents import interpolation_path, lerp, slerp, truncate, unit_slerp


def test_lerp_and_slerp_ends_and_midpoints():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(8, generator=g), torch.randn(8, generator=g)
    t = torch.linspace(0, 1, 5)[:, None]
    line = lerp(a, b, t)
    torch.testing.assert_close(line[[0, -1]], torch.stack([a, b]))
    torch.testing.assert_close(line[2], (a + b) / 2)
    arc = slerp(a, b, t)
    torch.testing.assert_close(arc[[0, -1]], torch.stack([a, b]))
    # the norm is interpolated linearly and the angle to a grows linearly with t
    torch.testing.assert_close(arc.norm(dim=1), (1 - t[:, 0]) * a.norm() + t[:, 0] * b.norm())
    omega = torch.acos(torch.dot(a, b) / (a.norm() * b.norm()))
    angles = torch.acos(((arc @ a) / (arc.norm(dim=1) * a.norm())).clamp(-1, 1))
    torch.testing.assert_close(angles, t[:, 0] * omega, atol=1e-4, rtol=1e-4)


def test_slerp_of_parallel_vectors_is_linear():
    a = torch.tensor([1.0, 2.0, 2.0])
    torch.testing.assert_close(slerp(a, 3 * a, torch.tensor([[0.5]]))[0], 2 * a)


def test_unit_slerp_stays_on_the_unit_sphere_at_the_right_angle():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 0.5]])
    out = unit_slerp(a, b, torch.tensor([[1 / 3]]))
    torch.testing.assert_close(out, torch.tensor([[math.cos(math.pi / 6), math.sin(math.pi / 6)]]))


def test_truncation_pulls_towards_the_centre():
    x, c = torch.tensor([[2.0, -4.0]]), torch.tensor([1.0, 1.0])
    torch.testing.assert_close(truncate(x, c, 0.5), torch.tensor([[1.5, -1.5]]))
    assert torch.equal(truncate(x, c, 1.0), x) and torch.equal(truncate(x, c, 0.0), c[None])


def test_interpolation_path_shapes_and_errors():
    a, b = torch.zeros(3, 2), torch.ones(3, 2)
    p = interpolation_path(a, b, 4, "lerp")
    assert p.shape == (4, 3, 2) and torch.equal(p[0], a) and torch.equal(p[-1], b)
    assert interpolation_path(a, b, 3, "slerp").shape == (3, 3, 2)
    with pytest.raises(ConfigError, match="steps must be >= 2"):
        interpolation_path(a, b, 1)
    with pytest.raises(ConfigError, match="one of lerp, slerp"):
        interpolation_path(a, b, 3, "cubic")
    with pytest.raises(ConfigError, match="differ in shape"):
        interpolation_path(a, torch.ones(2), 3)
