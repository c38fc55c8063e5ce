from nnrecipe.doctor import make_finding
from nnrecipe.doctor.repair import choose_fix, keeps_weights, repairable_symptom


class _Plan(dict):
    pass


def _plan(**kw):
    base = {"optimizer.lr": 1.0, "model.hidden_layers": 2, "model.activation": "relu",
            "train.grad_clip.kind": "none", "train.grad_clip.max": 1.0, "model.init": "he_normal"}
    return _Plan({**base, **kw})


def _finding(code, fix):
    return make_finding(code, {"x": 1.0}, "why", ["do this"], fix, epoch=2)


def test_the_findings_own_fix_comes_first_then_the_escalation():
    f = _finding("exploding_gradients", {"optimizer.lr": 0.1})
    plan = _plan()
    first = choose_fix(f, plan, [])
    assert first == {"optimizer.lr": 0.1}
    second = choose_fix(f, plan, [first])
    assert second == {"train.grad_clip.kind": "global_norm", "train.grad_clip.max": 1.0,
                      "optimizer.lr": 0.1}
    third = choose_fix(f, plan, [first, second])
    assert third["optimizer.lr"] == 0.01


def test_a_fix_that_changes_nothing_or_only_data_is_skipped():
    f = _finding("loss_divergence", {"optimizer.lr": 1.0, "data.scale": "standard"})
    fix = choose_fix(f, _plan(), [])
    assert fix == {"optimizer.lr": 0.1}  # the escalation: the finding's own fix changes nothing


def test_only_error_level_repairable_codes_are_symptoms():
    warn = make_finding("loss_oscillation", {}, "e", [], {"optimizer.lr": 0.1})
    err = make_finding("dead_relu", {}, "e", [], {"model.activation": "leaky_relu"})
    assert repairable_symptom([warn]) is None
    assert repairable_symptom([warn, err]) is err


def test_optimizer_changes_keep_the_weights_architecture_changes_do_not():
    assert keeps_weights({"optimizer.lr": 0.1, "train.grad_clip.kind": "global_norm"})
    assert not keeps_weights({"model.activation": "leaky_relu", "optimizer.lr": 0.1})
