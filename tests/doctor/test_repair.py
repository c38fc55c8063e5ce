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


def test_a_cut_that_leaves_the_rate_far_too_high_goes_to_the_optimizers_usual_rate():
    """Adam at 10 cut tenfold is still far above Adam's range (1e-5..1e-2): the fix
    uses Adam's usual 0.001 instead; a cut that lands inside the range is kept."""
    f = _finding("exploding_gradients", {"optimizer.lr": 1.0})
    fix = choose_fix(f, _plan(**{"optimizer.name": "adam", "optimizer.lr": 10.0}), [])
    assert fix == {"optimizer.lr": 1e-3}
    f = _finding("exploding_gradients", {"optimizer.lr": 0.5})
    fix = choose_fix(f, _plan(**{"optimizer.name": "sgd", "optimizer.lr": 5.0}), [])
    assert fix == {"optimizer.lr": 0.5}  # SGD's range reaches 1.0


def test_a_raise_above_the_usual_range_is_not_tried():
    f = _finding("cannot_overfit_batch", {"optimizer.lr": 0.05})
    plan = _plan(**{"optimizer.name": "adam", "optimizer.lr": 5e-3, "model.init_scale": 3.0,
                    "model.bias_init": 0.0})
    fix = choose_fix(f, plan, [])  # neither 0.05 nor the escalation's 0.05: the next one
    assert fix == {"model.init": "he_normal", "model.init_scale": 1.0, "model.bias_init": 0.0}


def test_dead_relus_keep_a_rate_inside_the_usual_range_and_cut_one_above_it():
    f = _finding("dead_relu", {"model.activation": "leaky_relu", "optimizer.lr": 1e-4})
    fix = choose_fix(f, _plan(**{"optimizer.name": "adam", "optimizer.lr": 1e-3}), [])
    assert fix == {"model.activation": "leaky_relu"}
    f = _finding("dead_relu", {"model.activation": "leaky_relu", "optimizer.lr": 0.1})
    fix = choose_fix(f, _plan(**{"optimizer.name": "adam", "optimizer.lr": 1.0}), [])
    assert fix == {"model.activation": "leaky_relu", "optimizer.lr": 1e-3}


def test_auto_changes_nothing_where_the_rule_chose_but_resets_a_users_value():
    from nnrecipe.plan import Decision
    from nnrecipe.plan.schema import Plan

    def plan(rule):
        decisions = {k: Decision(v, "why", "some_rule") for k, v in _plan().items()}
        return Plan({**decisions, "model.init": Decision("he_normal", "why", rule)}, {})

    f = _finding("cannot_overfit_batch", {"model.init": "auto"})
    assert choose_fix(f, plan("user"), []) == {"model.init": "auto"}
    assert choose_fix(f, plan("init_rule"), []) == {"optimizer.lr": 10.0}  # the escalation
