"""The doctor's order: worst first, then when each check ran (before, during, after
training), so the first warning is the first thing that went wrong."""

from nnrecipe.doctor.findings import make_finding, sort_findings


def _f(code, severity, epoch=None, step=None, **evidence):
    return make_finding(code, evidence, "", [], severity=severity, epoch=epoch, step=step)


def test_findings_sort_by_severity_then_by_when_their_check_ran():
    overfit = _f("overfitting", "warning", epoch=2)  # its epoch is evidence (the best epoch)
    after = _f("underfitting", "warning")  # no epoch: ran after training, after overfitting
    live_epoch = _f("loss_oscillation", "warning", epoch=3)  # end of epoch 3
    live_step = _f("saturated_activations", "warning", epoch=3, step=40)  # during epoch 3
    early = _f("slow_convergence", "warning", epoch=1)
    config = _f("large_batch", "warning")
    error = _f("nan_loss", "error", epoch=5, step=90)
    info = _f("missing_values", "info")
    got = sort_findings([overfit, after, live_epoch, live_step, early, config, error, info])
    assert [f.code for f in got] == [
        "nan_loss", "large_batch", "slow_convergence", "saturated_activations",
        "loss_oscillation", "overfitting", "underfitting", "missing_values"]


def test_the_order_is_stable_among_checks_of_one_moment():
    a, b = _f("class_imbalance", "warning"), _f("unscaled_features", "warning")
    assert sort_findings([a, b]) == [a, b] and sort_findings([b, a]) == [b, a]


def test_a_cause_comes_before_the_generic_symptoms_it_explains_with_their_severity():
    """Saturated tanh units (seen at epoch 1) explain the bad loss at initialisation and
    the batch that could not be memorised (both before training): they are the illness,
    listed first, raised to the symptoms' severity, with the symptoms named."""
    cannot = _f("cannot_overfit_batch", "error")
    bad_init = _f("bad_initial_loss", "warning")
    saturated = _f("saturated_activations", "warning", epoch=1, step=5)
    other = _f("large_batch", "warning")
    got = sort_findings([cannot, bad_init, other, saturated])
    assert [f.code for f in got] == ["saturated_activations", "bad_initial_loss",
                                     "cannot_overfit_batch", "large_batch"]
    assert [f.severity for f in got] == ["error", "error", "error", "warning"]
    assert got[0].evidence["explains"] == "bad_initial_loss, cannot_overfit_batch"
    assert got[1].evidence["explains"] == "cannot_overfit_batch"
    assert sort_findings(got) == got  # sorting again changes nothing


def test_a_cause_alone_and_specific_symptoms_keep_their_place():
    lone = _f("unscaled_features", "warning")
    assert sort_findings([lone]) == [lone] and "explains" not in lone.evidence
    # a live cascade is not reordered: the gradients exploded before the loss diverged
    explode = _f("exploding_gradients", "error", epoch=2, step=30)
    diverge = _f("loss_divergence", "error", epoch=2)
    assert [f.code for f in sort_findings([diverge, explode])] == [
        "exploding_gradients", "loss_divergence"]


def test_a_learning_rate_above_its_range_explains_what_large_steps_do_one_below_does_not():
    high = make_finding("lr_out_of_range", {"lr": 50.0, "usual_high": 1.0}, "", [])
    low = make_finding("lr_out_of_range", {"lr": 1e-7, "usual_high": 1.0}, "", [])
    nan = _f("nan_loss", "error", epoch=1, step=3)
    dead = _f("dead_relu", "error", epoch=1, step=2)
    got = sort_findings([nan, dead, high])
    assert [f.code for f in got] == ["lr_out_of_range", "dead_relu", "nan_loss"]
    assert got[0].severity == "error" and got[0].evidence["explains"] == "nan_loss, dead_relu"
    assert [f.code for f in sort_findings([nan, dead, low])] == [
        "dead_relu", "nan_loss", "lr_out_of_range"]


def test_all_zero_weights_explain_dead_units_and_missing_gradients_another_mismatch_does_not():
    zeros = make_finding("init_activation_mismatch", {"init": "zeros", "activation": "relu"},
                         "", [], severity="error")
    glorot = make_finding("init_activation_mismatch",
                          {"init": "glorot_uniform", "activation": "relu"}, "", [])
    dead = _f("dead_relu", "error", epoch=1, step=1)
    blocked = _f("no_gradient", "error")  # pre-flight: before the mismatch in the list
    got = sort_findings([dead, blocked, zeros])
    assert [f.code for f in got] == ["init_activation_mismatch", "no_gradient", "dead_relu"]
    assert got[0].evidence["explains"] == "no_gradient, dead_relu"
    assert [f.code for f in sort_findings([dead, blocked, glorot])] == [
        "no_gradient", "dead_relu", "init_activation_mismatch"]


def test_exploding_gradients_explain_the_divergence_and_nan_that_huge_steps_cause():
    diverging = _f("loss_divergence", "error", epoch=3)
    nan = _f("nan_loss", "error", epoch=4, step=40)
    exploding = _f("exploding_gradients", "error", epoch=5, step=50)
    got = sort_findings([diverging, nan, exploding])
    assert [f.code for f in got] == ["exploding_gradients", "loss_divergence", "nan_loss"]
    assert set(got[0].evidence["explains"].split(", ")) == {"loss_divergence", "nan_loss"}
    # without exploding gradients the two keep the order their checks ran in
    assert [f.code for f in sort_findings([nan, diverging])] == ["loss_divergence", "nan_loss"]


def test_overshooting_steps_explain_the_relus_they_knock_dead():
    """In-range SGD with momentum 0.9 at 1.0 on breast cancer: ReLUs die at epoch 8, the
    loss oscillates from epoch 7; the overshoot names the rate, the dead units follow."""
    dead = _f("dead_relu", "error", epoch=8, step=90)
    bouncing = _f("loss_oscillation", "warning", epoch=7)
    got = sort_findings([dead, bouncing])
    assert [f.code for f in got] == ["loss_oscillation", "dead_relu"]
    assert got[0].severity == "error" and got[0].evidence["explains"] == "dead_relu"
    diverging = _f("loss_divergence", "error", epoch=9)
    assert [f.code for f in sort_findings([dead, diverging])] == ["loss_divergence", "dead_relu"]
    # dead units with a calm loss (a bias started far negative) stay first on their own
    assert [f.code for f in sort_findings([dead, _f("overfitting", "warning")])][0] == \
        "dead_relu"


def test_inputs_without_signal_explain_a_network_that_looks_held_back_or_too_slow():
    """Shuffled labels: the pre-flight's no_signal names the illness; the curves alone
    read as slow convergence or underfitting, and those follow it."""
    slow = _f("slow_convergence", "warning", epoch=12)
    under = _f("underfitting", "warning")
    nothing = _f("no_signal", "warning")
    got = sort_findings([slow, under, nothing])
    assert [f.code for f in got] == ["no_signal", "slow_convergence", "underfitting"]
    assert got[0].evidence["explains"] == "slow_convergence, underfitting"


def test_labels_that_disagree_with_every_input_explain_a_network_that_looks_held_back():
    """20% of the labels flipped in every split: the training loss cannot fall below the
    noise, and the curves read as underfitting. label_issues on its noise-floor basis names
    the cause and comes first; on its other basis (slips in the held-out labels, which the
    training never saw) it explains nothing."""
    under = _f("underfitting", "warning")
    floor = _f("label_issues", "warning", basis="noise_floor")
    got = sort_findings([under, floor])
    assert [f.code for f in got] == ["label_issues", "underfitting"]
    assert got[0].evidence["explains"] == "underfitting"
    slips = _f("label_issues", "warning")
    assert [f.code for f in sort_findings([under, slips])] == ["underfitting", "label_issues"]


def test_a_label_warning_beside_a_training_fault_is_an_info_note():
    """A model trained with a fault (here a rate out of range, or dropout feeding BatchNorm)
    is sure and wrong on rows whose labels are right: it is no judge of the labels, so its
    label-issues warning becomes an info note that names the fault, and explains nothing.
    Beside after-training symptoms (underfitting, overfitting) or data findings it stays."""
    for fault, severity in (("lr_out_of_range", "warning"), ("dropout_batchnorm_conflict",
                                                             "warning"),
                            ("bad_initial_loss", "warning"), ("exploding_gradients", "error")):
        labels = _f("label_issues", "warning", basis="noise_floor")
        got = sort_findings([_f(fault, severity), _f("underfitting", "warning"), labels])
        assert [f.code for f in got] == [fault, "underfitting", "label_issues"]
        assert got[2].severity == "info" and got[2].evidence["doubted_by"] == fault
        assert "explains" not in got[2].evidence
    for beside in (_f("overfitting", "warning"), _f("class_imbalance", "warning"),
                   _f("lr_out_of_range", "info")):
        got = sort_findings([beside, _f("label_issues", "warning")])
        assert {f.code: f.severity for f in got}["label_issues"] == "warning"
