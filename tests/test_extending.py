"""A user's own data generator, model and sink, in their own folder, with no edit to tbpipe.

The worked example of docs/EXTENDING.md (examples/quadratic) is copied to a temporary
"user project" and run through the console script from that folder with `--config-dir`;
the summaries are read back with TensorBoard's reader. A piece that breaks the contract,
found the other way (PYTHONPATH and `hydra.searchpath`), is one line naming it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.contracts import ContractError, check_data, check_model, check_sink
from pipeline.data import Dataset, LinearData
from pipeline.readback.runs import load_run
from pipeline.sinks.base import Sink
from pipeline.tasks import LINE_FIT, Task
from tests.conftest import run_tbpipe

pytestmark = pytest.mark.slow  # every test here runs tbpipe in a subprocess

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "quadratic"


@pytest.fixture(scope="module")
def user_project(tmp_path_factory) -> Path:
    """The worked example, copied where tbpipe has never heard of it."""
    project = tmp_path_factory.mktemp("user") / "project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


@pytest.fixture(scope="module")
def both_models(quadratic_commands) -> dict[str, Path]:
    """EXTENDING's sweep from the user's dir (at 300 steps): quadratic data fitted by their
    model and by the MLP."""
    _, ran = quadratic_commands
    (sweep,) = [c for c in ran if "+experiment=quadratic_two_param,quadratic_mlp" in c["words"]]
    assert "trainer.steps=300" in (Path(sweep["dir"]) / "multirun.yaml").read_text()
    jobs = sorted(path for path in Path(sweep["dir"]).iterdir() if path.is_dir())
    assert [job.name.split("_", 1)[0] for job in jobs] == ["0", "1"]
    return {"two_param": jobs[0], "mlp": jobs[1]}


def test_the_users_two_parameter_model_recovers_a_and_k(both_models):
    train = load_run(both_models["two_param"] / "train")
    k = train.scalars("k")
    assert [step for step, _ in k][:3] == [0, 1, 2] and k[-1][0] == 300
    assert k[-1][1] == pytest.approx(2.0, abs=0.05)  # k_true: the linear coefficient
    assert train.scalars("k/error")[-1][1] < 0.05
    curvature = train.scalars("curvature/a")  # the user's sink, every 10 steps
    assert [step for step, _ in curvature][:3] == [0, 10, 20]
    assert curvature[0][1] == pytest.approx(0.0, abs=1e-6)  # a_init = 0
    assert curvature[-1][1] == pytest.approx(1.0, abs=0.05)
    # the model's activations; its two weights hold one number each, which SCALARS shows
    histograms = set(train.tags("histograms"))
    assert "outputs/curvature_term" in histograms
    assert not {"parameters/quadratic/a", "parameters/quadratic/k"} & histograms
    assert train.graph is not None and any("quadratic" in n.name for n in train.graph.node)
    assert train.tags("images") == ["plots/fit"]


def test_tbpipes_mlp_fits_the_users_quadratic_data(both_models):
    train = load_run(both_models["mlp"] / "train")
    histograms = set(train.tags("histograms"))
    assert {"parameters/mlp/hidden/weights", "parameters/mlp/readout/weights"} <= histograms
    assert "outputs/hidden" in histograms
    curvature = [value for _, value in train.scalars("curvature/a")]
    assert abs(curvature[-1] - 1.0) < abs(curvature[0] - 1.0)  # it learns the bend
    loss = [value for _, value in load_run(both_models["mlp"] / "test").scalars("loss")]
    assert loss[-1] < 0.5 * loss[0]


def test_a_keras_model_from_python_gets_one_histogram_per_layer_weight(
    user_project, tmp_path, monkeypatch
):
    from pipeline import api

    monkeypatch.syspath_prepend(str(user_project))
    overrides = ("data=quadratic", "model=keras_quadratic", "sinks=[scalars,histograms]")
    result = api.run_experiment(
        *overrides,
        "trainer.steps=40",
        "trainer.progress=false",
        run_dir=tmp_path / "run",
        config_dir=user_project / "conf",
    )
    assert result.metrics["status"] == "completed" and result.metrics["steps"] == 40
    train = load_run(result.run_dir / "train")
    layers = {
        f"parameters/keras_mlp/{layer}/{w}"
        for layer in ("hidden", "readout")
        for w in ("kernel", "bias")
    }
    # the readout's bias is one number: no histogram (SCALARS-like, a single spike)
    assert set(train.tags("histograms")) >= layers - {"parameters/keras_mlp/readout/bias"}
    assert "parameters/keras_mlp/readout/bias" not in train.tags("histograms")
    assert "parameters/kernel" not in train.tags("histograms")  # not the bare Keras name, twice
    assert [step for step, _ in train.histograms("parameters/keras_mlp/hidden/kernel")] == [
        0,
        10,
        20,
        30,
        40,
    ]


BROKEN_MODEL = '''
import tensorflow as tf


class NoSlope(tf.Module):
    """Has weights and a call, but no slope(x)."""

    def __init__(self):
        super().__init__(name="no_slope")
        self.w = tf.Variable(1.0, name="w")

    def __call__(self, x):
        return self.w * x

    def activations(self, x):
        return {}
'''


def test_a_model_without_slope_is_one_line_naming_it(tmp_path):
    """Found the other way: module on PYTHONPATH, configs on hydra.searchpath."""
    user = tmp_path / "user"
    (user / "conf" / "model").mkdir(parents=True)
    (user / "broken.py").write_text(BROKEN_MODEL)
    (user / "conf" / "model" / "no_slope.yaml").write_text("_target_: broken.NoSlope\n")
    result = run_tbpipe(
        f"hydra.searchpath=[file://{user / 'conf'}]",
        "model=no_slope",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        check=False,
        env={"PYTHONPATH": str(user)},
    )
    assert result.returncode == 1
    ours = [line for line in result.stderr.splitlines() if line.startswith("tbpipe:")]
    assert len(ours) == 1 and "Traceback" not in result.stderr
    assert "model: broken.NoSlope has no slope(x)" in ours[0]


# -- each contract, checked in process ----------------------------------------------------
def column(n: int, dtype=np.float32) -> np.ndarray:
    return np.zeros((n, 1), dtype=dtype)


class ReturnsADict:
    def generate(self):
        return {"x_train": column(3)}


class Float64Data:
    def generate(self):
        return Dataset(column(3, np.float64), column(3), column(2), column(2))


class FlatData:
    def generate(self):
        return Dataset(np.zeros(3, np.float32), column(3), np.zeros(2, np.float32), column(2))


class ClassesAsFloats:
    def generate(self):
        return Dataset(column(3), np.zeros(3, np.float32), column(2), np.zeros(2, np.float32))


def line_task() -> Task:
    """The tutorial's task (pipeline/tasks.py), as a run without `task` builds it."""
    return Task(**{key: value for key, value in LINE_FIT.items() if key != "_target_"})


def classification_task() -> Task:
    return Task(loss="sparse_categorical_crossentropy", metrics=["accuracy"])


@pytest.mark.parametrize(
    ("generator", "says"),
    [
        (object(), "data: user.Gen has no generate()"),
        (ReturnsADict(), "data: user.Gen.generate() returned dict, not a pipeline.data.Dataset"),
        (Float64Data(), "data: user.Gen.generate(): x_train is float64, not a float32 array"),
        (FlatData(), "data: user.Gen.generate(): x has shape () a point; the fit plot"),
        (ClassesAsFloats(), "data: user.Gen.generate(): y_train is float32, not integer class"),
    ],
)
def test_a_data_generator_breaking_the_contract_is_named(generator, says):
    task = classification_task() if isinstance(generator, ClassesAsFloats) else line_task()
    with pytest.raises(ContractError) as caught:
        check_data("data", generator, "user.Gen", task)
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


def test_the_built_in_pieces_meet_the_contract():

    from pipeline.models import LinearModel, MLPModel

    data = check_data("data", LinearData(n_train=5, n_test=3), "LinearData", line_task())
    for model in (LinearModel(), MLPModel(hidden=4)):
        assert check_model("model", model, type(model).__name__, data, line_task()) is model
    assert check_sink("sinks.s", Sink(every=5), "Sink").every == 5


def test_models_and_sinks_breaking_the_contract_are_named():
    import tensorflow as tf

    data = Dataset(column(4), column(4), column(2), column(2))

    class TwoWeightsOneName(tf.Module):
        def __init__(self):
            super().__init__(name="twins")
            self.a, self.b = tf.Variable(1.0, name="w"), tf.Variable(2.0, name="w")

        def __call__(self, x):
            return self.a * self.b * x

        def slope(self, x):
            return self.a * self.b

        def activations(self, x):
            return {}

    class WrongShape(TwoWeightsOneName):
        def __init__(self):
            tf.Module.__init__(self, name="wrong")
            self.a, self.b = tf.Variable(1.0, name="a"), tf.Variable(2.0, name="b")

        def __call__(self, x):
            return tf.reduce_sum(x, axis=1)

    with pytest.raises(ContractError, match=r"^model: u.Twins has several .* named w;"):
        check_model("model", TwoWeightsOneName(), "u.Twins", data, line_task())
    with pytest.raises(
        ContractError, match=r"^model: u.Wrong\(x\) returned shape \[4\], not \[4, 1\]"
    ):
        check_model("model", WrongShape(), "u.Wrong", data, line_task())
    with pytest.raises(ContractError, match=r"^sinks.mine: u.Mine has no start, record, every"):
        check_sink("sinks.mine", object(), "u.Mine")
    never = Sink()
    never.every = 0
    with pytest.raises(ContractError, match=r"every=0, not None or an integer >= 1"):
        check_sink("sinks.mine", never, "u.Mine")


def test_tbpipes_own_pieces_are_built_as_hydras_instantiate_builds_them():
    """contracts.build_piece calls tbpipe's own flat pieces directly (a sweep job builds
    nine): the same objects as Hydra's `instantiate`, and Hydra's error when one fails."""
    from hydra import compose
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from pipeline.check.compose import tbpipe_configs
    from pipeline.contracts import build_piece, own_flat_class

    with tbpipe_configs():
        configs = [
            compose(config_name="config", overrides=["model=mlp", "optimizer=adam", "seed=3"]),
            compose(
                config_name="config", overrides=["data.noise_std=0.5", "sinks.scalars.every=3"]
            ),
        ]
    for cfg in configs:
        nodes = {"data": cfg.data, "model": cfg.model, "optimizer": cfg.optimizer}
        nodes |= {f"sinks.{name}": node for name, node in cfg.sinks.items()}
        for key, node in nodes.items():
            assert own_flat_class(node) is not None, key  # the direct way is taken
            built, expected = build_piece(node, key), instantiate(node)
            assert type(built) is type(expected), key
            if key == "data":
                assert built == expected
            elif key == "model":
                weights = [v.numpy() for v in built.trainable_variables]
                assert all(np.array_equal(a, v.numpy()) for a, v in
                           zip(weights, expected.trainable_variables, strict=True))  # fmt: skip
            elif key == "optimizer":
                assert vars(built).keys() == vars(expected).keys()
            else:
                assert vars(built) == vars(expected), key
    interpolated = OmegaConf.create({"n": 7, "data": {"_target_": "pipeline.data.LinearData",
                                                       "n_train": "${n}"}})  # fmt: skip
    assert build_piece(interpolated.data, "data").n_train == 7
    nested = OmegaConf.create({"_target_": "pipeline.data.LinearData", "seed": {"a": 1}})
    assert own_flat_class(nested) is None  # a nested config: Hydra's way, as written
    bad = OmegaConf.create({"_target_": "pipeline.data.LinearData", "n_trian": 5})
    with pytest.raises(InstantiationException) as raised:  # Hydra's error, not a TypeError
        build_piece(bad, "data")
    with pytest.raises(InstantiationException) as hydras:
        instantiate(bad)
    assert str(raised.value) == str(hydras.value)


def test_a_model_may_be_built_by_your_function_never_by_a_librarys(tmp_path, monkeypatch):
    """`model._target_` may name a function of the user's own module (it returns the model);
    numpy.save or shutil.rmtree, which a shared config could name, are never called."""
    from omegaconf import OmegaConf

    from pipeline.check.targets import BadTarget, check_target

    (tmp_path / "users_models.py").write_text("def build(units=1):\n    return units\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = OmegaConf.create({"_target_": "users_models.build", "units": 3})
    assert check_target("model", mine).__name__ == "build"
    assert check_target("model", OmegaConf.create({"_target_": "pipeline.models.keras_mlp"}))
    for target in ("numpy.save", "shutil.rmtree", "builtins.print"):
        node = OmegaConf.create({"_target_": target, "file": "x"})
        with pytest.raises(BadTarget, match=r"standard library or an installed package"):
            check_target("model", node)
    with pytest.raises(BadTarget, match=r"a function, not a class"):  # other pieces: classes
        check_target("data", OmegaConf.create({"_target_": "users_models.build"}))
