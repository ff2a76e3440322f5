"""The FFHQ config-f layout at full size, built on the meta device (no memory, no compute).

The face studio's scale check (benchmarks/studio_scale.py, docs/studio_scale.md) runs the real generator;
these tests check the layout it relies on in well under a second: the ``config-f`` preset at 1024 px gives
18 x 512 W+ styles and the official parameter count, the studio adapter sees 18 rows and 17 noise maps, and
a W+ latent and its noise maps receive gradients through the whole 1024 px synthesis (shapes only).
"""

from __future__ import annotations

import pytest
import torch

from latentstudio.models.stylegan2 import Generator, StyleGAN2Config
from latentstudio.presets import preset
from latentstudio.studio.stylegan import StyleGAN2Adapter


def _config_f(resolution: int | None = None) -> StyleGAN2Config:
    model = preset("stylegan2", "config-f")["model"]
    return StyleGAN2Config(**(model if resolution is None else {**model, "resolution": resolution}))


def _meta_generator(cfg: StyleGAN2Config) -> Generator:
    with torch.device("meta"):
        return Generator(cfg)


def test_config_f_preset_is_the_ffhq_1024_layout():
    cfg = _config_f()
    assert cfg.resolution == 1024 and cfg.num_ws == 18
    assert (cfg.z_dim, cfg.w_dim, cfg.mapping_layers) == (512, 512, 8)
    assert [cfg.channels(r) for r in cfg.block_resolutions] == [512, 512, 512, 512, 512, 256, 128, 64, 32]


@pytest.mark.parametrize(("resolution", "num_ws", "params"), [(1024, 18, 30_370_060), (256, 14, 30_034_338)])
def test_config_f_parameter_count_on_the_meta_device(resolution, num_ws, params):
    G = _meta_generator(_config_f(resolution))
    assert all(p.device.type == "meta" for p in G.parameters())  # nothing allocated
    assert (G.num_ws, G.w_dim, G.img_resolution) == (num_ws, 512, resolution)
    assert sum(p.numel() for p in G.parameters()) == params  # 30,370,060: the official config-f G
    assert sum(p.numel() for p in G.mapping.parameters()) == 8 * (512 * 512 + 512)


def test_studio_adapter_sees_18_rows_and_17_noise_maps_at_1024():
    m = StyleGAN2Adapter(_meta_generator(_config_f()))
    assert (m.num_layers, m.latent_dim, m.resolution, m.channels) == (18, 512, 1024, 3)
    assert m.spaces == ("w", "w+") and m.default_space == "w+"
    assert m.layer_groups == {"all": (0, 18), "coarse": (0, 4), "middle": (4, 8), "fine": (8, 18)}
    noise = m.noise_buffers()
    assert len(noise) == 17  # one per modulated 3x3 conv: b4.conv1, then conv0 + conv1 of 8 blocks
    assert noise["b1024.conv1.noise_const"].shape == (1024, 1024)


def test_wplus_and_noise_gradients_flow_through_the_1024_synthesis():
    G = _meta_generator(_config_f()).eval().requires_grad_(False)
    m = StyleGAN2Adapter(G)
    ws = torch.empty(1, 18, 512, device="meta", requires_grad=True)
    noise = list(m.noise_buffers().values())
    for b in noise:
        b.requires_grad_(True)
    img = m.synthesize(ws)
    assert img.shape == (1, 3, 1024, 1024)
    img.square().mean().backward()
    assert ws.grad is not None and ws.grad.shape == (1, 18, 512)
    assert all(b.grad is not None and b.grad.shape == b.shape for b in noise)
