"""The public entries' unclear errors: module_gram, train_run, SweepSpec/TrainingGrid.from_mapping and 'progress'
each refuse bad input with a message that names the argument and says what is accepted."""

import pytest
import torch
from torch import nn

import montecarlo as mc
from montecarlo.testing import SETTING_DEFAULTS, TRAIN_DEFAULTS, load_digits, loop

LOSS = nn.CrossEntropyLoss(reduction="none")


@pytest.fixture(scope="module")
def problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()
    inputs = torch.randn(6, 4, dtype=torch.float64)
    return model, inputs, torch.randint(0, 3, (6,))


# -- module_gram ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, error, message", [
    # torch said "mat1 and mat2 shapes cannot be multiplied (6x5 and 4x8)"
    (dict(inputs=torch.ones(6, 5, dtype=torch.float64)), ValueError,
     r"argument 'inputs' of examples of shape \(5,\) \(torch.float64 on cpu\) does not fit 'model' \(Sequential\): "
     r"its forward pass on 2 of them fails with RuntimeError: mat1 and mat2 shapes cannot be multiplied"),
    (dict(inputs=torch.ones(6, 4, dtype=torch.float32)), ValueError,
     r"argument 'inputs' of examples of shape \(4,\) \(torch.float32 on cpu\) does not fit 'model'"),
    (dict(targets=[0, 1, 2, 0, 1, 2]), TypeError,  # torch: "cross_entropy_loss(): argument 'target' ... not list"
     r"argument 'targets' must be a torch tensor with one entry per example along its first axis \(N = 6\), got list"),
    (dict(targets=3), TypeError, r"argument 'targets' must be a torch tensor .* got int"),  # "has no len()"
    (dict(targets=torch.zeros(4, dtype=torch.long)), ValueError,
     r"argument 'targets' must have one entry per example of 'inputs' \(N = 6\), got 4"),
    (dict(targets=torch.full((6,), 7)), ValueError,  # torch's IndexError "Target 7 is out of bounds"
     r"argument 'loss_fn' fails on the model's outputs \(shape \(2, 3\) for 2 examples\) and 'targets' \(shape "
     r"\(2,\), torch.int64\): IndexError: Target 7 is out of bounds"),
    (dict(loss_fn=nn.CrossEntropyLoss()), ValueError,  # the mean: "loss_fn must return ..." named no argument
     r"argument 'loss_fn' must return one loss per example, shape \(2,\) for the first 2 examples; got \(\) \(a "
     r"torch loss needs reduction='none'\)"),
    (dict(loss_fn=lambda out, target: 1.0), TypeError,  # "'float' object has no attribute 'shape'"
     r"argument 'loss_fn' must return a tensor of one loss per example, shape \(2,\) for the first 2 examples, "
     r"got float"),
    (dict(loss_fn="cross-entropy"), TypeError,  # "'str' object is not callable"
     r"argument 'loss_fn' must be callable as loss_fn\(outputs, targets\)"),
    (dict(model=nn.Sequential(nn.ReLU())), ValueError,
     r"argument 'model' has no parameters that require gradients"),
])
def test_module_gram_names_the_argument(problem, change, error, message):
    model, inputs, targets = problem
    arguments = dict(model=model, loss_fn=LOSS, inputs=inputs, targets=targets) | change
    with pytest.raises(error, match=message):
        mc.module_gram(arguments["model"], arguments["loss_fn"], arguments["inputs"], arguments["targets"])


def test_module_gram_names_batchnorm_when_eval_has_no_running_statistics():
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8, track_running_stats=False), nn.Linear(8, 3)).double()
    with pytest.raises(ValueError, match=r"argument 'batchnorm' = 'eval' uses running statistics, but 1 batch norm\(s\) "
                                         r"of 'model' have none .* use batchnorm='batch'"):
        mc.module_gram(model, LOSS, torch.randn(6, 4, dtype=torch.float64), torch.zeros(6, dtype=torch.long))


def test_a_probe_leaves_the_model_and_the_random_state_as_they_were(problem):
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 3)).double().train()
    inputs, targets = torch.randn(6, 4, dtype=torch.float64), torch.zeros(6, dtype=torch.long)
    norm = model[1]
    state = torch.random.get_rng_state()
    with pytest.raises(ValueError, match="argument 'loss_fn' must return one loss per example"):
        mc.module_gram(model, nn.CrossEntropyLoss(), inputs, targets)  # refused after the probe ran
    assert torch.equal(torch.random.get_rng_state(), state)  # the dropout of the probe drew nothing the caller sees
    assert norm.training and int(norm.num_batches_tracked) == 0 and torch.equal(norm.running_mean, torch.zeros(8))


# -- train_run ------------------------------------------------------------------------------------------------------

RUN = dict(TRAIN_DEFAULTS, model="mlp", depth=1, width=4)
SETTINGS = dict(SETTING_DEFAULTS, epochs=1, track_points=2, pairs=2, probe_size=8)


@pytest.mark.parametrize("run, settings, error, message", [
    ({}, {"epochs": 0}, ValueError, r"argument 'epochs' must be an integer >= 1, got 0"),  # "Geometric sequence ..."
    ({"lr": 0.0}, {}, ValueError, r"argument 'lr' must be a finite real number > 0, got 0.0"),  # trained at lr 0
    ({"lr": -1.0}, {}, ValueError, r"argument 'lr' must be a finite real number > 0, got -1.0"),  # torch's words
    ({}, {"batch_size": 0}, ValueError, r"argument 'batch_size' must be an integer >= 1, got 0"),  # range() arg 3
    ({}, {"batch_size": 100_000}, ValueError,  # accepted: one minibatch of the whole set
     r"argument 'batch_size' = 100000 must be at most the 1438 training examples of 'digits'"),
    ({"foo": 1}, {}, ValueError, r"argument 'run' must have the keys model, depth, .*; unknown 'foo'"),  # ignored
    ({}, {"track": "cubic"}, ValueError, r"argument 'track' must be one of 'log', 'linear'; got 'cubic'"),  # ignored
    ({}, {"pairs": 0}, ValueError, r"argument 'pairs' must be an integer >= 1, got 0"),
])
def test_train_run_names_the_argument(run, settings, error, message):
    with pytest.raises(error, match=message):
        loop.train_run(dict(RUN, **run), dict(SETTINGS, **settings), progress=False, dataset=load_digits(0))


def test_train_run_names_a_missing_key_and_a_run_that_is_not_a_dict():
    without_lr = {k: v for k, v in RUN.items() if k != "lr"}
    with pytest.raises(ValueError, match=r"argument 'run' must have the keys .*; missing 'lr'"):  # KeyError: 'lr'
        loop.train_run(without_lr, SETTINGS, progress=False)
    with pytest.raises(TypeError, match=r"argument 'run' must be a dict with the keys model, .* got list"):
        loop.train_run([RUN], SETTINGS, progress=False)  # "list indices must be integers or slices, not str"
    with pytest.raises(TypeError, match=r"argument 'progress' must be True or False, got 'x'"):
        loop.train_run(RUN, SETTINGS, progress="x")


# -- grids, and 'progress' ------------------------------------------------------------------------------------------

def test_from_mapping_refuses_what_is_not_a_mapping_naming_it():
    with pytest.raises(TypeError, match=r"argument 'mapping' must be a mapping \(a dict\) of sweep keys -- grid axes "
                                        r"width, depth, .* -- to values, got list"):
        mc.SweepSpec.from_mapping([1])  # "unknown sweep key(s) 1"
    with pytest.raises(ValueError, match=r"argument 'mapping' must be a mapping \(a dict\) of training keys"):
        mc.TrainingGrid.from_mapping([1])


@pytest.mark.parametrize("entry", ["sample_confusion", "sample_grams", "run_sweep", "conditional_cosine_tail",
                                   "run_training"])
def test_progress_must_be_a_bool(entry, tmp_path):
    net = mc.MLP(4, 6, 1)
    calls = {
        "sample_confusion": lambda: mc.sample_confusion(net, 4, 8, labels="tanh", loss="square", seed=0,
                                                        progress="x"),
        "sample_grams": lambda: mc.sample_grams(net, 4, 8, labels="tanh", loss="square", seed=0, progress="x"),
        "run_sweep": lambda: mc.run_sweep(mc.SweepSpec.from_mapping({"width": 4, "d": 4, "trials": 8}),
                                          tmp_path / "sweep", progress="x"),
        "conditional_cosine_tail": lambda: mc.conditional_cosine_tail(mc.MLP(4, 6, 1, activation="tanh"), 4, [0.5],
                                                                      networks=2, seed=0, progress="x"),
        "run_training": lambda: mc.run_training(mc.TrainingGrid.from_mapping({"model": "mlp", "depth": 1, "width": 4}),
                                                tmp_path / "train", progress="x"),
    }
    with pytest.raises(TypeError, match=r"argument 'progress' must be True or False, got 'x'"):
        calls[entry]()
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "train").exists()
