"""`train.reuse_fakes`: the D step judges the G step's fakes instead of rendering its own.

With it, each step renders fakes once per micro-batch (the G step's), and every D's fake input
in the D step is the G step's input, detached, value for value; without it the D step renders
new ones from its own draws. Splitting the batch into micro-batches still gives the same update,
and the recipe's default is what FMR's release does (one render for both updates).
"""

import pytest
import torch
from train_tiny import FP32, make_trainer, split_gap, state_close, trained_weights

from vidgan.recipes.fmr import FMRRecipe
from vidgan.train.recipe import TrainRecipe


@pytest.mark.parametrize("reuse", [True, False])
def test_d_step_judges_the_g_steps_fakes(tmp_path, reuse):
    tr = make_trainer(
        tmp_path, "train.accumulate=2", f"train.reuse_fakes={str(reuse).lower()}", "train.steps=1"
    )
    assert tr.hp.reuse_fakes is reuse
    calls: list[bool] = []
    fake_inputs = tr.recipe.fake_inputs
    tr.recipe.fake_inputs = lambda *a, **k: (
        calls.append(torch.is_grad_enabled()) or fake_inputs(*a, **k)
    )
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in tr.Ds}
    hooks = [
        D.register_forward_pre_hook(lambda m, args, n=name: seen[n].append(args[0].detach()))
        for name, D in tr.Ds.items()
    ]
    tr.train_step(next(iter(tr.batches)))
    for h in hooks:
        h.remove()
    # G step: one render per micro-batch (with grad); D step: none (reuse) or one each (no grad)
    assert calls == ([True, True] if reuse else [True, True, False, False])
    for xs in seen.values():
        # G step: fake mb0, fake mb1; D step per micro-batch: real, fake (R1 runs at step 0 too)
        g_fakes, d_fakes = xs[:2], xs[3:6:2]
        for a, b in zip(g_fakes, d_fakes, strict=True):
            assert torch.equal(a, b) is reuse


def test_reuse_fakes_keeps_split_invariance(tmp_path):
    gap, one = split_gap(tmp_path / "reuse", "train.reuse_fakes=true")
    assert gap < 1e-5
    opts = ("train.steps=3", "train.checkpoint_every=100", "train.reuse_fakes=false")
    other = make_trainer(tmp_path / "c", FP32, *opts)
    other.fit()
    # the D step did see other fakes
    assert state_close(trained_weights(one), trained_weights(other)) > 1e-4


def test_recipe_defaults():
    assert TrainRecipe.reuse_fakes is False  # StyleGAN2-ADA: each phase renders its own
    assert FMRRecipe.reuse_fakes is True  # the FMR release renders one batch per step
