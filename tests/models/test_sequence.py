import pytest
import torch
from torch import nn

from nnrecipe.errors import PlanError
from nnrecipe.models.sequence import build_rnn, build_transformer

PAD = 0


def _padded(seqs: list[list[int]], pad: int = PAD, extra: int = 0) -> torch.Tensor:
    width = max(len(s) for s in seqs) + extra
    return torch.tensor([s + [pad] * (width - len(s)) for s in seqs])


SEQS = [[5, 3, 9, 2, 7, 1], [4, 8], [6, 6, 2, 9], [3]]


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_does_not_change_a_sequence_output(kind, bidirectional):
    torch.manual_seed(0)
    model = build_rnn(kind=kind, n_outputs=3, hidden=16, layers=2, bidirectional=bidirectional,
                      vocab_size=12, embedding_dim=8).eval()
    batched = model(_padded(SEQS))
    assert batched.shape == (len(SEQS), 3)
    for i, seq in enumerate(SEQS):
        alone = torch.tensor([seq])
        # Reference: PyTorch's RNN run on the unpadded sequence, no packing involved.
        _, state = model.rnn(model.embedding(alone))
        h_n = state[0] if kind == "lstm" else state
        top = torch.cat(list(h_n[-2:] if bidirectional else h_n[-1:]), dim=1)  # (1, dirs·H)
        assert torch.allclose(batched[i], model.head(top)[0], atol=1e-6)
        assert torch.allclose(batched[i], model(alone)[0], atol=1e-6)


def test_without_packing_the_padding_would_matter():
    # The check above has teeth: reading the pads does change the final state.
    torch.manual_seed(0)
    model = build_rnn(kind="gru", n_outputs=1, hidden=8, vocab_size=12).eval()
    x = _padded(SEQS)
    _, h_n = model.rnn(model.embedding(x))
    assert not torch.allclose(model.head(h_n[-1]), model(x), atol=1e-4)


def test_bidirectional_summary_concatenates_both_directions():
    model = build_rnn(kind="lstm", n_outputs=2, hidden=10, bidirectional=True, vocab_size=12)
    assert model.summary(_padded(SEQS)).shape == (len(SEQS), 20)
    assert model.head[-1].in_features == 20


def test_all_pad_row_is_read_as_length_one():
    model = build_rnn(kind="gru", n_outputs=2, hidden=8, vocab_size=12).eval()
    x = torch.tensor([[3, 4, 0], [0, 0, 0]])
    out = model(x)
    assert torch.isfinite(out).all()
    assert torch.allclose(out[1], model(torch.tensor([[0]]))[0], atol=1e-6)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_float_features_run_full_length(kind):
    torch.manual_seed(0)
    model = build_rnn(kind=kind, n_outputs=4, hidden=12, layers=1, n_features=3).eval()
    assert model.embedding is None
    x = torch.randn(5, 7, 3)
    out = model(x)
    assert out.shape == (5, 4)
    _, state = model.rnn(x)
    h_n = state[0] if kind == "lstm" else state
    assert torch.allclose(out, model.head(h_n[-1]), atol=1e-6)


def test_gradient_reaches_the_embedding_but_not_the_pad_row():
    model = build_rnn(kind="gru", n_outputs=2, hidden=8, vocab_size=12)
    model(_padded(SEQS)).sum().backward()
    grad = model.embedding.weight.grad
    assert grad[5].abs().sum() > 0
    assert grad[PAD].abs().sum() == 0


def test_rnn_dropout_and_initialisation():
    model = build_rnn(kind="lstm", n_outputs=2, hidden=6, layers=2, n_features=3)
    assert model.rnn.dropout == 0.3 and model.head[0].p == 0.3
    assert build_rnn(kind="gru", n_outputs=2, hidden=6, layers=1, n_features=3).rnn.dropout == 0
    w = model.rnn.weight_hh_l0[:6]  # one gate's recurrent block is orthogonal
    assert torch.allclose(w @ w.T, torch.eye(6), atol=1e-5)
    assert torch.all(model.rnn.bias_ih_l0[6:12] == 1)  # LSTM forget gate starts open


def test_rnn_needs_exactly_one_input_kind():
    with pytest.raises(ValueError):
        build_rnn(kind="gru", n_outputs=2, hidden=8)
    with pytest.raises(ValueError):
        build_rnn(kind="gru", n_outputs=2, hidden=8, vocab_size=5, n_features=3)


def _transformer(**kw):
    cfg = dict(vocab_size=20, n_outputs=3, d_model=32, heads=4, layers=2, ff=64, max_len=16)
    cfg.update(kw)
    return build_transformer(**cfg)


def test_transformer_output_shape():
    assert _transformer()(_padded(SEQS)).shape == (len(SEQS), 3)


def test_transformer_ignores_extra_padding():
    torch.manual_seed(0)
    model = _transformer().eval()
    short, long = model(_padded(SEQS)), model(_padded(SEQS, extra=5))
    assert torch.allclose(short, long, atol=1e-5)



def test_transformer_fast_inference_path_agrees_with_the_training_path():
    # In eval mode PyTorch may take a fused path; without dropout both must agree.
    torch.manual_seed(0)
    model = _transformer(dropout=0.0)
    x = _padded(SEQS)
    with torch.no_grad():
        trained_path = model.train()(x)
        assert torch.allclose(model.eval()(x), trained_path, atol=1e-5)


def test_transformer_all_pad_row_does_not_give_nan():
    out = _transformer().eval()(torch.tensor([[4, 5, 0], [0, 0, 0]]))
    assert torch.isfinite(out).all()


def test_transformer_validates_heads_and_length():
    with pytest.raises(PlanError, match="divisible.*model.heads"):
        _transformer(d_model=30, heads=4)
    with pytest.raises(PlanError, match="17 tokens.*16.*text.max_len=16"):
        _transformer()(torch.ones(2, 17, dtype=torch.long))


def test_transformer_learns_whether_a_sequence_contains_token_5():
    torch.manual_seed(0)

    def batch(n=32):
        lengths = torch.randint(3, 13, (n,))
        tokens = torch.randint(1, 20, (n, 12))
        tokens[tokens == 5] = 6  # 5 appears only where planted
        has = torch.rand(n) < 0.5
        tokens[has, torch.randint(0, 3, (int(has.sum()),))] = 5  # inside every length ≥ 3
        tokens[torch.arange(12) >= lengths[:, None]] = PAD
        return tokens, has.float()

    model = _transformer(n_outputs=1, layers=1, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(200):
        x, y = batch()
        loss = nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    x, y = batch(512)
    with torch.no_grad():
        accuracy = ((model(x)[:, 0] > 0).float() == y).float().mean().item()
    assert accuracy > 0.9
