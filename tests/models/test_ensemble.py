"""The deep ensemble: how members' outputs are averaged (checked against torch's softmax and
sigmoid), the plan rule, and a run that trains, saves, reloads, predicts and exports one."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import nnrecipe
from nnrecipe.errors import PlanError
from nnrecipe.models.ensemble import Ensemble, combine_for, member_plan, with_members
from nnrecipe.plan import Decision, make_plan


class Fixed(nn.Module):
    """A 'network' that returns a fixed output whatever the input."""

    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out = nn.Parameter(out.clone())

    def forward(self, x):
        return self.out.expand(x.shape[0], -1)


def _members(outs):
    return [Fixed(o) for o in outs]


def test_cross_entropy_members_average_their_probabilities():
    outs = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))  # 4 members, 3 classes
    ens = Ensemble(_members(outs), combine_for("cross_entropy"))
    logits = ens(torch.zeros(2, 5))
    want = torch.softmax(outs, dim=1).mean(0)
    torch.testing.assert_close(torch.softmax(logits, dim=1)[0], want)


def test_bce_members_average_their_probabilities():
    outs = torch.tensor([[-30.0], [0.3], [4.0]])  # one confident member, far out
    ens = Ensemble(_members(outs), combine_for("bce"))
    logit = ens(torch.zeros(1, 2))
    torch.testing.assert_close(torch.sigmoid(logit)[0], torch.sigmoid(outs).mean(0))
    assert torch.isfinite(logit).all()


def test_values_are_averaged_for_regression_and_probability_outputs():
    outs = torch.tensor([[1.0], [2.0], [6.0]])
    for loss in ("mse", "huber", "mae", "nll"):
        assert combine_for(loss) == "mean"
    ens = Ensemble(_members(outs), "mean")
    torch.testing.assert_close(ens(torch.zeros(3, 1)), torch.full((3, 1), 3.0))
    with pytest.raises(ValueError):
        Ensemble(_members(outs), "median")


def test_members_get_their_own_seed_and_a_saved_ensemble_rebuilds(table, profile_of):
    plan = make_plan(profile_of(table()), 210, {"model.ensemble": 3, "seed": 7})
    assert [member_plan(plan, k)["seed"] for k in range(3)] == [7, 8, 9]
    built = with_members(plan, lambda p: nn.Linear(2, 1))
    assert isinstance(built, Ensemble) and len(built.members) == 3
    one = plan.with_decision("model.ensemble", Decision(1, "one", "user"))
    assert isinstance(with_members(one, lambda p: nn.Linear(2, 1)), nn.Linear)


@pytest.mark.parametrize("n_train,k", [(300, 5), (50_000, 5), (50_001, 3), (200_001, 1)])
def test_the_rule_sizes_the_ensemble_by_rows(table, profile_of, n_train, k):
    plan = make_plan(profile_of(table()), n_train)
    assert plan["model.ensemble"] == k
    assert "Lakshminarayanan" in plan.decisions["model.ensemble"].reason or k == 1


def test_several_processes_train_one_network(table, profile_of, monkeypatch):
    from nnrecipe.train import distributed

    class Group:
        world = 2
    monkeypatch.setattr(distributed, "current", lambda: Group())
    plan = make_plan(profile_of(table()), 300)
    assert plan["model.ensemble"] == 1
    assert "processes" in plan.decisions["model.ensemble"].reason
    with pytest.raises(PlanError, match="model.ensemble=1"):
        make_plan(profile_of(table()), 300, {"model.ensemble": 3})


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    from tests.conftest import make_table

    df = make_table(300, task="binary", seed=3)
    out = tmp_path_factory.mktemp("ens") / "run"
    run = nnrecipe.fit(df, "y", out=out, progress=False,
                       overrides={"train.max_epochs": 6, "model.ensemble": 3})
    return df, out, run


def test_a_run_trains_k_networks_and_predicts_with_their_average(ensemble_run):
    df, out, run = ensemble_run
    assert isinstance(run.model, Ensemble) and len(run.model.members) == 3
    members = run.evaluation["training"]["ensemble"]
    assert [m["seed"] for m in members] == [0, 1, 2]
    weights = [torch.cat([p.detach().flatten() for p in m.parameters()])
               for m in run.model.members]
    assert not torch.allclose(weights[0], weights[1])  # different seeds, different networks
    x = df.drop(columns=["y"])
    got = run.predict(x)["proba_1"].to_numpy()
    single = []
    for m in run.model.members:  # each member alone, through the same predict path
        run.model, keep = m, run.model
        single.append(run.predict(x)["proba_1"].to_numpy())
        run.model = keep
    np.testing.assert_allclose(got, np.mean(single, axis=0), rtol=1e-5, atol=1e-6)
    assert json.loads((out / "evaluation.json").read_text())["training"]["ensemble"] == members
    assert "An ensemble of 3 networks" in (out / "summary.md").read_text()


def test_a_saved_ensemble_reloads_to_the_same_predictions_and_exports(ensemble_run, tmp_path):
    from nnrecipe.export import export_run

    df, out, run = ensemble_run
    again = nnrecipe.load_run(out)
    assert isinstance(again.model, Ensemble) and len(again.model.members) == 3
    x = df.drop(columns=["y"])
    np.testing.assert_allclose(again.predict(x)["proba_1"], run.predict(x)["proba_1"],
                               rtol=1e-6)
    assert again.evaluate(df)["metrics"]["accuracy"] == pytest.approx(
        float((again.predict(x)["prediction"].astype(int) == df["y"]).mean()))
    path = export_run(out, "onnx", tmp_path / "m.onnx")
    assert path.exists() and path.stat().st_size > 0


def test_a_member_whose_weights_are_not_finite_is_left_out(monkeypatch, tmp_path):
    from tests.conftest import make_table

    from nnrecipe.pipeline import ensemble as ens_mod

    real = ens_mod.train_fit

    def poisoned(model, plan, *args, **kw):
        history = real(model, plan, *args, **kw)
        if plan["seed"] == 1:  # member 2 "diverges"
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return history
    monkeypatch.setattr(ens_mod, "train_fit", poisoned)
    run = nnrecipe.fit(make_table(300, seed=4), "y", out=tmp_path / "r", progress=False,
                       overrides={"train.max_epochs": 3, "model.ensemble": 3})
    assert len(run.model.members) == 2 and run.plan["model.ensemble"] == 2
    left = [m for m in run.evaluation["training"]["ensemble"] if m.get("left_out")]
    assert [m["seed"] for m in left] == [1]
    again = nnrecipe.load_run(tmp_path / "r")  # the saved plan says 2: the weights load
    assert len(again.model.members) == 2


def test_an_ensemble_interrupted_between_members_resumes_to_the_same_predictions(
        monkeypatch, tmp_path):
    from tests.conftest import make_table

    from nnrecipe.pipeline import ensemble as ens_mod
    from nnrecipe.train import History

    df, over = make_table(300, seed=4), {"train.max_epochs": 4, "model.ensemble": 3}
    full = nnrecipe.fit(df, "y", out=tmp_path / "full", progress=False, overrides=over)
    real = ens_mod.train_fit

    def ctrl_c_in_member_2(model, plan, *args, **kw):
        if plan["seed"] == 1:
            history = History()
            history.stop_reason = "interrupted (Ctrl-C)"
            return history
        return real(model, plan, *args, **kw)
    monkeypatch.setattr(ens_mod, "train_fit", ctrl_c_in_member_2)
    cut = nnrecipe.fit(df, "y", out=tmp_path / "cut", progress=False, overrides=over)
    status = json.loads((tmp_path / "cut" / "status.json").read_text())
    assert cut.status == status["status"] == "interrupted"
    assert "ensemble member 2 of 3" in status["reason"]
    monkeypatch.setattr(ens_mod, "train_fit", real)
    again = nnrecipe.resume(tmp_path / "cut", df)
    assert len(again.model.members) == 3
    x = df.drop(columns=["y"])
    np.testing.assert_allclose(again.predict(x)["proba_1"], full.predict(x)["proba_1"],
                               rtol=1e-6, atol=1e-7)
