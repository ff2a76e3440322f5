"""Tests of latentstudio.metrics: closed-form checks of the maths, the extractor contracts, records.

No network and no files outside temporary folders: the digits data are built from scikit-learn,
the Inception weights are a random stand-in written to a temporary TORCH_HOME.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from datetime import datetime

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import torch
import torch.nn.functional as F

from latentstudio.data.base import ImageData
from latentstudio.errors import ConfigError, ExtractorWeightsMissing, LatentStudioError, ShapeError
from latentstudio.io.atomic import read_jsonl
from latentstudio.metrics import (
    EXTRACTORS,
    INCEPTION_WEIGHTS_FILE,
    INCEPTION_WEIGHTS_URL,
    KEY_FID,
    KEY_FID_CLF,
    BiasedMetricWarning,
    MetricRecord,
    append_record,
    compute_fid,
    compute_inception_score,
    compute_kid,
    extract_features,
    fid_from_features,
    fid_key,
    find_inception_weights,
    fit_gaussian,
    get_classifier,
    importance_sampled_nll,
    inactive_latents,
    inception_score_from_logits,
    is_key,
    kid_from_features,
    kid_key,
    load_inception,
    mahalanobis,
    read_records,
    reconstruction_error,
    variance_law,
)
from latentstudio.metrics.extractors import PYTORCH_FID_WEIGHTS_FILE

# --------------------------------------------------------------------------------------------
# FID / KID / IS maths
# --------------------------------------------------------------------------------------------


def _closed_form_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)  # singular test covariances
        covmean = np.real(scipy.linalg.sqrtm(s1 @ s2))
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2.0 * covmean))


def test_fid_of_identical_features_is_zero():
    torch.manual_seed(0)
    f = torch.randn(500, 16) * 3.0 + 1.0
    with pytest.warns(BiasedMetricWarning):
        value = fid_from_features(f, f)
    assert value == pytest.approx(0.0, abs=1e-3)


def test_fid_of_gaussians_matches_closed_form():
    rng = np.random.default_rng(0)
    d, n = 6, 20000
    a1, a2 = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a1 @ a1.T + 0.5 * np.eye(d), a2 @ a2.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d) + 2.0
    x = rng.multivariate_normal(mu1, s1, size=n)
    y = rng.multivariate_normal(mu2, s2, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BiasedMetricWarning)  # 20000 samples: no bias warning
        got = fid_from_features(torch.from_numpy(x), torch.from_numpy(y))
    assert got == pytest.approx(_closed_form_fid(x, y), rel=1e-7)
    # and (loosely) the population value
    pop = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2.0 * np.real(scipy.linalg.sqrtm(s1 @ s2))))
    assert got == pytest.approx(pop, rel=0.05)
    # float32 input gives the same value (computed in float64)
    assert fid_from_features(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == pytest.approx(got, rel=1e-5)


def test_fid_singular_covariance_is_finite():
    torch.manual_seed(1)
    few = torch.randn(20, 64)  # fewer samples than dimensions: rank-19 covariances
    other = torch.randn(25, 64) + 0.5
    const = torch.cat([torch.randn(3000, 8), torch.full((3000, 1), 7.0)], dim=1)  # a constant feature
    const2 = torch.cat([torch.randn(3000, 8) * 2, torch.full((3000, 1), 7.0)], dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BiasedMetricWarning)
        values = [fid_from_features(few, other), fid_from_features(few, few), fid_from_features(const, const2)]
    assert all(math.isfinite(v) and v >= 0 for v in values)
    assert values[1] == pytest.approx(0.0, abs=1e-3)
    a, b = const.double().numpy(), const2.double().numpy()
    assert values[2] == pytest.approx(_closed_form_fid(a, b), rel=1e-5)


def test_fid_warns_below_2048_samples():
    f = torch.randn(100, 4)
    with pytest.warns(BiasedMetricWarning, match="biased"):
        fid_from_features(f, torch.randn(3000, 4))


def test_fid_shape_errors():
    with pytest.raises(ShapeError):
        fid_from_features(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ShapeError):
        fid_from_features(torch.randn(1, 3), torch.randn(10, 3))
    with pytest.raises(LatentStudioError):
        fid_from_features(torch.full((10, 3), float("nan")), torch.randn(10, 3))


def test_kid_identical_near_zero_and_shifted_positive():
    torch.manual_seed(2)
    f, g = torch.randn(1000, 32), torch.randn(1000, 32)
    shifted_mean, _ = kid_from_features(f, f + 0.5, subsets=10, subset_size=500)
    same_mean, same_std = kid_from_features(f, f, subsets=10, subset_size=500)
    independent_mean, _ = kid_from_features(f, g, subsets=10, subset_size=500)
    assert shifted_mean > 0.5 and same_std >= 0
    # identical sets: ~0 (slightly negative, O(1/N), as the same points fall on both sides)
    assert abs(same_mean) < 0.03 * shifted_mean
    assert abs(independent_mean) < 0.03 * shifted_mean  # two samples of one distribution: unbiased, ~0
    # reproducible with a seed, the global RNG untouched
    state = torch.random.get_rng_state()
    assert kid_from_features(f, f + 0.5, subsets=5, subset_size=100, seed=3) == kid_from_features(
        f, f + 0.5, subsets=5, subset_size=100, seed=3
    )
    assert torch.equal(state, torch.random.get_rng_state())


def test_inception_score_bounds():
    k = 10
    uniform = torch.zeros(200, k)
    mean, std = inception_score_from_logits(uniform, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-6) and std == pytest.approx(0.0, abs=1e-6)
    confident = 100.0 * F.one_hot(torch.arange(1000) % k, k).float()
    mean1, std1 = inception_score_from_logits(confident, splits=1)
    assert mean1 == pytest.approx(k, rel=1e-6) and std1 == 0.0
    mean10, _ = inception_score_from_logits(confident, splits=10)  # random splits: nearly balanced
    assert 0.9 * k < mean10 <= k + 1e-6
    with pytest.raises(ShapeError):
        inception_score_from_logits(torch.zeros(5, k), splits=10)


# --------------------------------------------------------------------------------------------
# Latent diagnostics, distances, reconstruction, likelihood
# --------------------------------------------------------------------------------------------


def test_variance_law_prior_like_posterior():
    n, d = 1000, 5
    mu = torch.full((n, d), 0.3)
    logvar = torch.zeros(n, d)
    assert torch.allclose(variance_law(mu, logvar), torch.ones(d, dtype=torch.float64))
    assert inactive_latents(mu, logvar) == d


def test_variance_law_informative_latents():
    torch.manual_seed(3)
    mu = torch.randn(100_000, 4)
    logvar = torch.full((100_000, 4), -12.0)
    law = variance_law(mu, logvar)
    assert torch.allclose(law, torch.ones(4, dtype=torch.float64), atol=0.02)
    assert inactive_latents(mu, logvar) == 0


def test_variance_law_hand_computed():
    mu = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    logvar = torch.log(torch.tensor([[0.5, 0.1], [1.5, 0.1]]))
    # Var(mu) = [1, 1] (population variance), E[sd^2] = [1.0, 0.1]
    assert torch.allclose(variance_law(mu, logvar), torch.tensor([2.0, 1.1], dtype=torch.float64))
    assert inactive_latents(mu, logvar) == 1
    # E[sd^2] = [1.0, 0.1]: thresholds on either side of 1.0, never at it (the float mean of 0.5 and
    # 1.5 may land a bit above or below 1.0)
    assert inactive_latents(mu, logvar, threshold=1.05) == 0
    assert inactive_latents(mu, logvar, threshold=0.95) == 1
    with pytest.raises(ShapeError):
        variance_law(mu, logvar[:, :1])


def test_mahalanobis_matches_scipy():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(500, 5)) @ rng.normal(size=(5, 5))
    mean, cov = fit_gaussian(torch.from_numpy(x))
    np.testing.assert_allclose(mean.numpy(), x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(x, rowvar=False), rtol=1e-10)
    pts = rng.normal(size=(20, 5))
    got = mahalanobis(torch.from_numpy(pts), mean, cov)
    vi = np.linalg.inv(cov.numpy())
    want = [scipy.spatial.distance.mahalanobis(p, mean.numpy(), vi) for p in pts]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9)
    assert mahalanobis(mean[None], mean, cov).item() == pytest.approx(0.0, abs=1e-12)


def test_mahalanobis_singular_covariance_uses_pseudo_inverse():
    cov = torch.diag(torch.tensor([4.0, 1.0, 0.0]))  # third direction has no variance
    mean = torch.zeros(3)
    x = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 5.0]])
    got = mahalanobis(x, mean, cov)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, torch.tensor([1.0, 3.0], dtype=torch.float64))


def test_reconstruction_error_hand_computed():
    x = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.5]]]])  # [2, 1, 1, 2]
    x_hat = torch.tensor([[[[0.5, 0.5]]], [[[0.25, 1.0]]]])
    mse = reconstruction_error(x, x_hat, "mse")
    assert torch.allclose(mse, torch.tensor([0.25, (0.0625 + 0.25) / 2]))
    bce = reconstruction_error(x.double(), x_hat.double(), "bce")
    eps = 1e-7
    want0 = -(math.log(0.5) + math.log(0.5)) / 2
    want1 = -((0.5 * math.log(0.25) + 0.5 * math.log(0.75)) + (0.5 * math.log(1 - eps) + 0.5 * math.log(eps))) / 2
    assert bce[0].item() == pytest.approx(want0, rel=1e-9)
    assert bce[1].item() == pytest.approx(want1, rel=1e-6)
    assert bce.dtype == torch.float64
    with pytest.raises(ConfigError):
        reconstruction_error(x, x_hat, "l1")
    with pytest.raises(ShapeError):
        reconstruction_error(x, x_hat[:1])


class _Gaussian:
    def __init__(self, mean, logvar):
        self.mean, self.logvar = mean, logvar


def _linear_gaussian(s: float):
    """x = z + s * noise with z ~ N(0, I): p(x) = N(0, (1 + s^2) I), posterior N(x / (1 + s^2), s^2 / (1 + s^2))."""

    def log_px_given_z(x, z):
        return -0.5 * (((x - z) / s) ** 2 + math.log(2 * math.pi * s * s)).sum(dim=1)

    def log_px(x):
        v = 1.0 + s * s
        return -0.5 * (x.pow(2) / v + math.log(2 * math.pi * v)).sum(dim=1)

    def exact_posterior(x):
        v = s * s / (1.0 + s * s)
        return _Gaussian(x / (1.0 + s * s), torch.full_like(x, math.log(v)))

    return log_px_given_z, log_px, exact_posterior


def test_importance_sampled_nll_exact_posterior_is_exact_for_any_k():
    log_px_given_z, log_px, exact = _linear_gaussian(0.5)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64) * math.sqrt(1.25)
    want = -log_px(x)
    for k in (1, 7):
        got = importance_sampled_nll(x, exact, log_px_given_z, num_samples=k, generator=g, batch_size=16)
        assert got.shape == (40,) and got.dtype == torch.float64
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


def test_importance_sampled_nll_converges_with_poor_posterior():
    log_px_given_z, log_px, exact = _linear_gaussian(0.5)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(30, 2, generator=g, dtype=torch.float64) * math.sqrt(1.25)
    want = -log_px(x)

    def poor(xb):  # shifted mean, too wide
        q = exact(xb)
        return _Gaussian(0.7 * q.mean + 0.1, q.logvar + math.log(2.0))

    errs = {}
    for k in (1, 16, 4096):
        got = importance_sampled_nll(x, poor, log_px_given_z, num_samples=k, generator=g, batch_size=8192)
        errs[k] = (got - want).abs().mean().item()
        assert (got - want).mean() > -0.05  # an upper bound of the NLL on average
    assert errs[1] > errs[16] > errs[4096]
    assert errs[4096] < 0.01


# --------------------------------------------------------------------------------------------
# Inception extractor: missing weights and a stand-in file
# --------------------------------------------------------------------------------------------


def test_inception_missing_weights_error_never_downloads(tmp_path, monkeypatch):
    from latentstudio.metrics import extractors

    def no_download(*args, **kwargs):
        raise AssertionError("load_inception tried to download without download=True")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(extractors, "_download_inception", no_download)
    with pytest.raises(ExtractorWeightsMissing) as info:
        load_inception()
    msg = str(info.value)
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / INCEPTION_WEIGHTS_FILE) in msg
    assert INCEPTION_WEIGHTS_URL in msg and "--download" in msg
    assert isinstance(info.value, LatentStudioError) and isinstance(info.value, FileNotFoundError)
    with pytest.raises(ExtractorWeightsMissing):
        EXTRACTORS.get("inception")()
    # the pytorch-fid copy of the same weights is found as well
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    (folder / PYTORCH_FID_WEIGHTS_FILE).write_bytes(b"")
    assert find_inception_weights() == folder / PYTORCH_FID_WEIGHTS_FILE


def test_inception_loader_with_stand_in_weights(tmp_path, monkeypatch):
    """A random-valued state dict with the real keys/shapes: checks loading and plumbing only.

    The values it produces are meaningless and never reported as FIDs.
    """
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    # torch-fidelity always loads weights in its constructor: make that a no-op to get an
    # uninitialised network (no network access), then save its state dict as the stand-in.
    monkeypatch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    with monkeypatch.context() as m:
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        net = fe.FeatureExtractorInceptionV3("stand-in", ["2048"])
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    path = folder / INCEPTION_WEIGHTS_FILE
    torch.save(net.state_dict(), path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert find_inception_weights() == path

    with pytest.warns(UserWarning, match="not the standard"):
        ext = load_inception()
    assert ext.name == "inception" and ext.num_features == 2048 and ext.num_classes == 1008
    assert ext.weights_hash == hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    assert not ext.standard_weights and "299" in ext.resize_rule
    ext.train()
    assert not ext.training  # never leaves eval mode
    torch.manual_seed(0)
    grey = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    feats = ext(grey)
    assert feats.shape == (2, 2048) and feats.dtype == torch.float32 and torch.isfinite(feats).all()
    assert torch.equal(feats, ext(grey.expand(-1, 3, -1, -1).contiguous()))  # grey = repeated RGB
    assert ext.logits(grey).shape == (2, 1008)
    # the extractor runs torch-fidelity's layers with its own exact (faster) TF1 resize and stem max-pools:
    # the same bits as the library's own forward
    rgb = torch.randint(0, 256, (2, 3, 20, 37), dtype=torch.uint8)
    pool3, logits = ext.net(rgb)
    assert torch.equal(ext(rgb), pool3) and torch.equal(ext.logits(rgb), logits)
    with pytest.raises(ShapeError):
        ext(grey.float())
    # it plugs into torchmetrics' FID as the feature module (uint8 in, num_features read, no probing);
    # compute() is not run: a 2048-d eigendecomposition is slow on CPU and a stand-in value means nothing
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=ext)
    metric.update(grey, real=True)
    assert metric.real_features_cov_sum.shape == (2048, 2048) and int(metric.real_features_num_samples) == 2


def test_resize_bilinear_tf1_and_the_exact_pools():
    """TF1 resize_bilinear (align_corners=False): src = dst * in / out, upper neighbour clamped at the border."""
    from latentstudio.metrics.extractors import resize_bilinear_tf1

    x = torch.tensor([[[[0.0, 8.0], [16.0, 32.0]]]])  # [1, 1, 2, 2]
    up = resize_bilinear_tf1(x, (4, 3))
    # rows read 0, 0.5, 1, 1.5 (-> 1); columns read 0, 2/3, 4/3 (-> 1); not the half-pixel rule of F.interpolate
    row0 = torch.tensor([0.0, 8 * 2 / 3, 8.0])
    row1 = torch.tensor([16.0, 16 + 16 * 2 / 3, 32.0])
    want = torch.stack([row0, (row0 + row1) / 2, row1, row1])
    torch.testing.assert_close(up[0, 0], want)
    assert not torch.allclose(up, F.interpolate(x, size=(4, 3), mode="bilinear", align_corners=False))
    # downsampling keeps every 2nd / 3rd pixel when the ratio is an integer (no antialias)
    big = torch.arange(2 * 3 * 12 * 12, dtype=torch.float32).view(2, 3, 12, 12)
    assert torch.equal(resize_bilinear_tf1(big, (6, 4)), big[:, :, ::2, ::3])
    assert resize_bilinear_tf1(big, (12, 12)) is big
    # bit-identical to torch-fidelity's implementation of the rule (what the FID Inception used before)
    tf1 = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
    g = torch.Generator().manual_seed(0)
    for shape, size in (((2, 3, 32, 32), (299, 299)), ((1, 1, 28, 28), (299, 299)), ((1, 3, 400, 350), (299, 299)),
                        ((2, 2, 7, 19), (13, 5))):
        imgs = torch.randint(0, 256, shape, generator=g).float()
        ref = tf1.interpolate_bilinear_2d_like_tensorflow1x(imgs, size=size, align_corners=False)
        assert torch.equal(resize_bilinear_tf1(imgs, size), ref), shape
    with pytest.raises(ShapeError, match="float"):
        resize_bilinear_tf1(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), (2, 2))
    # the Inception pools run as separable maxima and shifted sums: the same values as torch's pools
    from latentstudio.metrics.extractors import _avg_pool_3x3_s1_same, _max_pool_3x3_s1_same, _max_pool_3x3_s2

    for shape in ((2, 3, 9, 9), (1, 2, 8, 11), (1, 1, 3, 3)):
        x = torch.randn(shape, generator=g)
        assert torch.equal(_max_pool_3x3_s2(x), F.max_pool2d(x, 3, stride=2)), shape
    for shape in ((2, 3, 9, 9), (1, 2, 8, 11), (1, 1, 2, 1), (1, 1, 1, 1)):
        x = torch.randn(shape, generator=g)
        assert torch.equal(_max_pool_3x3_s1_same(x), F.max_pool2d(x, 3, stride=1, padding=1)), shape
        assert torch.equal(_avg_pool_3x3_s1_same(x), F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)), shape
    corner = _avg_pool_3x3_s1_same(torch.arange(9.0).view(1, 1, 3, 3))[0, 0]
    assert corner[0, 0] == (0 + 1 + 3 + 4) / 4 and corner[1, 1] == 4.0  # padding not counted
    with pytest.raises(ShapeError, match="size"):
        resize_bilinear_tf1(torch.zeros(1, 3, 4, 4), (0, 2))


# --------------------------------------------------------------------------------------------
# Project classifier on scikit-learn digits
# --------------------------------------------------------------------------------------------


def _digits_splits() -> tuple[ImageData, ImageData]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    images = (x * 255).round().to(torch.uint8)
    labels = torch.tensor(d.target, dtype=torch.int64)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    tr, te = perm[:1437], perm[1437:]
    train = ImageData(images[tr], labels[tr], name="digits", split="train", source="sklearn")
    test = ImageData(images[te], labels[te], name="digits", split="test", source="sklearn")
    return train, test


@pytest.fixture(scope="module")
def digits_classifier(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    train, test = _digits_splits()
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LATENTSTUDIO_CACHE", str(cache))
        clf = get_classifier(train, test=test, progress=False)
        again = get_classifier(train, progress=False)
    return {"clf": clf, "again": again, "train": train, "test": test, "cache": cache}


def test_classifier_trains_to_high_accuracy(digits_classifier):
    clf = digits_classifier["clf"]
    assert not clf.loaded_from_cache
    assert clf.test_accuracy is not None and clf.test_accuracy >= 0.90
    # (training takes ~8 s on 2 idle cores; not asserted here, the machine may be shared)
    cfg = json.loads((clf.folder / "config.json").read_text())
    assert cfg["test_accuracy"] == pytest.approx(clf.test_accuracy, abs=1e-6)
    assert cfg["test_split"] == "digits/test" and cfg["weights_hash"] == clf.weights_hash
    assert (clf.folder / "model.safetensors").is_file()
    assert clf.folder.parent == digits_classifier["cache"] / "classifiers"
    assert clf.folder.name.startswith(f"digits-{digits_classifier['train'].fingerprint()}-")


def test_classifier_second_call_loads_from_cache(digits_classifier):
    clf, again = digits_classifier["clf"], digits_classifier["again"]
    assert again.loaded_from_cache  # no training: counted in test_classifier_cache_trains_once_and_keys_on_the_recipe
    assert again.weights_hash == clf.weights_hash and again.folder == clf.folder
    x = digits_classifier["test"].images[:50]
    torch.testing.assert_close(again(x), clf(x))


def test_classifier_features_shape_and_predictions(digits_classifier):
    clf, test = digits_classifier["clf"], digits_classifier["test"]
    x = test.images[:17]
    feats = clf(x)
    assert clf.name == "classifier" and clf.num_features == 128
    assert feats.shape == (17, 128) and feats.dtype == torch.float32
    assert clf.logits(x).shape == (17, 10)
    pred = clf.predict(test.images)
    assert pred.dtype == torch.int64 and pred.shape == (len(test),)
    assert (pred == test.labels).double().mean().item() == pytest.approx(clf.test_accuracy)
    # other image sizes are resized; other channel counts are refused
    assert clf(F.interpolate(x.float(), size=(20, 20)).round().to(torch.uint8)).shape == (17, 128)
    with pytest.raises(ShapeError):
        clf(x.expand(-1, 3, -1, -1))
    assert fid_key(clf.name) == KEY_FID_CLF and kid_key(clf.name) == "kid_clf" and is_key(clf.name) == "is_clf"


def _tiny_labelled(n: int = 24, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n, dtype=torch.int64) % 3
    images = torch.randint(0, 40, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    images[:, :, :, :3] += (labels * 70).to(torch.uint8)[:, None, None, None]
    return ImageData(images, labels, class_names=["a", "b", "c"], name="tiny", split="train", source="test")


def test_classifier_cache_trains_once_and_keys_on_the_recipe(tmp_path, monkeypatch):
    from latentstudio.metrics import extractors as E

    monkeypatch.setenv("LATENTSTUDIO_CACHE", str(tmp_path))
    calls = []
    real = E._train_net
    monkeypatch.setattr(E, "_train_net", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    data = _tiny_labelled()
    first = get_classifier(data, epochs=1, batch_size=8, progress=False)
    second = get_classifier(data, epochs=1, batch_size=8, progress=False)
    assert len(calls) == 1 and not first.loaded_from_cache and second.loaded_from_cache
    assert second.folder == first.folder and second.weights_hash == first.weights_hash
    torch.testing.assert_close(second(data.images), first(data.images))
    assert first.weights_hash == hashlib.sha256((first.folder / "model.safetensors").read_bytes()).hexdigest()[:16]
    assert json.loads((first.folder / "config.json").read_text())["weights_hash"] == first.weights_hash

    other = get_classifier(data, epochs=1, batch_size=8, lr=1e-3, progress=False)  # another recipe
    assert len(calls) == 2 and other.folder != first.folder and not other.loaded_from_cache
    assert sorted(p.name for p in (tmp_path / "classifiers").iterdir()) == sorted([first.folder.name, other.folder.name])

    nocache = get_classifier(data, epochs=1, batch_size=8, cache=False, progress=False)
    assert len(calls) == 3 and nocache.folder is None and nocache.weights_hash == first.weights_hash

    (first.folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="unreadable.*retraining"):
        again = get_classifier(data, epochs=1, batch_size=8, progress=False)
    assert len(calls) == 4 and not again.loaded_from_cache and again.weights_hash == first.weights_hash
    assert get_classifier(data, epochs=1, batch_size=8, progress=False).loaded_from_cache


def test_classifier_cache_files_check_names_and_shapes(tmp_path):
    from latentstudio.errors import CheckpointError
    from latentstudio.metrics.classifier_cache import (
        cached_or_trained,
        load_classifier_files,
        recipe_key,
        save_classifier_files,
    )

    assert recipe_key({"a": 1, "b": (1, 2)}) == recipe_key({"b": [1, 2], "a": 1})
    assert recipe_key({"a": 1}) != recipe_key({"a": 2}) and len(recipe_key({})) == 12
    net = torch.nn.Linear(3, 2)
    whash = save_classifier_files(tmp_path / "c", net, {"n_in": 3, "n_out": 2})
    back, cfg, h = load_classifier_files(tmp_path / "c", lambda c: torch.nn.Linear(c["n_in"], c["n_out"]))
    assert h == whash and cfg == {"n_in": 3, "n_out": 2}
    torch.testing.assert_close(back.weight, net.weight)
    with pytest.raises(CheckpointError, match=r"tensor 'weight' has shape \[2, 3\], the config needs \[2, 4\]"):
        load_classifier_files(tmp_path / "c", lambda c: torch.nn.Linear(4, 2))
    save_classifier_files(tmp_path / "e", torch.nn.Linear(3, 2, bias=False), {})
    with pytest.raises(CheckpointError, match="tensor 'bias' is missing"):
        load_classifier_files(tmp_path / "e", lambda c: torch.nn.Linear(3, 2))
    with pytest.raises(CheckpointError, match="not a valid classifier config .*KeyError"):
        load_classifier_files(tmp_path / "c", lambda c: torch.nn.Linear(c["missing"], 2))
    with pytest.raises(CheckpointError, match="is not a saved classifier .*train it again"):
        load_classifier_files(tmp_path / "nothing", lambda c: net)

    trained = []
    kw = {"load": lambda f: "loaded", "train": lambda: trained.append(1) or "trained",
          "save": lambda f, obj: save_classifier_files(f, net, {})}
    assert cached_or_trained(tmp_path / "d", **kw) == ("trained", False)
    assert cached_or_trained(tmp_path / "d", **kw) == ("loaded", True) and trained == [1]
    assert cached_or_trained(None, **kw) == ("trained", False) and trained == [1, 1]


def test_metrics_with_classifier_through_torchmetrics(digits_classifier):
    clf, train, test = digits_classifier["clf"], digits_classifier["train"], digits_classifier["test"]
    real, fake = test.images, train.images[:400]
    noise = torch.randint(0, 256, (400, 1, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fid = compute_fid(real, fake, clf, batch_size=128)
        fid_features = fid_from_features(extract_features(real, clf), extract_features(fake, clf))
        fid_self = compute_fid(real, real, clf)
        fid_noise = compute_fid(real, noise, clf)
    assert sum(issubclass(w.category, BiasedMetricWarning) for w in caught) == 4  # 360 < 2048 real images
    assert fid == pytest.approx(fid_features, rel=1e-4)
    assert fid_self == pytest.approx(0.0, abs=1e-3)
    assert fid_noise > 10 * fid
    kid_mean, kid_std = compute_kid(real, fake, clf, subsets=10, subset_size=200)
    kid_noise, _ = compute_kid(real, noise, clf, subsets=10, subset_size=200)
    assert kid_noise > 10 * abs(kid_mean) and kid_std >= 0
    is_mean, is_std = compute_inception_score(real, clf, splits=4)
    assert 8.0 < is_mean <= 10.0 + 1e-6 and is_std >= 0  # confident, balanced predictions on real digits


# --------------------------------------------------------------------------------------------
# Records and names
# --------------------------------------------------------------------------------------------


def test_metric_keys():
    assert fid_key("inception") == KEY_FID == "fid" and kid_key("inception") == "kid" and is_key("inception") == "is"
    assert fid_key("classifier") == "fid_clf"
    with pytest.raises(ConfigError):
        fid_key("vgg")
    assert {"inception", "classifier"} <= set(EXTRACTORS.names())


def test_append_record(tmp_path):
    class _Ext:
        name, weights_hash, resize_rule = "classifier", "abc123", "32x32 bilinear"

    rec = MetricRecord.from_extractor(
        KEY_FID_CLF, 12.5, _Ext(), num_real=360, num_generated=1000, reference="digits/test",
        source="prior", extra={"run": "r1"},
    )
    path = append_record(tmp_path, rec)
    assert path == tmp_path / "metrics.jsonl"
    append_record(tmp_path / "metrics.jsonl", MetricRecord("kid_clf", 0.01, std=0.002, extra={"k": float("nan")}))
    append_record(tmp_path, {"metric": "nll", "value": float("inf")} | {"note": "x"})
    rows = read_jsonl(path)
    assert len(rows) == 3
    r = rows[0]
    assert r["metric"] == "fid_clf" and r["value"] == 12.5 and r["extractor"] == "classifier"
    assert r["weights_hash"] == "abc123" and r["num_real"] == 360 and r["num_generated"] == 1000
    assert r["reference"] == "digits/test" and r["resize_rule"] == "32x32 bilinear" and r["source"] == "prior"
    assert r["run"] == "r1"
    assert datetime.fromisoformat(r["timestamp"]).utcoffset().total_seconds() == 0
    assert rows[1]["std"] == 0.002 and rows[1]["k"] is None and rows[1]["k_nonfinite"] == "nan"
    assert rows[2]["value"] is None and rows[2]["value_nonfinite"] == "inf" and "timestamp" in rows[2]
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
    assert [x["metric"] for x in read_records(tmp_path, "kid_clf")] == ["kid_clf"]
    assert MetricRecord("fid", torch.tensor(2.5)).to_dict()["value"] == 2.5
    bad = MetricRecord("fid", float("nan"))
    assert bad.to_dict()["value"] is None and bad.to_dict()["value_nonfinite"] == "nan"
    with pytest.raises(ConfigError):
        MetricRecord("fid", 1.0, extra={"metric": "x"}).to_dict()
