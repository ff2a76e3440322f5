"""Tests of latentstudio.data: every loader on tiny fake datasets written in the real file formats.

Nothing here reads real data or the network; every dataset is built under ``tmp_path``.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.data import DATASETS, ImageData, dataset_options, load_images
from latentstudio.errors import DataError, UnknownNameError

ATTR_NAMES = [f"Attr_{i:02d}" for i in range(40)]


# --------------------------------------------------------------------------------------------------
# writers for the real formats


def write_idx_images(path: Path, images: np.ndarray, *, compress: bool = False) -> None:
    """idx3-ubyte: magic 2051 (big-endian), count, rows, cols, then the bytes."""
    n, h, w = images.shape
    blob = struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(blob) if compress else blob)


def write_idx_labels(path: Path, labels: np.ndarray, *, compress: bool = False) -> None:
    """idx1-ubyte: magic 2049 (big-endian), count, then the bytes."""
    blob = struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(blob) if compress else blob)


def make_mnist(root: Path, folder: str = "MNIST", n_train: int = 5, n_test: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    raw = root / folder / "raw"
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 100, size=(n, 28, 28), dtype=np.uint8)
        imgs[0, 3, 4] = 200  # a known pixel: row 3, column 4 of the first image
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", imgs)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        out[prefix] = imgs
        out[prefix + "_labels"] = labels
    return out


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar_batch(path: Path, data: np.ndarray, labels: list[int]) -> None:
    """A CIFAR python batch: a dict with bytes keys, pickled with protocol 2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = {
        b"batch_label": b"fake batch",
        b"data": data,
        b"labels": labels,
        b"filenames": [b"x.png"] * len(labels),
    }
    path.write_bytes(pickle.dumps(batch, protocol=2))


def make_cifar(root: Path, train_batches: tuple[int, ...] = (1,), meta: list[bytes] | None = None) -> Path:
    folder = root / "cifar-10-batches-py"
    for i in train_batches:
        data = cifar_rows(4, seed=i)
        if i == 1:
            data[0] = 0
            data[0, :1024] = 255  # image 0: R plane 255, G and B planes 0 -> pure red
        write_cifar_batch(folder / f"data_batch_{i}", data, [i % 10, 1, 2, 3])
    write_cifar_batch(folder / "test_batch", cifar_rows(2, seed=99), [9, 8])
    if meta is not None:
        (folder / "batches.meta").write_bytes(
            pickle.dumps({b"label_names": meta, b"num_vis": 3072}, protocol=2)
        )
    return folder


class Evil:
    """Unpickling this runs a shell command unless the unpickler refuses ``posix.system``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_attr_file(path: Path, names: list[str], values: np.ndarray) -> None:
    lines = [str(len(names)), " ".join(ATTR_NAMES)]
    for name, row in zip(names, values, strict=True):
        # the real file pads positive values with an extra space: "000001.jpg -1  1  1 -1"
        lines.append(name + " " + " ".join(f"{int(v):2d}" for v in row))
    path.write_text("\n".join(lines) + "\n")


def make_celeba(
    root: Path,
    n: int = 4,
    *,
    size: tuple[int, int] = (89, 109),
    in_folder: int | None = None,
    in_zip: bool = False,
    partition: list[int] | None = None,
    lossless: bool = False,
) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """Fake ``<root>/celeba`` with n images of ``size`` (W, H): ``in_folder`` loose, all zipped if asked.

    With ``lossless`` the files are PNG data under ``.jpg`` names (PIL reads by content), so pixels are exact.
    """
    cdir = root / "celeba"
    cdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    w, h = size
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    arrays = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for _ in names]
    encode = png_bytes if lossless else jpeg_bytes
    if in_folder is None:
        in_folder = 0 if in_zip else n
    if in_folder:
        (cdir / "img_align_celeba").mkdir()
        for name, arr in list(zip(names, arrays, strict=True))[:in_folder]:
            (cdir / "img_align_celeba" / name).write_bytes(encode(arr))
    if in_zip:
        with zipfile.ZipFile(
            cdir / "img_align_celeba_000001-000004_89x109.zip", "w", zipfile.ZIP_STORED
        ) as zf:
            for name, arr in zip(names, arrays, strict=True):
                zf.writestr(f"img_align_celeba/{name}", encode(arr))
    values = rng.choice(np.array([-1, 1]), size=(n, 40))
    write_attr_file(cdir / "list_attr_celeba.txt", names, values)
    if partition is not None:
        text = "".join(f"{name} {p}\n" for name, p in zip(names, partition, strict=True))
        (cdir / "list_eval_partition.txt").write_text(text)
    return names, values, arrays


# --------------------------------------------------------------------------------------------------
# registry, options, splits


def test_registry_has_all_datasets():
    for name in ("digits", "mnist", "fashion-mnist", "cifar10", "celeba", "folder"):
        assert name in DATASETS


def test_unknown_dataset_lists_known_names():
    with pytest.raises(UnknownNameError) as info:
        load_images("imagenet")
    msg = str(info.value)
    assert "imagenet" in msg and "mnist" in msg and "celeba" in msg and "digits" in msg


def test_unknown_option_names_it_and_the_accepted_ones(tmp_path):
    with pytest.raises(DataError, match=r"'colour'.*accepted options: pad"):
        load_images("mnist", root=tmp_path, colour=True)
    with pytest.raises(DataError, match=r"'pad'.*accepted options: \(none\)"):
        load_images("digits", pad=2)


def test_bad_split_and_limit():
    with pytest.raises(DataError, match="split"):
        load_images("digits", "valid")
    with pytest.raises(DataError, match="limit"):
        load_images("digits", limit=0)


def test_dataset_options_lists_defaults():
    assert dataset_options("mnist") == {"pad": 2}
    assert dataset_options("celeba") == {"image_size": 64}
    assert set(dataset_options("folder")) == {"path", "labels_csv", "image_size", "channels"}


# --------------------------------------------------------------------------------------------------
# digits


def test_digits_split_sizes_labels_and_pixels():
    from sklearn.datasets import load_digits

    target = load_digits().target
    idx = np.arange(len(target))
    train = load_images("digits", "train")
    test = load_images("digits", "test")
    assert len(train) == 1437 and len(test) == 360
    assert train.images.shape == (1437, 1, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and test.labels.shape == (360,)
    assert np.array_equal(np.bincount(train.labels.numpy(), minlength=10), np.bincount(target[idx % 5 != 0]))
    assert np.array_equal(test.labels.numpy(), target[idx % 5 == 0])
    assert int(train.images.min()) == 0 and int(train.images.max()) == 255
    assert train.class_names == [str(i) for i in range(10)]
    assert train.source == "scikit-learn load_digits"
    assert load_images("digits", "test").fingerprint() == test.fingerprint()  # deterministic


def test_limit_keeps_the_first_images():
    full = load_images("digits", "test")
    part = load_images("digits", "test", limit=7)
    assert len(part) == 7 and torch.equal(part.images, full.images[:7])
    assert torch.equal(part.labels, full.labels[:7])


# --------------------------------------------------------------------------------------------------
# MNIST / Fashion-MNIST


def test_mnist_shapes_padding_and_known_pixel(tmp_path):
    ref = make_mnist(tmp_path)
    data = load_images("mnist", "train", root=tmp_path)
    assert isinstance(data, ImageData)
    assert data.images.shape == (5, 1, 32, 32) and data.images.dtype == torch.uint8
    assert int(data.images[0, 0, 3 + 2, 4 + 2]) == 200  # padding shifts every pixel by +2
    assert int(data.images[:, :, :2].max()) == 0 and int(data.images[:, :, :, -2:].max()) == 0
    assert torch.equal(data.images[:, 0, 2:30, 2:30], torch.from_numpy(ref["train"]))
    assert data.labels.tolist() == ref["train_labels"].tolist() and data.labels.dtype == torch.int64
    assert "train-images-idx3-ubyte" in data.source

    test = load_images("mnist", "test", root=tmp_path, pad=0)
    assert test.images.shape == (3, 1, 28, 28) and int(test.images[0, 0, 3, 4]) == 200
    assert load_images("mnist", "test", root=tmp_path, pad="0").images.shape[-1] == 28  # CLI passes strings


def test_mnist_reads_gz_and_uses_env_root(tmp_path, monkeypatch):
    raw = tmp_path / "MNIST" / "raw"
    imgs = np.full((2, 28, 28), 7, dtype=np.uint8)
    write_idx_images(raw / "t10k-images-idx3-ubyte.gz", imgs, compress=True)
    write_idx_labels(raw / "t10k-labels-idx1-ubyte.gz", np.array([3, 4]), compress=True)
    monkeypatch.setenv("LATENTSTUDIO_DATA", str(tmp_path))
    data = load_images("mnist", "test")
    assert data.images.shape == (2, 1, 32, 32) and data.labels.tolist() == [3, 4]


def test_fashion_mnist_class_names(tmp_path):
    make_mnist(tmp_path, folder="FashionMNIST")
    data = load_images("fashion-mnist", "test", root=tmp_path)
    assert data.images.shape == (3, 1, 32, 32)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"


def test_mnist_missing_names_files_and_both_fixes(tmp_path):
    with pytest.raises(DataError) as info:
        load_images("mnist", "train", root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte") in msg
    assert str(tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte") in msg
    assert "--data-root" in msg and "LATENTSTUDIO_DATA" in msg and "--download" in msg


def test_mnist_bad_magic_and_truncated(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    blob = path.read_bytes()
    path.write_bytes(blob[:-5])
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_images("mnist", root=tmp_path)
    path.write_bytes(struct.pack(">I", 1234) + blob[4:])
    with pytest.raises(DataError, match="magic number 1234"):
        load_images("mnist", root=tmp_path)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_damaged_files_are_one_line_errors_with_the_fix(tmp_path, compress):
    raw = tmp_path / "MNIST" / "raw"
    suffix = ".gz" if compress else ""
    imgs = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28) % 256
    write_idx_images(raw / f"t10k-images-idx3-ubyte{suffix}", imgs, compress=compress)
    write_idx_labels(raw / f"t10k-labels-idx1-ubyte{suffix}", np.array([1, 9]), compress=compress)
    data = load_images("mnist", "test", root=tmp_path, pad=0)
    assert data.images.shape == (2, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], torch.from_numpy(imgs.astype(np.uint8)))
    assert data.labels.tolist() == [1, 9] and data.labels.dtype == torch.int64

    path = raw / f"t10k-images-idx3-ubyte{suffix}"
    blob = struct.pack(">IIII", 2051, 2, 28, 28) + imgs.astype(np.uint8).tobytes()
    for bad, what in ((blob[:-100], "truncated"), (blob + b"xx", "too long"), (blob[:10], "truncated")):
        path.write_bytes(gzip.compress(bad) if compress else bad)
        with pytest.raises(DataError) as info:
            load_images("mnist", "test", root=tmp_path)
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg and what in msg and "--download" in msg
    if compress:
        path.write_bytes(gzip.compress(blob)[:-20])  # a cut-off gzip stream
        with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz") as info:
            load_images("mnist", "test", root=tmp_path)
        assert "\n" not in str(info.value)


def test_mnist_label_file_checks(tmp_path):
    make_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", np.array([1, 2]))
    with pytest.raises(DataError, match="3 images but .* 2 labels"):
        load_images("mnist", "test", root=tmp_path)
    write_idx_labels(raw / "t10k-labels-idx1-ubyte", np.array([1, 2, 10]))
    with pytest.raises(DataError, match="label 10; expected 0..9"):
        load_images("mnist", "test", root=tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes((raw / "t10k-images-idx3-ubyte").read_bytes())
    with pytest.raises(DataError, match="magic number 2051, expected 2049"):
        load_images("mnist", "test", root=tmp_path)


def test_mnist_download_uses_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    calls = []

    def fake_mnist(root, train, download):
        calls.append((root, train, download))
        write_idx_images(Path(root) / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz",
                         np.zeros((1, 28, 28), dtype=np.uint8), compress=True)
        write_idx_labels(Path(root) / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", np.array([5]), compress=True)

    monkeypatch.setattr(tvd, "MNIST", fake_mnist)
    data = load_images("mnist", "test", root=tmp_path, download=True)
    assert calls == [(str(tmp_path), False, True)] and data.labels.tolist() == [5]

    def failing(root, train, download):
        raise RuntimeError("Error downloading t10k:\nTried a mirror")

    monkeypatch.setattr(tvd, "FashionMNIST", failing)
    with pytest.raises(DataError, match="download into .*FashionMNIST.* failed") as info:
        load_images("fashion-mnist", "test", root=tmp_path, download=True)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar_plane_order_partial_batches_and_meta(tmp_path):
    names = [f"class{i}".encode() for i in range(10)]
    make_cifar(tmp_path, train_batches=(1,), meta=names)
    with pytest.warns(
        UserWarning, match=r"using 1 of 5 train batches \(data_batch_1\); missing data_batch_2"
    ):
        data = load_images("cifar10", "train", root=tmp_path)
    assert data.images.shape == (4, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.tolist() == [1, 1, 2, 3] and data.labels.dtype == torch.int64
    assert int(data.images[0, 0].min()) == 255 and int(data.images[0, 1:].max()) == 0  # red is channel 0
    assert data.class_names == [f"class{i}" for i in range(10)]
    raw = cifar_rows(4, seed=1)[1]
    assert torch.equal(data.images[1], torch.from_numpy(raw.reshape(3, 32, 32)))  # row = R, G, B planes

    test = load_images("cifar10", "test", root=tmp_path)
    assert test.images.shape == (2, 3, 32, 32) and test.labels.tolist() == [9, 8]


def test_cifar_concatenates_present_batches_and_default_names(tmp_path):
    make_cifar(tmp_path, train_batches=(1, 3))
    with pytest.warns(
        UserWarning, match=r"2 of 5 .*data_batch_1, data_batch_3.*missing data_batch_2, data_batch_4"
    ):
        data = load_images("cifar10", root=tmp_path)
    assert len(data) == 8 and data.labels.tolist() == [1, 1, 2, 3, 3, 1, 2, 3]
    assert data.class_names[0] == "airplane" and data.class_names[9] == "truck"


def test_cifar_full_train_set_does_not_warn(tmp_path):
    make_cifar(tmp_path, train_batches=(1, 2, 3, 4, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_images("cifar10", root=tmp_path)) == 20


def test_cifar_missing_batches_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    with pytest.raises(DataError) as info:
        load_images("cifar10", "train", root=tmp_path)
    msg = str(info.value)
    assert str(folder / "data_batch_1") in msg and str(folder / "data_batch_5") in msg
    assert "--data-root" in msg and "--download" in msg
    write_cifar_batch(folder / "data_batch_1", cifar_rows(2, 0), [0, 1])
    with pytest.raises(DataError, match="test_batch") as info:
        load_images("cifar10", "test", root=tmp_path)
    assert "--download" in str(info.value)


@pytest.mark.parametrize("nested", [False, True])
def test_cifar_refuses_malicious_pickle_without_running_it(tmp_path, nested):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    evil = Evil(marker)
    payload = {b"data": evil, b"labels": [0]} if nested else evil
    (folder / "test_batch").write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(DataError) as info:
        load_images("cifar10", "test", root=tmp_path)
    msg = str(info.value)
    assert "refusing to unpickle" in msg and "system" in msg and "not a CIFAR-10 batch" in msg
    assert str(folder / "test_batch") in msg
    assert not marker.exists()


def test_cifar_garbage_file_is_a_data_error(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(DataError, match="test_batch"):
        load_images("cifar10", "test", root=tmp_path)


# --------------------------------------------------------------------------------------------------
# CelebA


@pytest.mark.parametrize(
    ("size", "side", "top", "left"),
    [((89, 109), 70, 19, 9), ((178, 218), 140, 39, 19)],
)
def test_celeba_crop_rule_is_pixel_exact(tmp_path, size, side, top, left):
    _, _, arrays = make_celeba(tmp_path, n=2, size=size, lossless=True)
    data = load_images("celeba", root=tmp_path, image_size=side)  # no resize: the crop itself
    assert data.images.shape == (2, 3, side, side)
    expected = arrays[1][top : top + side, left : left + side].transpose(2, 0, 1)
    assert np.array_equal(data.images[1].numpy(), expected)


def test_celeba_centre_square_fills_the_resized_image(tmp_path):
    cdir = tmp_path / "celeba" / "img_align_celeba"
    cdir.mkdir(parents=True)
    arr = np.zeros((218, 178, 3), dtype=np.uint8)
    arr[..., 2] = 255  # blue frame ...
    arr[39:179, 19:159] = (255, 0, 0)  # ... around exactly the 140x140 centre crop, which is red
    (cdir / "000001.jpg").write_bytes(png_bytes(arr))
    write_attr_file(tmp_path / "celeba" / "list_attr_celeba.txt", ["000001.jpg"], np.ones((1, 40)))
    data = load_images("celeba", root=tmp_path)
    assert data.images.shape == (1, 3, 64, 64)
    assert int(data.images[0, 0].min()) == 255 and int(data.images[0, 1:].max()) == 0


def test_celeba_attributes_partition_and_zip(tmp_path):
    _, values, _ = make_celeba(tmp_path, n=4, in_zip=True, partition=[0, 0, 1, 2])
    train = load_images("celeba", "train", root=tmp_path)
    assert train.images.shape == (3, 3, 64, 64) and train.images.dtype == torch.uint8
    assert train.attributes.dtype == torch.float32 and train.attributes.shape == (3, 40)
    assert np.array_equal(train.attributes.numpy(), values[:3].astype(np.float32))
    assert set(np.unique(train.attributes.numpy())) <= {-1.0, 1.0}
    assert train.attribute_names == ATTR_NAMES and train.labels is None
    assert ".zip" in train.source
    test = load_images("celeba", "test", root=tmp_path, image_size=32)
    assert test.images.shape == (1, 3, 32, 32)
    assert np.array_equal(test.attributes.numpy(), values[3:].astype(np.float32))


def test_celeba_prefers_complete_folder_else_zip(tmp_path):
    make_celeba(tmp_path / "a", n=4, in_folder=4, in_zip=True)
    source = load_images("celeba", root=tmp_path / "a").source
    assert source.startswith(str(tmp_path / "a" / "celeba" / "img_align_celeba") + ";")
    make_celeba(tmp_path / "b", n=4, in_folder=2, in_zip=True)
    data = load_images("celeba", root=tmp_path / "b")
    assert ".zip" in data.source and len(data) == 4 and not data.skipped


def test_celeba_empty_split_errors(tmp_path):
    make_celeba(tmp_path / "a", n=2, partition=[0, 0])
    with pytest.raises(DataError, match="split='train'"):
        load_images("celeba", "test", root=tmp_path / "a")
    make_celeba(tmp_path / "b", n=2)
    assert len(load_images("celeba", "train", root=tmp_path / "b")) == 2
    with pytest.raises(DataError, match="list_eval_partition.txt"):
        load_images("celeba", "test", root=tmp_path / "b")


def test_celeba_missing_and_corrupt_images(tmp_path):
    names, _, _ = make_celeba(tmp_path, n=4)
    folder = tmp_path / "celeba" / "img_align_celeba"
    (folder / names[1]).unlink()
    (folder / names[2]).write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        data = load_images("celeba", root=tmp_path)
    assert len(data) == 2 and data.attributes.shape == (2, 40)
    assert data.skipped == [str(folder / names[1]), str(folder / names[2])]
    with pytest.raises(DataError, match=names[1]):
        load_images("celeba", root=tmp_path, strict=True)
    with warnings.catch_warnings():  # limit stops before the unreadable files are touched
        warnings.filterwarnings("error", message=".*unreadable.*")
        assert len(load_images("celeba", root=tmp_path, limit=1)) == 1


def test_celeba_missing_dataset_message(tmp_path):
    with pytest.raises(DataError) as info:
        load_images("celeba", root=tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "celeba" / "list_attr_celeba.txt") in msg
    assert str(tmp_path / "celeba" / "img_align_celeba") in msg
    assert "--data-root" in msg and "--download" in msg and "Google Drive" in msg and "manual" in msg


def test_celeba_bad_attribute_line(tmp_path):
    make_celeba(tmp_path, n=2)
    path = tmp_path / "celeba" / "list_attr_celeba.txt"
    path.write_text(path.read_text().replace(" 1", " 3", 1))
    with pytest.raises(DataError, match=r"line 3"):
        load_images("celeba", root=tmp_path)


# --------------------------------------------------------------------------------------------------
# folder / zip


def make_folder(path: Path) -> None:
    (path / "cats").mkdir(parents=True)
    (path / "dogs").mkdir()
    Image.fromarray(np.full((6, 8), 10, np.uint8)).save(path / "cats" / "a.png")
    Image.fromarray(np.full((6, 8), 20, np.uint8)).save(path / "cats" / "b.png")
    Image.fromarray(np.full((6, 8), 30, np.uint8)).save(path / "dogs" / "c.bmp")
    (path / "notes.txt").write_text("not an image")


def test_folder_greyscale_sorted_and_string_labels(tmp_path):
    make_folder(tmp_path / "imgs")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("filename,label\ncats/a.png,cat\ncats/b.png,cat\ndogs/c.bmp,dog\n")
    data = load_images("folder", path=tmp_path / "imgs", labels_csv=csv_path)
    assert data.images.shape == (3, 1, 6, 8) and data.images.dtype == torch.uint8
    assert data.images[:, 0, 0, 0].tolist() == [10, 20, 30]  # sorted by relative path
    assert data.labels.tolist() == [0, 0, 1] and data.class_names == ["cat", "dog"]
    rgb = load_images("folder", path=tmp_path / "imgs", channels=3)
    assert rgb.images.shape == (3, 3, 6, 8) and rgb.labels is None


def test_folder_int_labels_split_column_and_image_size(tmp_path):
    make_folder(tmp_path / "imgs")
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("filename,label,split\ncats/a.png,3,train\ncats/b.png,1,test\ndogs/c.bmp,2,train\n")
    train = load_images("folder", path=tmp_path / "imgs", labels_csv=csv_path, image_size=4)
    assert (
        train.images.shape == (2, 1, 4, 4) and train.labels.tolist() == [3, 2] and train.class_names is None
    )
    test = load_images("folder", "test", path=tmp_path / "imgs", labels_csv=csv_path)
    assert test.labels.tolist() == [1] and int(test.images[0, 0, 0, 0]) == 20


def test_folder_mixed_channels_and_zip(tmp_path):
    zpath = tmp_path / "imgs.zip"
    colour = np.zeros((5, 5, 3), np.uint8)
    colour[..., 1] = 200
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("b/colour.png", png_bytes(colour))
        zf.writestr("a/grey.png", png_bytes(np.full((5, 5), 50, np.uint8)))
        zf.writestr("__MACOSX/a/._grey.png", b"junk")
    data = load_images("folder", path=zpath)
    assert data.images.shape == (2, 3, 5, 5)  # one colour image -> everything RGB
    assert data.images[0, :, 0, 0].tolist() == [50, 50, 50] and data.images[1, :, 0, 0].tolist() == [
        0,
        200,
        0,
    ]
    assert load_images("folder", path=zpath, channels=1).images.shape == (2, 1, 5, 5)


def test_folder_corrupt_image_skipped_or_strict(tmp_path):
    make_folder(tmp_path / "imgs")
    bad = tmp_path / "imgs" / "cats" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image\(s\): .*broken.png"):
        data = load_images("folder", path=tmp_path / "imgs")
    assert len(data) == 3 and data.skipped == [str(bad)]
    with pytest.raises(DataError, match="broken.png"):
        load_images("folder", path=tmp_path / "imgs", strict=True)


def test_folder_size_mismatch_and_option_errors(tmp_path):
    make_folder(tmp_path / "imgs")
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(tmp_path / "imgs" / "dogs" / "d.png")
    with pytest.raises(DataError, match=r"a.png is 8x6 but .*d.png is 7x7.*image_size"):
        load_images("folder", path=tmp_path / "imgs")
    assert load_images("folder", path=tmp_path / "imgs", image_size=5).images.shape == (4, 1, 5, 5)
    with pytest.raises(DataError, match="'path'"):
        load_images("folder")
    with pytest.raises(DataError, match="only a train split"):
        load_images("folder", "test", path=tmp_path / "imgs")
    with pytest.raises(DataError, match="channels"):
        load_images("folder", path=tmp_path / "imgs", channels=2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_images("folder", path=tmp_path / "empty")
