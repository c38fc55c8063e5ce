import pytest

from nnrecipe.errors import PlanError
from nnrecipe.plan import KEYS, parse_set_options, validate_overrides


def test_values_are_coerced_to_their_types():
    got = validate_overrides({"model.hidden_layers": "0", "optimizer.lr": "1e-3",
                              "model.batchnorm": "false", "optimizer.betas": "0.8,0.99",
                              "model.activation": "SELU", "train.batch_size": 64})
    assert got == {"model.hidden_layers": 0, "optimizer.lr": 0.001, "model.batchnorm": False,
                   "optimizer.betas": [0.8, 0.99], "model.activation": "selu",
                   "train.batch_size": 64}


@pytest.mark.parametrize("key,value", [("model.hidden_layers", 64), ("model.hidden_layers", 0),
                                       ("model.dropout", 0.0), ("optimizer.momentum", 0.99)])
def test_edges_inside_the_range_are_accepted(key, value):
    assert validate_overrides({key: value})[key] == value


@pytest.mark.parametrize("key,value", [
    ("model.hidden_layers", 65), ("model.hidden_layers", 1.5), ("optimizer.lr", -1),
    ("optimizer.lr", 0), ("model.dropout", 1.0), ("model.dropout", 1.5),
    ("model.activation", "swish"), ("model.batchnorm", "maybe"), ("optimizer.betas", "0.9"),
    ("optimizer.betas", "0.9,1.0"), ("optimizer.lr", "nan"), ("train.batch_size", True),
])
def test_bad_values_are_rejected_with_the_expected_range(key, value):
    with pytest.raises(PlanError) as e:
        validate_overrides({key: value})
    assert key in str(e.value) and "must be" in str(e.value) and repr(value) in str(e.value)


def test_choice_errors_list_the_valid_values():
    with pytest.raises(PlanError, match="one of relu, leaky_relu, prelu"):
        validate_overrides({"model.activation": "swish"})


def test_every_problem_is_reported_at_once_and_unknown_keys_name_the_closest_ones():
    with pytest.raises(PlanError) as e:
        validate_overrides({"optimizer.learning_rate": 1, "model.dropout": 2, "nope": 1})
    msg = str(e.value)
    assert "'optimizer.learning_rate'" in msg and "'nope'" in msg and "model.dropout" in msg
    assert "did you mean optimizer.lr?" in msg
    assert "`nnrecipe plan DATA` lists the valid keys" in msg
    assert ", ".join(list(KEYS)[:3]) not in msg and len(msg) < 250  # one short line
    assert "\n" not in msg


@pytest.mark.parametrize("key,closest", [("model.widht", "model.width"),
                                         ("train.batchsize", "train.batch_size"),
                                         ("optimizer.learning_rate", "optimizer.lr")])
def test_a_misspelt_key_names_the_key_meant(key, closest):
    with pytest.raises(PlanError, match=f"did you mean {closest}"):
        validate_overrides({key: 1})


def test_a_huge_key_or_value_is_clipped_in_the_message():
    for bad in ({"x" * 100_000: 1}, {"model.width": "9" * 100_000}):
        with pytest.raises(PlanError) as e:
            validate_overrides(bad)
        assert len(str(e.value)) < 200


def test_set_options_need_key_equals_value():
    assert parse_set_options(["a.b=1", " c = x "]) == {"a.b": "1", "c": "x"}
    with pytest.raises(PlanError, match="key=value"):
        parse_set_options(["optimizer.lr"])
