"""ResNeXt-101 Kinetics file layout, checked against Hara et al.'s model code, not a real file.

The expected key set and shapes below are written from github:kenshohara/3D-ResNets-PyTorch,
models/resnext.py as of the 2017 release that produced `resnext-101-kinetics.pth`
(ResNeXtBottleneck: conv1/bn1 1x1x1 -> mid = cardinality * int(planes / 32); conv2/bn2 3x3x3
groups=cardinality; conv3/bn3 -> planes * 2; shortcut B `downsample` = Sequential(Conv3d 1x1x1,
BatchNorm3d) on the first block of each layer; ResNeXt: conv1 7x7x7 3->64 + bn1, layer1..4 with
planes 128/256/512/1024 and [3, 4, 23, 3] blocks, fc 2048 -> 400). The release was saved from
nn.DataParallel (keys prefixed `module.`) as {'epoch', 'arch', 'state_dict', 'optimizer'} with
PyTorch 0.2/0.3, so its BatchNorms have no `num_batches_tracked`.
"""

from __future__ import annotations

import pytest
import torch

from vidgan.metrics.resnext import ResNeXt3D, load_resnext101

CARDINALITY = 32
LAYERS = {"layer1": (128, 3), "layer2": (256, 4), "layer3": (512, 23), "layer4": (1024, 3)}
BN = ("weight", "bias", "running_mean", "running_var")


def hara_resnext101_keys(num_classes: int = 400) -> dict[str, tuple[int, ...]]:
    """Key -> shape of Hara's `resnext101(cardinality=32)` state dict (before DataParallel)."""
    keys: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7, 7)}
    keys.update({f"bn1.{b}": (64,) for b in BN})
    inplanes = 64
    for layer, (planes, blocks) in LAYERS.items():
        mid, out = CARDINALITY * (planes // 32), planes * 2
        for j in range(blocks):
            p = f"{layer}.{j}"
            keys[f"{p}.conv1.weight"] = (mid, inplanes, 1, 1, 1)
            keys[f"{p}.conv2.weight"] = (mid, mid // CARDINALITY, 3, 3, 3)
            keys[f"{p}.conv3.weight"] = (out, mid, 1, 1, 1)
            for name, c in (("bn1", mid), ("bn2", mid), ("bn3", out)):
                keys.update({f"{p}.{name}.{b}": (c,) for b in BN})
            if j == 0:  # stride 2 or inplanes != planes * 2: shortcut type B
                keys[f"{p}.downsample.0.weight"] = (out, inplanes, 1, 1, 1)
                keys.update({f"{p}.downsample.1.{b}": (out,) for b in BN})
            inplanes = out
    keys["fc.weight"] = (num_classes, 2048)
    keys["fc.bias"] = (num_classes,)
    return keys


def test_our_module_has_exactly_haras_keys_and_shapes():
    expected = hara_resnext101_keys()
    with torch.device("meta"):  # shapes only, no 190 MB of random weights
        model = ResNeXt3D()
    ours = {
        k: tuple(v.shape)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert set(ours) == set(expected)
    assert ours == expected
    assert len(expected) == 522  # 2 + 4 BN + (3 convs + 12 BN) x 33 blocks + 4 x 5 + fc 2
    assert sum(torch.Size(s).numel() for s in expected.values()) == 48_478_672


@pytest.mark.slow
def test_a_file_with_haras_exact_layout_loads_strictly(tmp_path):
    expected = hara_resnext101_keys()
    state = {}
    for k, shape in expected.items():
        t = torch.zeros(shape)
        if k.endswith("running_var") or (k.endswith(".weight") and "bn" in k):
            t = torch.ones(shape)
        state[f"module.{k}"] = t
    state["module.fc.bias"] = torch.arange(400, dtype=torch.float32)
    optimizer = {
        "state": {},
        "param_groups": [
            {
                "lr": 0.1,
                "momentum": 0.9,
                "dampening": 0.9,
                "weight_decay": 1e-3,
                "nesterov": False,
                "params": list(range(len(expected))),
            }
        ],
    }
    path = tmp_path / "resnext-101-kinetics.pth"
    torch.save(
        {"epoch": 200, "arch": "resnext-101", "state_dict": state, "optimizer": optimizer}, path
    )
    model = load_resnext101(path)
    assert torch.equal(model.fc.bias, torch.arange(400, dtype=torch.float32))
