"""SiliconNet modules: shapes, parameter count, SimSiam's detached targets, embedding freezing."""

from __future__ import annotations

import pytest
import torch

from ecglatent.models.siliconet import (
    BEAT_SAMPLES,
    BeatClassifier,
    Predictor,
    Projector,
    SiliconEmbedding,
    SimSiam,
    count_parameters,
)
from ecglatent.training.simsiam import negative_cosine, simsiam_loss

# Table 3 with "same" padding and bias-free convolutions before BatchNorm.
EMBEDDING_PARAMS = 528_770


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def test_embedding_shapes_and_parameter_count():
    emb = SiliconEmbedding()
    x = torch.randn(5, 1, BEAT_SAMPLES)
    assert emb(x).shape == (5, 256)
    # three average pools: 301 -> 150 -> 75 -> 37 before the global max pooling
    assert emb.features(x).shape == (5, 256, 37)
    assert count_parameters(emb) == EMBEDDING_PARAMS
    n_conv = sum(isinstance(m, torch.nn.Conv1d) for m in emb.modules())
    assert n_conv == 12  # Table 3 as listed
    with pytest.raises(ValueError, match="expected"):
        emb(torch.randn(5, BEAT_SAMPLES))


def test_heads_and_classifier_shapes():
    h = torch.randn(6, 256)
    assert Projector()(h).shape == (6, 256)
    assert Predictor()(h).shape == (6, 256)
    assert Projector(n_layers=3, out_dim=128)(h).shape == (6, 128)
    clf = BeatClassifier(n_classes=2)
    assert clf(torch.randn(6, 1, BEAT_SAMPLES)).shape == (6, 2)
    assert count_parameters(clf) == EMBEDDING_PARAMS + 256 * 2 + 2


def test_simsiam_forward_returns_detached_targets():
    model = SimSiam()
    x1, x2 = torch.randn(4, 1, BEAT_SAMPLES), torch.randn(4, 1, BEAT_SAMPLES)
    p1, p2, z1, z2 = model(x1, x2)
    assert all(t.shape == (4, 256) for t in (p1, p2, z1, z2))
    assert p1.requires_grad and p2.requires_grad
    assert not z1.requires_grad and not z2.requires_grad


def test_no_gradient_reaches_the_view_that_is_only_a_target():
    model = SimSiam()
    x1 = torch.randn(4, 1, BEAT_SAMPLES, requires_grad=True)
    x2 = torch.randn(4, 1, BEAT_SAMPLES, requires_grad=True)
    p1, _, _, z2 = model(x1, x2)
    negative_cosine(p1, z2).backward()  # x2 enters only as the target sg(z2)
    assert x2.grad is None
    assert x1.grad is not None and x1.grad.abs().sum() > 0
    # the symmetric loss does reach both views, through their predictions
    x1.grad = None
    simsiam_loss(*model(x1, x2)).backward()
    assert x1.grad is not None and x2.grad is not None


def test_frozen_embedding_gets_no_gradients_and_keeps_batchnorm_stats():
    clf = BeatClassifier().freeze_embedding(True)
    stats = {k: v.clone() for k, v in clf.embedding.state_dict().items()}
    clf.train()
    assert not clf.embedding.training and clf.classifier.training
    clf(torch.randn(8, 1, BEAT_SAMPLES)).sum().backward()
    assert all(p.grad is None for p in clf.embedding.parameters())
    assert all(p.grad is not None for p in clf.classifier.parameters())
    for k, v in clf.embedding.state_dict().items():
        assert torch.equal(v, stats[k]), k
    clf.freeze_embedding(False)
    assert clf.embedding.training and all(p.requires_grad for p in clf.embedding.parameters())
