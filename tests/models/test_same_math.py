"""The faster models compute the same function as the code before the speed-up (issue 11).

The pre-change modules are frozen under benchmarks/_legacy/; each test loads the same weights
into both and compares outputs and parameter gradients in float32 (to 1e-5, relative to the
largest value). Dropout draws its masks differently now, so its train-mode outputs are
compared with p = 0 (and the same ε for the reparameterisation) and the new mask is checked
statistically.

In float32 the layouts sum in different orders, so values agree to rounding: the check is
‖new − old‖ ≤ 1e-5 ‖old‖ (2-norm over the tensor; one element far from the bulk can differ by
~2e-5 of the largest value through a decoder). The same models in float64 agree to 1e-10,
which no change of the function itself could pass. (The float32 gap is largest, a few 1e-6
and on some batches ~1e-5, in the gradient of the wide flatten-to-latent layer.)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ecglatent.models import siliconet, small_vae
from ecglatent.models.factor_vae import build_factor_vae
from ecglatent.training.losses import vae_loss
from ecglatent.training.simsiam import simsiam_loss

LEGACY = Path(__file__).resolve().parents[2] / "benchmarks" / "_legacy"
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _legacy(name: str):
    """Import benchmarks/_legacy/<name>.py as part of a package named ``_legacy``."""
    if "_legacy" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "_legacy", LEGACY / "__init__.py", submodule_search_locations=[str(LEGACY)]
        )
        pkg = importlib.util.module_from_spec(spec)
        sys.modules["_legacy"] = pkg
        spec.loader.exec_module(pkg)
    return importlib.import_module(f"_legacy.{name}")


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    """‖a − b‖₂ ≤ tol · max(‖b‖₂, 1e-6), tol by dtype (1e-5 float32, 1e-10 float64)."""
    a, b = a.detach(), b.detach()
    assert a.shape == b.shape and a.dtype == b.dtype
    tol = TOL.get(b.dtype, 1e-5)
    scale = max(float(b.double().norm()), 1e-6)
    err = float((a.double() - b.double()).norm())
    assert err <= tol * scale, f"‖diff‖ {err:.3g} above {tol} × {scale:.3g}"


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def _close_grads(new: dict[str, torch.Tensor], old: dict[str, torch.Tensor]) -> None:
    """All parameter gradients as one vector, relative to its largest entry.

    Per tensor, a gradient that is a small difference of large terms (a bias under
    cancellation) carries float32 rounding of the large terms: ~1e-5 of its own size.
    """
    assert new.keys() == old.keys() and old
    _close(torch.cat([new[k].flatten() for k in old]), torch.cat([old[k].flatten() for k in old]))


def _same_state(old: torch.nn.Module, new: torch.nn.Module) -> None:
    """Same keys and shapes, then load the old weights into the new model."""
    so, sn = old.state_dict(), new.state_dict()
    assert list(so) == list(sn)
    assert all(so[k].shape == sn[k].shape for k in so)
    new.load_state_dict(so)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("leads", "samples"), [(12, 400), (2, 288)])
@pytest.mark.parametrize("train_mode", [False, True])
def test_small_vae_same_outputs_and_gradients(leads, samples, train_mode, dtype):
    old_mod = _legacy("small_vae")
    torch.manual_seed(0)
    dropout = 0.0 if train_mode else 0.1  # eval mode ignores dropout anyway
    old = old_mod.build_small_vae(leads, samples, 2, latent_pred=2, dropout=dropout)
    torch.manual_seed(1)  # different init: the load below must make them equal
    new = small_vae.build_small_vae(leads, samples, 2, latent_pred=2, dropout=dropout)
    _same_state(old, new)
    assert small_vae.count_parameters(new) == old_mod.count_parameters(old)
    old.to(dtype)
    new.to(dtype)
    torch.manual_seed(2)
    x = torch.randn(8, leads, samples, dtype=dtype)
    rr = torch.randn(8, 2, dtype=dtype)
    y = torch.tensor([0.0, 1.0] * 4, dtype=dtype)
    outs, grads = [], []
    for model in (old, new):
        model.train(train_mode)
        torch.manual_seed(123)  # the same ε for the reparameterisation in train mode
        out = model(x, rr)
        terms = vae_loss(out, x, y, beta=4.0, gamma=100.0)
        terms.total.backward()
        outs.append(out)
        grads.append(_grads(model))
    for a, b in zip(outs[1], outs[0], strict=True):
        _close(a, b)
    _close_grads(grads[1], grads[0])


def test_factor_vae_matches_with_torch_dropout_in_eval_mode():
    # the FactorECG-style VAE shares the blocks; with torch's own Dropout modules in place of
    # the faster ones (the code before the change) its eval-mode output must not move
    torch.manual_seed(0)
    model = build_factor_vae(12, 400, 4, dropout=0.1).eval()
    x = torch.randn(4, 12, 400)
    with torch.no_grad():
        ref = model(x).x_hat
        n_swapped = 0
        for module in list(model.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, small_vae.Dropout):
                    setattr(module, name, torch.nn.Dropout(child.p))
                    n_swapped += 1
        assert n_swapped > 0
        _close(model.eval()(x).x_hat, ref)


def test_new_dropout_keep_probability_and_scale():
    p = 0.1
    drop = small_vae.Dropout(p).train()
    x = torch.ones(64, 8, 12, 200)
    torch.manual_seed(0)
    out = drop(x)
    kept = out != 0
    n = kept.numel()
    keep_rate = float(kept.float().mean())
    # binomial standard error at n = 1.2M is 2.7e-4: 5 SE
    assert abs(keep_rate - (1 - p)) < 5 * (p * (1 - p) / n) ** 0.5
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    assert abs(float(out.mean()) - 1.0) < 2e-3  # unbiased, as nn.Dropout
    # independent across the layout: the channels of one position are not all kept or dropped
    per_pos = kept.float().mean(dim=1)
    assert float(per_pos.min()) > 0 and float(per_pos.max()) <= 1
    assert float(kept.float().mean(dim=(0, 2, 3)).std()) < 0.01
    # gradient through the same mask
    xr = torch.randn(4, 8, 3, 50, requires_grad=True)
    torch.manual_seed(1)
    y = drop(xr)
    y.sum().backward()
    _close(xr.grad, (y != 0).float() / (1 - p))


def test_new_dropout_seeded_by_torch_and_off_in_eval():
    drop = small_vae.Dropout(0.3).train()
    x = torch.randn(2, 8, 12, 300)
    torch.manual_seed(5)
    a = drop(x)
    torch.manual_seed(5)
    b = drop(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, drop(x))  # the next call draws a new mask
    torch.set_num_threads(1)
    try:
        torch.manual_seed(5)
        assert torch.equal(drop(x), a)  # the mask does not depend on the thread count
    finally:
        torch.set_num_threads(2)
    drop.eval()
    assert torch.equal(drop(x), x)
    assert isinstance(drop, torch.nn.Dropout)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("train_mode", [True, False])
def test_siliconet_classifier_same_outputs_gradients_and_bn_stats(train_mode, dtype):
    old_mod = _legacy("siliconet")
    torch.manual_seed(0)
    old = old_mod.BeatClassifier()
    new = siliconet.BeatClassifier()
    _same_state(old, new)
    if not train_mode:  # non-trivial running statistics
        for m in (old, new):
            for bn in m.modules():
                if isinstance(bn, torch.nn.BatchNorm1d):
                    torch.manual_seed(7)
                    bn.running_mean.normal_()
                    bn.running_var.uniform_(0.5, 2.0)
    old.to(dtype)
    new.to(dtype)
    x = torch.randn(16, 1, siliconet.BEAT_SAMPLES, dtype=dtype)
    y = torch.randint(0, 2, (16,))
    logits, grads = [], []
    for m in (old, new):
        m.train(train_mode)
        out = m(x)
        F.cross_entropy(out, y).backward()
        logits.append(out.detach())
        grads.append(_grads(m))
    _close(logits[1], logits[0])
    _close_grads(grads[1], grads[0])
    so, sn = old.state_dict(), new.state_dict()
    for k in so:  # running means/vars and num_batches_tracked moved the same way
        _close(sn[k].to(dtype), so[k].to(dtype))


def test_simsiam_same_loss_and_gradients():
    old_mod = _legacy("siliconet")
    torch.manual_seed(0)
    old = old_mod.SimSiam()
    new = siliconet.SimSiam()
    _same_state(old, new)
    x1, x2 = torch.randn(16, 1, 301), torch.randn(16, 1, 301)
    losses, grads = [], []
    for m in (old, new):
        m.train()
        loss = simsiam_loss(*m(x1, x2))
        loss.backward()
        losses.append(loss.detach())
        grads.append(_grads(m))
    _close(losses[1], losses[0])
    _close_grads(grads[1], grads[0])


@pytest.mark.parametrize("length", [301, 150, 75, 8])
def test_half_pool_is_avg_pool_bit_for_bit(length):
    torch.manual_seed(0)
    x = torch.randn(4, 16, length, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    a = torch.nn.AvgPool1d(kernel_size=2, stride=2)(x)
    b = siliconet.HalfPool()(x2)
    assert torch.equal(a, b)
    g = torch.randn_like(a)
    a.backward(g)
    b.backward(g)
    assert torch.equal(x.grad, x2.grad)


def test_inference_copy_folds_batchnorm_and_computes_the_same_function():
    torch.manual_seed(0)
    model = siliconet.BeatClassifier()
    for bn in model.modules():  # non-trivial running statistics and affine parameters
        if isinstance(bn, torch.nn.BatchNorm1d):
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.normal_(0, 0.1)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = siliconet.inference_copy(model)
    # the original is untouched: same weights, still in train mode, still all BatchNorms
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    n_bn = sum(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    assert n_bn == 12  # the input BatchNorm and one after each of the 11 block convolutions
    # the copy keeps only the input BatchNorm (before the stem's zero-padded convolution)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in folded.modules()) == 1
    assert not folded.training
    x = torch.randn(64, 1, siliconet.BEAT_SAMPLES) * 2 + 0.5
    model.eval()
    with torch.no_grad():
        _close(folded(x), model(x))
        # float64: agreement to 1e-10 shows the folded function is the same, not just near
        m64, f64 = model.double(), siliconet.inference_copy(model.double())
        _close(f64(x.double()), m64(x.double()))
