"""Malformed weights files end in one line that names the file and the field, never a traceback.

Each case writes a broken file (truncated, empty, wrong magic, wrong pickle, unknown global,
mismatched shapes, sizes beyond the data: a tensor wider than its storage, a storage or a pickle
field declaring a terabyte, a zip bomb) and sends it through the converter, through
``latentstudio convert`` and, for model folders, through the loading of ``latentstudio studio`` and
``latentstudio sample``. Nothing may be allocated for a declared size before it is checked, so the
terabyte cases finish at once without a MemoryError.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_stylegan2_convert import (  # noqa: F401  (fake_dnnlib / fake_persistence are fixtures)
    CFG,
    _nets,
    _persistent_tree,
    _tf_variables,
    _write_ada,
    _write_rosinality,
    fake_dnnlib,
    fake_persistence,
)

from latentstudio.errors import LatentStudioError
from latentstudio.io import checkpoint
from latentstudio.models.stylegan2 import load_discriminator
from latentstudio.models.stylegan2.convert import convert

TB = 1 << 40


def _legacy_storage(numel_declared: int, numel_header: int, data: bytes) -> bytes:
    """A legacy ``torch.save`` stream of one float storage with the given declared and header sizes."""

    class _Marker:
        pass

    marker = _Marker()

    class _P(pickle.Pickler):
        def persistent_id(self, obj):
            if obj is marker:
                return ("storage", torch.FloatStorage, "0", "cpu", numel_declared, None)
            return None

    buf = io.BytesIO()
    for head in (checkpoint.LEGACY_MAGIC, checkpoint.LEGACY_PROTOCOL,
                 {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(head, buf, protocol=2)
    _P(buf, protocol=2).dump(marker)
    pickle.dump(["0"], buf, protocol=2)
    buf.write(struct.pack("<q", numel_header) + data)
    return buf.getvalue()


class _StorageBytes:
    """Pickles like a tensor storage inside a stylegan2-ada pickle: ``torch.storage._load_from_bytes(blob)``."""

    def __init__(self, blob: bytes):
        self.blob = blob

    def __reduce__(self):
        return (torch.storage._load_from_bytes, (self.blob,))


class _Tensor:
    """Pickles like ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    def __init__(self, storage, size, stride, offset=0):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def _ada_with(path, fake, replace: dict):
    """A stylegan2-ada pickle of the test networks with some G_ema parameters replaced by ``replace``."""
    fn, EasyDict = fake
    G, D = _nets(11)
    tree = _persistent_tree(G, fn, {"z_dim": 16, "c_dim": 0, "w_dim": 16, "img_resolution": 16, "img_channels": 3,
                                    "mapping_kwargs": EasyDict(num_layers=2),
                                    "synthesis_kwargs": EasyDict(channel_base=128, channel_max=16)})
    for dotted, value in replace.items():
        node = tree
        *mods, name = dotted.split(".")
        for m in mods:
            node = node.state["_modules"][m]
        node.state["_parameters"][name] = value
    with open(path, "wb") as f:
        pickle.dump({"G_ema": tree, "D": _persistent_tree(D, fn, {})}, f)


def _rosinality_zip(path, *, deflate: bool = False, big: int = 0, short_record: bool = False):
    G, D = _nets(12)
    _write_rosinality(path, G, D)
    if not (deflate or big or short_record):
        return
    ckpt = torch.load(path, weights_only=False)
    if big:
        ckpt["g_ema"]["zeros"] = torch.zeros(big)
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if short_record and info.filename.endswith("/data/0"):
                data = data[: len(data) // 2]
            out.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED)


def _case(name, tmp_path, fake_dnnlib, fake_persistence):  # noqa: F811
    """``(path, regex of the one-line message)`` of the malformed file ``name``."""
    p = tmp_path / f"{name}.pkl"
    if name == "empty":
        p.write_bytes(b"")
        return p, r"unknown format \(an empty file\)"
    if name == "wrong-magic":
        p.write_bytes(b"GIF89a" + bytes(100))
        return p, r"unknown format \(neither a pickle nor a torch checkpoint\)"
    if name == "truncated-ada":
        G, D = _nets(1)
        _write_ada(p, G, D, fake_persistence)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return p, r"pickle field \w+ at byte \d+ declares \d+ bytes but only \d+ remain \(truncated"
    if name == "truncated-zip":
        p = tmp_path / "truncated.pt"
        _rosinality_zip(p)
        p.write_bytes(p.read_bytes()[: p.stat().st_size * 2 // 3])
        return p, r"not a readable zip file, truncated or corrupt"
    if name == "wrong-pickle":
        p.write_bytes(pickle.dumps([1, 2, 3]))
        return p, r"expected a pickled dict of networks \(G, D, G_ema\), got list"
    if name == "unknown-global":
        p.write_bytes(pickle.dumps({"G_ema": collections.Counter("ab")}))
        return p, r"refused to load: the pickle references collections\.Counter"
    if name == "terabyte-pickle-field":
        p.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", TB) + b"abc")
        return p, rf"pickle field BINBYTES8 at byte 2 declares {TB} bytes but only 3 remain"
    if name == "terabyte-frame":
        p.write_bytes(b"\x80\x04\x95" + struct.pack("<Q", TB) + b"N.")
        return p, rf"pickle field FRAME at byte 2 declares {TB} bytes"
    if name == "mismatched-shapes":
        _ada_with(p, fake_persistence, {"synthesis.b8.conv1.weight": torch.zeros(16, 16, 1, 1)})
        return p, r"wrong shape: synthesis\.b8\.conv1\.weight \[16, 16, 1, 1\] vs \[16, 16, 3, 3\]"
    if name == "implied-huge-network":  # 1.2 MB implying 100000 channels (a 10^12-parameter net): never allocated
        _ada_with(p, fake_persistence, {f"synthesis.b{r}.conv1.weight": torch.zeros(100_000, 1, 1, 1)
                                        for r in (4, 8, 16)})
        return p, (r"do not fit the StyleGAN2 layout \(wrong shape: .*synthesis\.b4\.conv1\.weight \[100000, 1, 1, 1\] "
                   r"vs \[100000, 100000, 3, 3\]")
    if name == "tensor-beyond-storage":
        st = _StorageBytes(_legacy_storage(4, 4, bytes(16)))
        _ada_with(p, fake_persistence, {"synthesis.b8.conv1.weight": _Tensor(st, (16, 16, 3, 3), (144, 9, 3, 1))})
        return p, r"a tensor of size \[16, 16, 3, 3\].* reaches element 2304 of a storage of 4 elements \(field: size\)"
    if name == "storage-declares-terabyte":
        st = _StorageBytes(_legacy_storage(TB, TB, bytes(16)))
        _ada_with(p, fake_persistence, {"synthesis.b8.conv1.weight": _Tensor(st, (4,), (1,))})
        return p, rf"storage '0' declares {TB} FloatStorage elements .* \(field: numel\)"
    if name == "storage-header-terabyte":
        st = _StorageBytes(_legacy_storage(4, TB, bytes(16)))
        _ada_with(p, fake_persistence, {"synthesis.b8.conv1.weight": _Tensor(st, (4,), (1,))})
        return p, rf"storage '0' holds {TB} elements where 4 were declared.*\(field: numel\)"
    if name == "not-a-tensor":
        _ada_with(p, fake_persistence, {"synthesis.b8.conv1.bias": "hello"})
        return p, r"synthesis\.b8\.conv1\.bias: expected a tensor in the pickle, got str"
    if name == "no-g-ema":
        G, D = _nets(1)
        fn, _ = fake_persistence
        p.write_bytes(pickle.dumps({"D": _persistent_tree(D, fn, {})}))
        return p, r"has no 'G_ema' network \(found \['D'\]\)"
    if name == "tf-bad-version":
        N = fake_dnnlib
        own, mapping, synth, dvars = _tf_variables(*_nets(1))
        net = N("G", own, {"mapping": N("G_mapping", mapping), "synthesis": N("G_synthesis", synth)})
        net.__getstate__ = lambda: {"version": 9, "variables": []}
        with open(p, "wb") as f:
            pickle.dump((net, net, net), f)
        return p, r"unsupported dnnlib Network pickle version 9 \(field: version"
    if name == "tf-conditional":
        N = fake_dnnlib
        own, mapping, synth, dvars = _tf_variables(*_nets(1))
        mapping["LabelConcat/weight"] = np.zeros((10, 16), np.float32)
        g = N("G", own, {"mapping": N("G_mapping", mapping), "synthesis": N("G_synthesis", synth)})
        with open(p, "wb") as f:
            pickle.dump((g, N("D", dvars), g), f)
        return p, r"TF generator 'G' is class-conditional"
    if name == "tf-wrong-dims":
        N = fake_dnnlib
        own, mapping, synth, dvars = _tf_variables(*_nets(1))
        synth["8x8/Conv1/weight"] = np.zeros((3, 3), np.float32)
        g = N("G", own, {"mapping": N("G_mapping", mapping), "synthesis": N("G_synthesis", synth)})
        with open(p, "wb") as f:
            pickle.dump((g, N("D", dvars), g), f)
        return p, r"tensor 'synthesis/8x8/Conv1/weight' has shape \[3, 3\]; a 4-D tensor is expected there"
    if name == "zip-bomb":
        p = tmp_path / "bomb.pt"
        _rosinality_zip(p, deflate=True, big=1 << 24)  # 64 MiB of zeros deflate to ~65 kB
        assert p.stat().st_size < 1 << 20
        return p, r"zip record '.*/data/\d+' would inflate \d+ bytes to 67108864 \(more than 20:1; field: file_size\)"
    if name == "overlapping-views":  # a 1-element storage viewed as 2e8 elements (stride 0): 800 MB if copied
        p = tmp_path / "views.pt"
        torch.save({"g_ema": {"style.1.weight": torch.zeros(1).expand(20_000, 10_000)}}, p)
        return p, r"would need more memory than 4x the file's size \(field: tensor sizes\)"
    if name == "zip-record-too-short":
        p = tmp_path / "short.pt"
        _rosinality_zip(p, short_record=True)
        return p, r"storage '0' declares \d+ FloatStorage elements \(\d+ bytes\) but its record holds \d+ bytes"
    raise AssertionError(name)


CASES = ["empty", "wrong-magic", "truncated-ada", "truncated-zip", "wrong-pickle", "unknown-global",
         "terabyte-pickle-field", "terabyte-frame", "mismatched-shapes", "implied-huge-network",
         "tensor-beyond-storage", "storage-declares-terabyte", "storage-header-terabyte", "not-a-tensor", "no-g-ema",
         "tf-bad-version", "tf-conditional", "tf-wrong-dims", "zip-bomb", "zip-record-too-short", "overlapping-views"]


def _assert_one_cli_line(result, path, pattern):
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a ClickException, not a crash
    lines = [ln for ln in result.output.splitlines() if ln.strip() and not ln.startswith("Warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output and path.name in lines[0]
    assert __import__("re").search(pattern, lines[0]), lines[0]


@pytest.mark.parametrize("name", CASES)
def test_malformed_weights_file_gives_one_line(name, tmp_path, fake_dnnlib, fake_persistence):  # noqa: F811
    from latentstudio.cli.main import cli

    path, pattern = _case(name, tmp_path, fake_dnnlib, fake_persistence)
    for mod in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network", "torch_utils", "torch_utils.persistence",
                "dnnlib.util"):
        sys.modules.pop(mod, None)  # the readers must not need them
    with pytest.raises(LatentStudioError, match=pattern) as info:
        convert(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    res = CliRunner().invoke(cli, ["convert", str(path), "--out", str(tmp_path / "out")])
    _assert_one_cli_line(res, path, pattern)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- model folders


def _folder_case(name, tmp_path):
    G, D = _nets(3)
    from latentstudio.models.stylegan2 import save_model

    folder = save_model(tmp_path / "m", G, D)
    weights = folder / "model.safetensors"
    if name == "truncated-weights":
        weights.write_bytes(weights.read_bytes()[:1000])
        return folder, weights, r"model\.safetensors is not a valid safetensors file: .*truncated"
    if name == "empty-weights":
        weights.write_bytes(b"")
        return folder, weights, r"it is 0 bytes long \(truncated or empty\)"
    if name == "header-claims-terabyte":
        data = weights.read_bytes()
        weights.write_bytes(struct.pack("<Q", TB) + data[8:])
        return folder, weights, rf"its header claims {TB} bytes"
    if name == "wrong-shapes":
        cfg = folder / "config.json"
        cfg.write_text(cfg.read_text().replace('"channel_max": 16', '"channel_max": 8'))
        return folder, weights, r"tensor '.*' has shape \[\d+(, \d+)*\], the config needs"
    if name == "config-not-json":
        (folder / "config.json").write_text("{ not json")
        return folder, folder / "config.json", r"config\.json is not valid JSON"
    if name == "weights-file-not-folder":
        p = tmp_path / "network.pkl"
        p.write_bytes(b"\x80\x04N.")
        return p, p, r"is a file; pass a model folder .* latentstudio convert"
    raise AssertionError(name)


FOLDER_CASES = ["truncated-weights", "empty-weights", "header-claims-terabyte", "wrong-shapes", "config-not-json",
                "weights-file-not-folder"]


@pytest.mark.parametrize("name", FOLDER_CASES)
def test_malformed_model_folder_gives_one_line_in_studio_and_sample(name, tmp_path):
    from latentstudio.cli.main import cli

    folder, culprit, pattern = _folder_case(name, tmp_path)
    runner = CliRunner()
    # the studio loads the model before it serves anything: a malformed folder stops there
    res = runner.invoke(cli, ["studio", "--model", str(folder), "--port", "1"])
    _assert_one_cli_line(res, culprit, pattern)
    res = runner.invoke(cli, ["sample", "--model", str(folder), "--seeds", "0", "--out", str(tmp_path / "x.png")])
    _assert_one_cli_line(res, culprit, pattern)


def test_malformed_discriminator_file_is_one_line(tmp_path):
    from latentstudio.errors import CheckpointError
    from latentstudio.models.stylegan2 import save_model

    G, D = _nets(3)
    folder = save_model(tmp_path / "m", G, D)
    f = folder / "discriminator.safetensors"
    f.write_bytes(f.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=r"discriminator\.safetensors is not a valid safetensors file") as info:
        load_discriminator(folder)
    assert "\n" not in str(info.value)


def test_no_traceback_from_the_installed_command(tmp_path):
    """The real console script (not CliRunner): stderr holds one line, exit status 1."""
    bad = tmp_path / "storage.pkl"
    bad.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", TB) + b"abc")
    empty = tmp_path / "m"
    empty.mkdir()
    (empty / "config.json").write_text('{"model_type": "stylegan2", "config": {}}')
    (empty / "model.safetensors").write_bytes(b"")
    script = ("import sys; from latentstudio.cli.main import main; sys.argv = ['latentstudio'] + sys.argv[1:]; "
              "main()")
    for args in (["convert", str(bad), "--out", str(tmp_path / "out")], ["studio", "--model", str(empty)]):
        proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, check=False,
                              env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
        err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert len(err) == 1 and err[0].startswith("Error: "), proc.stderr


# ------------------------------------------------------------------------ the size-checked readers


def test_zip_records_are_checked_before_inflating(tmp_path, monkeypatch):
    """The bomb is refused from the central directory alone: no record is opened."""
    p = tmp_path / "bomb.pt"
    _rosinality_zip(p, deflate=True, big=1 << 24)
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: opened.append(a) or real_open(self, *a, **k))
    with pytest.raises(LatentStudioError, match="refused before inflating"):
        checkpoint.read_torch_file(p, checkpoint.torch_globals())
    assert opened == []


def test_torch_files_read_without_torch_load(tmp_path):
    """Zip and legacy torch.save files give the same tensors as torch.load (views, dtypes, empty tensors)."""
    t = {"a": torch.arange(12.0).reshape(3, 4)[:, 1:3], "p": torch.nn.Parameter(torch.randn(2, 2)),
         "h": torch.ones(3, dtype=torch.bfloat16), "i": torch.arange(5), "e": torch.zeros(0, 5)}
    for legacy in (False, True):
        f = tmp_path / f"t{legacy}.pt"
        torch.save(t, f, _use_new_zipfile_serialization=not legacy)
        back = checkpoint.read_torch_file(f, checkpoint.torch_globals())
        for k, v in t.items():
            assert back[k].dtype == v.dtype and torch.equal(back[k], v.detach()), k
