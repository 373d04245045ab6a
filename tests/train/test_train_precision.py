"""`train.amp` default: bf16 autocast only where the hardware has bf16 units."""

from __future__ import annotations

import pytest
import torch

from vidgan import precision

X86_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
X86_AMX = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_cpu_flags_parse_x86_and_arm():
    assert "avx2" in precision.cpu_flags(X86_AVX2)
    assert not precision.cpu_flags(X86_AVX2) & precision.BF16_CPU_FLAGS
    assert {"avx512_bf16", "amx_bf16"} <= precision.cpu_flags(X86_AMX)
    assert "bf16" in precision.cpu_flags(ARM_BF16)
    assert precision.cpu_flags("no flags here\n") == frozenset()


@pytest.mark.parametrize(("cpuinfo", "expected"), [(X86_AVX2, False), (X86_AMX, True)])
def test_auto_amp_follows_cpu_flags(monkeypatch, cpuinfo, expected):
    monkeypatch.setattr(
        precision,
        "_cpu_has_bf16",
        lambda: bool(precision.cpu_flags(cpuinfo) & precision.BF16_CPU_FLAGS),
    )
    assert precision.resolve_amp(None, "cpu") is expected
    # an explicit choice always wins
    assert precision.resolve_amp(True, "cpu") is True
    assert precision.resolve_amp(False, "cpu") is False


def test_trainer_resolves_auto_amp_for_this_machine(tmp_path):
    from train_tiny import make_trainer

    trainer = make_trainer(tmp_path / "run")
    assert trainer.cfg.amp is None  # the default is "auto"
    assert trainer.amp is precision.native_bf16(trainer.device)
    x = torch.ones(2, 2)
    with trainer._autocast():
        y = x @ x
    assert y.dtype == (torch.bfloat16 if trainer.amp else torch.float32)
