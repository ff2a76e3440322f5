"""Safe import of official StyleGAN2 weights: stand-in files built here in each real format.

Each test writes a small network in the source format's exact structure and key names
(TensorFlow dnnlib Network pickles, stylegan2-ada-pytorch persistence pickles, rosinality .pt),
converts it, and checks that every tensor lands in the right parameter.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentstudio.errors import CheckpointError, ConfigError
from latentstudio.models.stylegan2 import (
    Discriminator,
    Generator,
    StyleGAN2Config,
    load_discriminator,
    load_generator,
    z_from_seed,
)
from latentstudio.models.stylegan2.convert import UnsafePickleError, convert, detect_format

CFG = StyleGAN2Config(resolution=16, z_dim=16, w_dim=16, channel_base=128, channel_max=16, mapping_layers=2)


def _nets(seed: int = 0, cfg: StyleGAN2Config = CFG):
    torch.manual_seed(seed)
    G, D = Generator(cfg), Discriminator(cfg)
    with torch.no_grad():  # non-trivial values everywhere (biases and strengths start at 0 / 1)
        for p in [*G.parameters(), *D.parameters()]:
            p.add_(torch.randn_like(p) * 0.1)
        G.mapping.w_avg.normal_()
    return G.eval(), D.eval()


def _assert_same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)


# ------------------------------------------------------------------------------------- TensorFlow


@pytest.fixture
def fake_dnnlib(monkeypatch):
    """Importable ``dnnlib.tflib.network.Network`` so the test can write a genuine dnnlib pickle."""

    class Network:
        def __init__(self, name, variables, components=None, static_kwargs=None):
            self.name, self.vars, self.components, self.kw = name, variables, components or {}, static_kwargs or {}

        def __getstate__(self):
            return {"version": 4, "name": self.name, "static_kwargs": dict(self.kw),
                    "components": dict(self.components), "build_module_src": "import os\nos.abort()\n",
                    "build_func_name": "G_main", "variables": list(self.vars.items())}

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    mods = {n: types.ModuleType(n) for n in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network")}
    mods["dnnlib.tflib.network"].Network = Network
    for n, m in mods.items():
        monkeypatch.setitem(sys.modules, n, m)
    return Network


def _tf_variables(G: Generator, D: Discriminator):
    """Our networks written in the TF layout (the inverse of the documented transforms)."""
    sd = {k: v.numpy().astype(np.float32) for k, v in G.state_dict().items()}
    mapping = {}
    for i in range(CFG.mapping_layers):
        mapping[f"Dense{i}/weight"] = sd[f"mapping.fc{i}.weight"].T.copy()
        mapping[f"Dense{i}/bias"] = sd[f"mapping.fc{i}.bias"]
    synth = {"lod": np.float32(0.0)}

    def layer(src, dst, noise=None, flip=False):
        w = sd[f"{src}.weight"].transpose(2, 3, 1, 0)
        synth[f"{dst}/weight"] = (w[::-1, ::-1] if flip else w).copy()
        synth[f"{dst}/bias"] = sd[f"{src}.bias"]
        synth[f"{dst}/mod_weight"] = sd[f"{src}.affine.weight"].T.copy()
        synth[f"{dst}/mod_bias"] = sd[f"{src}.affine.bias"] - 1
        if noise is not None:
            synth[f"{dst}/noise_strength"] = sd[f"{src}.noise_strength"]
            synth[noise] = sd[f"{src}.noise_const"][None, None]

    synth["4x4/Const/const"] = sd["synthesis.b4.const"][None]
    layer("synthesis.b4.conv1", "4x4/Conv", "noise0")
    layer("synthesis.b4.torgb", "4x4/ToRGB")
    for r in CFG.block_resolutions[1:]:
        k = int(math.log2(r))
        layer(f"synthesis.b{r}.conv0", f"{r}x{r}/Conv0_up", f"noise{2 * k - 5}", flip=True)
        layer(f"synthesis.b{r}.conv1", f"{r}x{r}/Conv1", f"noise{2 * k - 4}")
        layer(f"synthesis.b{r}.torgb", f"{r}x{r}/ToRGB")
    dd = {k: v.numpy() for k, v in D.state_dict().items()}
    dvars = {}

    def conv(src, dst, bias=True):
        dvars[f"{dst}/weight"] = dd[f"{src}.weight"].transpose(2, 3, 1, 0).copy()
        if bias:
            dvars[f"{dst}/bias"] = dd[f"{src}.bias"]

    conv("b16.fromrgb", "16x16/FromRGB")
    for r in (16, 8):
        conv(f"b{r}.conv0", f"{r}x{r}/Conv0")
        conv(f"b{r}.conv1", f"{r}x{r}/Conv1_down")
        conv(f"b{r}.skip", f"{r}x{r}/Skip", bias=False)
    conv("b4.conv", "4x4/Conv")
    dvars["4x4/Dense0/weight"], dvars["4x4/Dense0/bias"] = dd["b4.fc.weight"].T.copy(), dd["b4.fc.bias"]
    dvars["Output/weight"], dvars["Output/bias"] = dd["b4.out.weight"].T.copy(), dd["b4.out.bias"]
    return {"dlatent_avg": sd["mapping.w_avg"]}, mapping, synth, dvars


def _write_tf(path, Network, G, D):
    own, mapping, synth, dvars = _tf_variables(G, D)
    kw = {"resolution": 16, "num_channels": 3, "dlatent_avg_beta": 0.995}

    def g(name):
        return Network(name, dict(own), {"mapping": Network("G_mapping", mapping), "synthesis": Network(
            "G_synthesis", synth)}, kw)

    D_net = Network("D", dvars, static_kwargs={"mbstd_group_size": 4, "mbstd_num_features": 1})
    with open(path, "wb") as f:
        pickle.dump((g("G"), D_net, g("Gs")), f, protocol=4)


def test_tf_pickle_every_tensor_lands_in_place(tmp_path, fake_dnnlib):
    G, D = _nets(1)
    path = tmp_path / "stylegan2-tiny-config-f.pkl"
    _write_tf(path, fake_dnnlib, G, D)
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        sys.modules.pop(name)  # the reader must not need dnnlib
    assert detect_format(path) == "tf"
    res = convert(path)
    assert res.generator.config == CFG
    _assert_same(res.generator, G)
    _assert_same(res.discriminator, D)
    # spot checks of the documented transforms, index by index
    _, mapping, synth, _ = _tf_variables(G, D)
    w_tf = synth["8x8/Conv0_up/weight"]  # [kh, kw, in, out], spatially flipped transposed conv in TF
    assert res.generator.synthesis.b8.conv0.weight[3, 2, 0, 1].item() == pytest.approx(float(w_tf[2, 1, 2, 3]))
    assert res.generator.mapping.fc1.weight[5, 7].item() == pytest.approx(float(mapping["Dense1/weight"][7, 5]))
    assert torch.allclose(res.generator.synthesis.b16.conv1.affine.bias,
                          torch.from_numpy(synth["16x16/Conv1/mod_bias"]) + 1)
    assert res.generator.synthesis.b16.conv0.noise_const.shape == (16, 16)
    x = torch.randn(2, CFG.z_dim)
    torch.testing.assert_close(res.generator(x), G(x))


def test_tf_unmapped_variable_is_an_error(tmp_path, fake_dnnlib):
    G, D = _nets()
    own, mapping, synth, dvars = _tf_variables(G, D)
    synth["8x8/Extra/weight"] = np.zeros(3, np.float32)
    N = fake_dnnlib
    gs = N("G", own, {"mapping": N("G_mapping", mapping), "synthesis": N("G_synthesis", synth)})
    path = tmp_path / "odd.pkl"
    with open(path, "wb") as f:
        pickle.dump((gs, N("D", dvars), gs), f)
    with pytest.raises(CheckpointError, match=r"no place in the StyleGAN2 layout: synthesis/8x8/Extra/weight"):
        convert(path, "tf")


# ------------------------------------------------------------------------------ stylegan2-ada-pytorch


@pytest.fixture
def fake_persistence(monkeypatch):
    """``torch_utils.persistence._reconstruct_persistent_obj`` and ``dnnlib.util.EasyDict`` as importable names."""

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - only pickled by reference, never called
        raise AssertionError("the embedded source must never be run")

    class EasyDict(dict):
        pass

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    mods = {n: types.ModuleType(n) for n in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")}
    mods["torch_utils.persistence"]._reconstruct_persistent_obj = _reconstruct_persistent_obj
    mods["dnnlib.util"].EasyDict = EasyDict
    for n, m in mods.items():
        monkeypatch.setitem(sys.modules, n, m)
    return _reconstruct_persistent_obj, EasyDict


class _Persistent:
    """Pickles like a ``torch_utils.persistence`` object: ``(_reconstruct_persistent_obj, (meta,))``."""

    def __init__(self, fn, class_name, state):
        self.fn, self.class_name, self.state = fn, class_name, state

    def __reduce__(self):
        meta = {"type": "class", "version": 4, "class_name": self.class_name, "state": self.state,
                "module_src": "import os\nos.system('touch PWNED')\n"}
        return (self.fn, (meta,))


def _persistent_tree(module: torch.nn.Module, fn, init_kwargs=None):
    state = {
        "training": False,
        "_parameters": collections.OrderedDict(module._parameters),
        "_buffers": collections.OrderedDict(module._buffers),
        "_non_persistent_buffers_set": set(),
        "_forward_hooks": collections.OrderedDict(),
        "_modules": collections.OrderedDict((n, _persistent_tree(m, fn)) for n, m in module._modules.items()),
    }
    if init_kwargs is not None:
        state["_init_kwargs"] = init_kwargs
    return _Persistent(fn, type(module).__name__, state)


def _write_ada(path, G, D, fake, c_dim: int = 0):
    fn, EasyDict = fake
    gkw = {"z_dim": 16, "c_dim": c_dim, "w_dim": 16, "img_resolution": 16, "img_channels": 3,
           "mapping_kwargs": EasyDict(num_layers=2),
           "synthesis_kwargs": EasyDict(channel_base=128, channel_max=16, num_fp16_res=0, conv_clamp=256)}
    dkw = {"c_dim": c_dim, "img_resolution": 16, "img_channels": 3, "epilogue_kwargs": EasyDict(mbstd_group_size=4)}
    data = {"G": _persistent_tree(G, fn, gkw), "D": _persistent_tree(D, fn, dkw),
            "G_ema": _persistent_tree(G, fn, gkw), "augment_pipe": None,
            "training_set_kwargs": EasyDict(path="ffhq.zip", resolution=16)}
    with open(path, "wb") as f:
        pickle.dump(data, f)


def test_ada_pytorch_pickle_every_tensor_lands_in_place(tmp_path, fake_persistence, monkeypatch):
    monkeypatch.chdir(tmp_path)
    G, D = _nets(2)
    path = tmp_path / "network-snapshot-000000.pkl"
    _write_ada(path, G, D, fake_persistence)
    for name in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"):
        sys.modules.pop(name)
    assert detect_format(path) == "pytorch"
    res = convert(path)
    assert res.generator.config == CFG.replace(conv_clamp=256)  # from the recorded constructor kwargs
    _assert_same(res.generator, G)
    _assert_same(res.discriminator, D)
    assert res.info["embedded_source_chars_ignored"] > 0
    assert not (tmp_path / "PWNED").exists()


# ---------------------------------------------------------------------- class-conditional stylegan2-ada

CCFG = CFG.replace(c_dim=5)


def _conditional_discriminator(D: Discriminator, c_dim: int, cmap_dim: int = 16, layers: int = 8) -> torch.nn.Module:
    """The official conditional discriminator's layout: a label ``mapping`` (embed + ``layers`` dense layers
    to ``cmap_dim``) and an ``out`` layer of ``cmap_dim`` outputs (projection onto the mapped label)."""
    from latentstudio.models.stylegan2.networks import FullyConnectedLayer

    mapping = torch.nn.Module()
    mapping.embed = FullyConnectedLayer(c_dim, cmap_dim)
    for i in range(layers):
        setattr(mapping, f"fc{i}", FullyConnectedLayer(cmap_dim, cmap_dim, lrelu=True, lr_multiplier=0.01))
    D.mapping = mapping
    D.b4.out = FullyConnectedLayer(D.b4.out.in_features, cmap_dim)
    return D


def _official_mapping(sd: dict[str, torch.Tensor], z: torch.Tensor, c: torch.Tensor, layers: int,
                      lr_multiplier: float = 0.01) -> torch.Tensor:
    """The stylegan2-ada mapping network written out from its definition, on the raw source tensors:
    ``x = [norm(z), norm(embed(c))]``, then ``layers`` equalized-lr dense layers with leaky ReLU (gain sqrt 2);
    ``norm`` is the second-moment normalisation, ``embed`` a dense layer (lr multiplier 1, no activation)."""
    def norm(x):
        return x * (x.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()

    def dense(x, w, b, lr, act):
        y = x @ (w * (lr / math.sqrt(w.shape[1]))).t() + b * lr
        return torch.nn.functional.leaky_relu(y, 0.2) * math.sqrt(2) if act else y

    e = dense(c, sd["mapping.embed.weight"], sd["mapping.embed.bias"], 1.0, False)
    x = torch.cat([norm(z), norm(e)], dim=1)
    for i in range(layers):
        x = dense(x, sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"], lr_multiplier, True)
    return x


def test_ada_class_conditional_snapshot_converts_and_generates_per_class(tmp_path, fake_persistence, monkeypatch):
    from latentstudio.cli.main import cli
    from latentstudio.models.base import ConditionSpec
    from latentstudio.models.stylegan2 import images_to_uint8

    monkeypatch.chdir(tmp_path)
    G, D = _nets(7, CCFG)
    D = _conditional_discriminator(D, CCFG.c_dim)
    src = {k: v.clone() for k, v in G.state_dict().items()}
    assert src["mapping.embed.weight"].shape == (16, 5) and src["mapping.fc0.weight"].shape == (16, 32)
    path = tmp_path / "cifar10-like.pkl"
    _write_ada(path, G, D, fake_persistence, c_dim=5)
    for name in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"):
        sys.modules.pop(name)
    with pytest.warns(UserWarning, match="class-conditional snapshot"):
        res = convert(path)
    got = res.generator
    assert got.config == CCFG.replace(conv_clamp=256) and got.condition_spec == ConditionSpec("class", 5)
    _assert_same(got, G)
    assert res.discriminator is None and "not converted" in res.info["discriminator"] and res.info["classes"] == 5
    # per class: the official formula on the file's own tensors, then the official image rule
    seeds, psi = [0, 1, 2], 0.7
    z = torch.cat([z_from_seed(s, 16) for s in seeds])
    per_class = []
    for k in range(5):
        c = torch.nn.functional.one_hot(torch.full((3,), k), 5).float()
        with torch.no_grad():
            w = _official_mapping(src, z, c, CCFG.mapping_layers)
            w = src["mapping.w_avg"].lerp(w, psi)  # truncation towards the tracked mean
            torch.testing.assert_close(got.mapping(z, c, truncation_psi=psi)[:, 0], w, rtol=1e-5, atol=1e-5)
            want = images_to_uint8(G.synthesis(w[:, None].repeat(1, got.num_ws, 1), noise_mode="const"))
        images = got.sample_seeds(seeds, condition=k, truncation_psi=psi)
        diff = (images.int() - want.int()).abs()
        assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01, k
        per_class.append(images)
    assert all(not torch.equal(per_class[0], other) for other in per_class[1:])  # the class changes the image
    # sample(n, condition=...) and the default (classes in turn)
    assert torch.equal(got.sample_seeds(seeds, condition=[0, 1, 2], truncation_psi=psi)[2], per_class[2][2])
    assert torch.equal(got.sample_seeds(seeds, truncation_psi=psi)[1], per_class[1][1])
    out = got.sample(4, generator=torch.Generator().manual_seed(0), condition=3)
    assert out.shape == (4, 3, 16, 16) and out.dtype == torch.uint8
    with pytest.raises(ConfigError, match="class condition must be in 0..4"):
        got.sample(1, condition=5)
    # the model folder, and the CLI per class (the existing --condition flag)
    runner = CliRunner()
    res_cli = runner.invoke(cli, ["convert", str(path), "--out", str(tmp_path / "m")])
    assert res_cli.exit_code == 0, res_cli.output
    assert not (tmp_path / "m" / "discriminator.safetensors").exists()
    res_cli = runner.invoke(cli, ["sample", "--model", str(tmp_path / "m"), "--seeds", "0-2", "--condition", "3",
                                  "--truncation-psi", "0.7", "--out-dir", str(tmp_path / "class3")])
    assert res_cli.exit_code == 0, res_cli.output
    from PIL import Image

    written = sorted((tmp_path / "class3").glob("*.png"))
    assert len(written) == 3
    for i, f in enumerate(written):
        png = torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
        assert torch.equal(png, per_class[3][i])


def test_stylegan3_generator_is_refused_clearly(tmp_path, fake_persistence):
    fn, _ = fake_persistence
    g = _Persistent(fn, "Generator", {"_parameters": {}, "_buffers": {}, "_modules": {
        "synthesis": _Persistent(fn, "SynthesisNetwork", {"_parameters": {}, "_buffers": {}, "_modules": {
            "input": _Persistent(fn, "SynthesisInput", {"_parameters": {"weight": torch.nn.Parameter(
                torch.zeros(2, 2))}, "_buffers": {}, "_modules": {}})}})}})
    path = tmp_path / "stylegan3-r.pkl"
    with open(path, "wb") as f:
        pickle.dump({"G_ema": g}, f)
    with pytest.raises(CheckpointError, match="StyleGAN3"):
        convert(path, "pytorch")


# ------------------------------------------------------------------------------------- rosinality


def _rosinality_state(G: Generator, D: Discriminator):
    sd = G.state_dict()
    g: dict[str, torch.Tensor] = {}
    for i in range(CFG.mapping_layers):
        g[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        g[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    blur = torch.ones(4, 4) / 16

    def layer(src, dst, noise=None, up=False):
        g[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        g[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        g[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        if noise is None:
            g[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)
        else:
            g[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
            g[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
            g[f"noises.{noise}"] = sd[f"{src}.noise_const"][None, None]
        if up:
            g[f"{dst}.conv.blur.kernel"] = blur

    g["input.input"] = sd["synthesis.b4.const"][None]
    layer("synthesis.b4.conv1", "conv1", "noise_0")
    layer("synthesis.b4.torgb", "to_rgb1")
    for j, r in enumerate(CFG.block_resolutions[1:]):
        layer(f"synthesis.b{r}.conv0", f"convs.{2 * j}", f"noise_{2 * j + 1}", up=True)
        layer(f"synthesis.b{r}.conv1", f"convs.{2 * j + 1}", f"noise_{2 * j + 2}")
        layer(f"synthesis.b{r}.torgb", f"to_rgbs.{j}")
        g[f"to_rgbs.{j}.upsample.kernel"] = blur
    dd = D.state_dict()
    d = {"convs.0.0.weight": dd["b16.fromrgb.weight"], "convs.0.1.bias": dd["b16.fromrgb.bias"]}
    for i, r in enumerate((16, 8)):
        d |= {f"convs.{i + 1}.conv1.0.weight": dd[f"b{r}.conv0.weight"],
              f"convs.{i + 1}.conv1.1.bias": dd[f"b{r}.conv0.bias"],
              f"convs.{i + 1}.conv2.0.kernel": blur,
              f"convs.{i + 1}.conv2.1.weight": dd[f"b{r}.conv1.weight"],
              f"convs.{i + 1}.conv2.2.bias": dd[f"b{r}.conv1.bias"],
              f"convs.{i + 1}.skip.0.kernel": blur,
              f"convs.{i + 1}.skip.1.weight": dd[f"b{r}.skip.weight"]}
    d |= {"final_conv.0.weight": dd["b4.conv.weight"], "final_conv.1.bias": dd["b4.conv.bias"],
          "final_linear.0.weight": dd["b4.fc.weight"], "final_linear.0.bias": dd["b4.fc.bias"],
          "final_linear.1.weight": dd["b4.out.weight"], "final_linear.1.bias": dd["b4.out.bias"]}
    return g, d


def _write_rosinality(path, G, D, *, latent_avg=True, legacy=False):
    g, d = _rosinality_state(G, D)
    ckpt = {"g_ema": g, "g": g, "d": d, "args": argparse.Namespace(size=16, latent=16, n_mlp=2)}
    if latent_avg:
        ckpt["latent_avg"] = G.mapping.w_avg.clone()
    torch.save(ckpt, path, _use_new_zipfile_serialization=not legacy)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-torch-save"])
def test_rosinality_every_tensor_lands_in_place(tmp_path, legacy):
    G, D = _nets(3)
    path = tmp_path / "550000.pt"
    _write_rosinality(path, G, D, legacy=legacy)
    assert detect_format(path) == "rosinality"
    res = convert(path)
    assert res.generator.config == CFG
    _assert_same(res.generator, G)
    _assert_same(res.discriminator, D)


def test_rosinality_without_latent_avg_estimates_it(tmp_path):
    G, D = _nets(4)
    path = tmp_path / "g.pt"
    _write_rosinality(path, G, D, latent_avg=False)
    res = convert(path)
    with torch.no_grad():
        g = torch.Generator().manual_seed(0)
        want = G.mapping(torch.randn(10_000, 16, generator=g))[:, 0].double().mean(0).float()
    torch.testing.assert_close(res.generator.w_avg, want, rtol=1e-4, atol=1e-5)
    assert "estimated" in res.info["w_avg"]


# ------------------------------------------------------------------------------- malicious input


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", ["tf", "pytorch", None])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, fmt):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"G_ema": _Evil(marker)}, f)
    with pytest.raises(UnsafePickleError, match=r"refused to load: the pickle references (posix|os|nt)\.system"):
        convert(path, fmt)
    assert not marker.exists()


def test_malicious_torch_file_is_refused(tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {"x": torch.zeros(1)}, "evil": _Evil(marker)}, path)
    with pytest.raises(UnsafePickleError, match=r"refused to load: the pickle references (posix|os|nt)\.system"):
        convert(path)
    assert not marker.exists()


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        convert(tmp_path / "missing.pkl")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="unknown format"):
        convert(junk)
    with pytest.raises(CheckpointError, match="unknown weights format 'onnx'"):
        convert(junk, "onnx")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a rosinality StyleGAN2 checkpoint"):
        convert(tmp_path / "other.pt")


# ------------------------------------------------------------------------------- end to end (CLI)


def test_convert_then_generate_end_to_end_all_formats(tmp_path, fake_dnnlib, fake_persistence):
    from latentstudio.cli.main import cli

    G, D = _nets(5)
    files = {"tf": tmp_path / "tf.pkl", "pytorch": tmp_path / "ada.pkl", "rosinality": tmp_path / "ros.pt"}
    _write_tf(files["tf"], fake_dnnlib, G, D)
    _write_ada(files["pytorch"], G, D, fake_persistence)
    _write_rosinality(files["rosinality"], G, D)
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network", "torch_utils", "torch_utils.persistence",
                 "dnnlib.util"):
        sys.modules.pop(name, None)
    runner = CliRunner()
    outputs = {}
    for fmt, src in files.items():
        folder = tmp_path / f"model-{fmt}"
        res = runner.invoke(cli, ["convert", str(src), "--out", str(folder)])
        assert res.exit_code == 0, res.output
        assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
        assert load_discriminator(folder).config == load_generator(folder).config
        png = tmp_path / f"{fmt}.png"
        res = runner.invoke(cli, ["generate", "--model", str(folder), "--seeds", "0-3", "--trunc", "0.7",
                                  "--out", str(png)])
        assert res.exit_code == 0, res.output
        outputs[fmt] = png.read_bytes()
    # the TF and rosinality files hold the same weights (ada adds conv_clamp=256, inactive at these values)
    assert outputs["tf"] == outputs["rosinality"] == outputs["pytorch"]
    # a converted folder is a model folder of the one API: load + generate, official seeds
    import latentstudio as ls

    model = ls.load(tmp_path / "model-pytorch")
    images = ls.generate(model, n=8, seed=0)
    assert images.dtype == torch.uint8 and images.shape == (8, 3, G.img_resolution, G.img_resolution)
    ref = model.synthesize_images(model.map_latents(torch.cat([z_from_seed(s, model.z_dim) for s in (0, 1)]), 0.7))
    assert torch.equal(ls.generate(model, seeds=[0, 1], truncation_psi=0.7), ref)
    res = runner.invoke(cli, ["convert", str(files["tf"]), "--out", str(tmp_path / "model-tf")])
    assert res.exit_code == 1 and "already exists" in res.output
