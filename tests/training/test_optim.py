"""make_adamw: fused where torch has it, param groups kept whole, same update as torch's loop."""

import pytest
import torch
from torch import nn

from ecglatent.training.optim import make_adamw


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))


def _train(opt: torch.optim.Optimizer, model: nn.Module, steps: int = 5) -> None:
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(32, 8, generator=gen)
        loss = model(x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def test_fused_on_the_cpu_and_the_same_update_as_the_loop():
    ref, new = _model(), _model()
    _train(torch.optim.AdamW(ref.parameters(), lr=1e-2, weight_decay=1e-2), ref)
    opt = make_adamw(new.parameters(), lr=1e-2, weight_decay=1e-2)
    assert opt.defaults["fused"] is True
    _train(opt, new)
    init = _model()
    for a, b, b0 in zip(ref.parameters(), new.parameters(), init.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)
        assert not torch.equal(b, b0)  # trained at all


def test_param_groups_from_generators_keep_their_parameters_and_rates():
    model = _model()
    w_slow = model[0].weight.detach().clone()
    w_fast = model[2].weight.detach().clone()
    groups = [
        {"params": model[2].parameters(), "lr": 1e-2, "name": "fast"},
        {"params": model[0].parameters(), "lr": 1e-6, "name": "slow"},
    ]
    opt = make_adamw(groups, weight_decay=0.0)
    assert [len(g["params"]) for g in opt.param_groups] == [2, 2]
    assert [g["name"] for g in opt.param_groups] == ["fast", "slow"]
    _train(opt, model, steps=1)
    slow = (model[0].weight.detach() - w_slow).abs().max()
    fast = (model[2].weight.detach() - w_fast).abs().max()
    # Adam's first step moves every weight by ~lr
    assert float(slow) == pytest.approx(1e-6, rel=0.05)
    assert float(fast) == pytest.approx(1e-2, rel=0.05)


def test_not_fused_for_dtypes_torch_cannot_fuse():
    params = [nn.Parameter(torch.zeros(3, dtype=torch.float16))]
    assert not make_adamw(params).defaults["fused"]
