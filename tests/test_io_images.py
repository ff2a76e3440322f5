"""Image files: the format follows the extension (PNG, JPEG, WebP) or the write is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.errors import ConfigError
from latentstudio.io.images import save_grid, save_image


@pytest.mark.parametrize(("name", "fmt"), [("a.png", "PNG"), ("a.JPG", "JPEG"), ("a.jpeg", "JPEG"),
                                           ("a.webp", "WEBP")])
def test_the_extension_decides_the_format(tmp_path, name, fmt):
    img = torch.randint(0, 256, (3, 16, 16), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    path = save_image(img, tmp_path / name)
    with Image.open(path) as f:
        assert f.format == fmt and f.size == (16, 16)
    if fmt == "PNG":  # lossless
        with Image.open(path) as f:
            assert torch.equal(torch.from_numpy(np.asarray(f)).permute(2, 0, 1), img)


def test_an_unknown_extension_is_refused_before_writing(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown image type '\.bmp'.*\.png"):
        save_grid(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), tmp_path / "grid.bmp")
    assert not list(tmp_path.iterdir())
