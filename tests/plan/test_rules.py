import numpy as np
import pandas as pd
import pytest

from nnrecipe.errors import PlanError
from nnrecipe.plan import add_parameter_count, make_plan


def test_binary_gets_one_logit_and_bce(table, profile_of):
    p = make_plan(profile_of(table(task="binary")), 210)
    assert (p["task"], p["model.n_outputs"], p["loss.name"], p["model.output_activation"]) == \
        ("binary", 1, "bce", "linear")


def test_multiclass_gets_one_logit_per_class_and_cross_entropy(table, profile_of):
    p = make_plan(profile_of(table(task="multiclass")), 210)
    assert (p["task"], p["model.n_outputs"], p["loss.name"], p["model.output_activation"]) == \
        ("multiclass", 3, "cross_entropy", "linear")


@pytest.mark.parametrize("shift,expected", [(0.0, "linear"), (100.0, "softplus")])
def test_regression_output_follows_the_target_range(table, profile_of, shift, expected):
    df = table(task="regression")
    df["y"] = df["y"] - df["y"].min() + 1 if shift else df["y"]
    p = make_plan(profile_of(df), 210)
    assert p["loss.name"] == "mse" and p["model.n_outputs"] == 1
    assert p["model.output_activation"] == expected


def test_regression_target_in_unit_interval_gets_a_sigmoid(table, profile_of):
    df = table(task="regression")
    df["y"] = (df["y"] - df["y"].min()) / (df["y"].max() - df["y"].min())
    assert make_plan(profile_of(df), 210)["model.output_activation"] == "sigmoid"


@pytest.mark.parametrize("act,init", [("relu", "he_normal"), ("leaky_relu", "he_normal"),
                                      ("tanh", "glorot_uniform"), ("sigmoid", "glorot_uniform"),
                                      ("selu", "lecun_normal"), ("elu", "lecun_normal")])
def test_initialisation_follows_the_activation(table, profile_of, act, init):
    p = make_plan(profile_of(table()), 210, {"model.activation": act})
    assert p["model.init"] == init
    assert p.decisions["model.init"].rule == "model.init_follows_activation"


def test_a_user_value_wins_and_the_plan_says_so(table, profile_of):
    p = make_plan(profile_of(table()), 210, {"optimizer.name": "sgd", "model.init": "zeros"})
    assert p["model.init"] == "zeros"
    assert p.decisions["model.init"].rule == "user"
    assert "--set model.init=zeros" in p.decisions["model.init"].reason
    # rules that depend on the optimizer follow the user's choice
    assert p["optimizer.lr"] == 0.01 and p["optimizer.momentum"] == 0.9


def test_every_decision_has_a_reason_and_a_rule(table, profile_of):
    p = make_plan(profile_of(table()), 210)
    for key, d in {**p.decisions, **p.derived}.items():
        assert d.reason and d.rule, key


@pytest.mark.parametrize("overrides,fragment", [
    ({"loss.name": "cross_entropy"}, "needs class labels"),
    ({"optimizer.nesterov": True}, "nesterov=true needs optimizer.name=sgd"),
    ({"optimizer.momentum": 0.5}, "optimizer.momentum applies to sgd, rmsprop"),
])
def test_impossible_combinations_are_rejected(table, profile_of, overrides, fragment):
    with pytest.raises(PlanError, match=fragment):
        make_plan(profile_of(table(task="regression")), 210, overrides)


@pytest.mark.parametrize("n_train,expected", [(100, 8), (500, 16), (5000, 32)])
def test_batch_size_is_smaller_for_tiny_data(table, profile_of, n_train, expected):
    assert make_plan(profile_of(table()), n_train)["train.batch_size"] == expected


@pytest.mark.parametrize("n_train,expected", [(320_000, 32), (320_001, 64),
                                              (7_000_000, 1024), (10**9, 4096)])
def test_millions_of_rows_get_batches_that_bound_an_epochs_steps(table, profile_of, n_train,
                                                                  expected):
    plan = make_plan(profile_of(table()), n_train)
    assert plan["train.batch_size"] == expected
    if n_train > 320_000:  # at most 10,000 updates an epoch, below the cap
        assert n_train / expected <= 10_000 or expected == 4096
        assert plan.decisions["train.batch_size"].rule == "train.batch_for_many_rows"


@pytest.mark.parametrize("n_train,depth", [(300, 1), (5000, 2), (100_000, 3), (1_000_000, 4)])
def test_depth_grows_with_data_and_stays_within_one_to_five(table, profile_of, n_train, depth):
    assert make_plan(profile_of(table()), n_train)["model.hidden_layers"] == depth


def test_width_shrinks_to_the_parameter_budget_on_small_data(profile_of):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(300, 30)), columns=[f"x{i}" for i in range(30)])
    df["y"] = (df["x0"] > 0).astype(int)
    p = make_plan(profile_of(df), 200)
    w = p["model.width"]
    assert w < 64 and 30 * w + w <= 2 * 200  # within 2 weights per training row
    assert "halved" in p.decisions["model.width"].reason
    mid = make_plan(profile_of(df), 1_000)["model.width"]
    assert mid == 64  # twice the 30 inputs, rounded up to a power of two
    big = make_plan(profile_of(df), 200_000)
    assert big["model.width"] == 256 and "doubled" in big.decisions["model.width"].reason


@pytest.mark.parametrize("n_train,width", [(900, 32), (3_400, 64), (13_000, 128)])
def test_width_grows_with_rows_per_input_from_a_thousand_rows(profile_of, n_train, width):
    """10 inputs: 32 units by the inputs; with at least 1,000 rows, doubled while the
    network keeps under 2 weights per training row (2 hidden layers here)."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(300, 10)), columns=[f"x{i}" for i in range(10)])
    df["y"] = df["x0"] * 2.0
    p = make_plan(profile_of(df), n_train, {"model.hidden_layers": 2})
    w = p["model.width"]
    assert w == width
    assert 10 * w + w * w + w <= 2 * max(n_train, 1_000) or w == 32


def test_constant_id_and_text_columns_are_dropped_with_reasons(profile_of):
    n = 60
    df = pd.DataFrame({"id": range(n), "const": 1.0, "x": np.arange(n) % 7,
                       "note": [f"free text number {i} with several words" for i in range(n)],
                       "y": np.arange(n) % 2})
    drop = make_plan(profile_of(df), 42)["data.drop"]
    assert set(drop) == {"id", "const", "note"}
    assert "constant" in drop["const"] and "id-like" in drop["id"] and "text" in drop["note"]


def test_parameter_count_is_compared_with_rows(table, profile_of):
    p = make_plan(profile_of(table()), 210)
    assert "in proportion" in add_parameter_count(p, 400, 210).derived["model.parameters"].reason
    assert "overfitting" in add_parameter_count(p, 10_000, 210).derived["model.parameters"].reason
    assert "underfit" in add_parameter_count(p, 500, 1_000_000).derived["model.parameters"].reason


def test_missing_values_are_imputed_and_the_plan_says_so(profile_of):
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0, 4.0] * 10, "c": ["a", None, "b", "a"] * 10,
                       "y": [0, 1] * 20})
    d = make_plan(profile_of(df), 30).derived["data.impute"]
    assert d.value == {"x": 0.25, "c": 0.25}
    assert "median" in d.reason and "x (25% missing)" in d.reason


@pytest.mark.parametrize("key", ["model.init", "model.output_activation", "loss.name"])
def test_auto_lets_the_rule_choose(table, profile_of, key):
    plan = make_plan(profile_of(table()), 210, {key: "auto"})
    assert plan[key] != "auto" and plan.decisions[key].rule != "user"
    assert plan[key] == make_plan(profile_of(table()), 210)[key]


def test_constant_learning_rate_first_and_schedules_are_settable(table, profile_of):
    p = make_plan(profile_of(table()), 210)
    assert p["schedule.name"] == "none" and "decay comes last" in p.decisions[
        "schedule.name"].reason
    p = make_plan(profile_of(table()), 210, {"schedule.name": "step", "schedule.step_size": 3})
    assert (p["schedule.name"], p["schedule.step_size"], p["schedule.gamma"]) == ("step", 3, 0.5)


def test_learning_rate_auto_asks_for_a_range_test(table, profile_of):
    p = make_plan(profile_of(table()), 210, {"optimizer.lr": "auto"})
    assert p["optimizer.lr_find"] is True and isinstance(p["optimizer.lr"], float)
    assert "optimizer.lr_find" not in make_plan(profile_of(table()), 210)


def test_lbfgs_gets_full_batches_and_swa_keys_are_validated(table, profile_of):
    prof = profile_of(table(task="binary"))
    p = make_plan(prof, 210, {"optimizer.name": "lbfgs"})
    assert p["train.batch_size"] == 210 and p["optimizer.lr"] == 1.0
    assert "L-BFGS needs full-batch gradients" in p.decisions["train.batch_size"].reason
    assert make_plan(prof, 210, {"optimizer.name": "lbfgs",
                                 "train.batch_size": 50})["train.batch_size"] == 50
    for bad in ({"optimizer.momentum": 0.9}, {"optimizer.betas": "0.9,0.99"},
                {"optimizer.lr": "auto"}, {"optimizer.weight_decay": 0.01}):
        with pytest.raises(PlanError):
            make_plan(prof, 210, {"optimizer.name": "lbfgs", **bad})
    p = make_plan(prof, 210)
    assert (p["train.swa"], p["train.swa_start"]) == (False, 0.75)
    assert "stochastic weight averaging" in p.decisions["train.swa"].reason
    for bad in (0, 1, 1.5):
        with pytest.raises(PlanError):
            make_plan(prof, 210, {"train.swa_start": bad})


@pytest.mark.parametrize("n_train,patience", [(300, 40), (4288, 30), (20_000, 10),
                                              (100_000, 5)])
def test_a_tables_patience_is_counted_in_updates(table, profile_of, n_train, patience):
    plan = make_plan(profile_of(table()), n_train)
    steps = -(-n_train // plan["train.batch_size"])
    assert plan["train.early_stopping.patience"] == patience
    if plan["train.max_epochs"] >= 50:  # at least 4,000 updates unless capped at 40 epochs
        assert patience * steps >= 4000 or patience == 40
        assert plan.decisions["train.early_stopping.patience"].rule == \
            "train.early_stopping_in_updates"


def test_other_kinds_of_data_keep_a_patience_in_epochs(profile_of):
    from nnrecipe.plan.network_rules import compose_rules
    from nnrecipe.plan.rules import RULES, patience_rule

    rules = dict((k, r) for k, r, _ in compose_rules(RULES, (), (), {}, None))
    assert rules["train.early_stopping.patience"] is patience_rule


@pytest.mark.parametrize("task,act,init", [("regression", "gelu", "he_normal"),
                                           ("binary", "relu", "he_normal"),
                                           ("multiclass", "relu", "he_normal")])
def test_a_table_regression_gets_gelu_classification_keeps_relu(table, profile_of, task, act,
                                                                init):
    p = make_plan(profile_of(table(task=task)), 210)
    assert (p["model.activation"], p["model.init"]) == (act, init)
    assert make_plan(profile_of(table(task=task)), 210,
                     {"model.activation": "tanh"})["model.activation"] == "tanh"


def test_other_kinds_of_data_keep_relu_for_a_regression(profile_of):
    from nnrecipe.plan import network_rules
    from nnrecipe.plan.network_rules import compose_rules
    from nnrecipe.plan.rules import RULES

    rules = dict((k, r) for k, r, _ in compose_rules(RULES, (), (), {}, None))
    assert rules["model.activation"] is network_rules.activation_rule
