"""The core story: one command trains y = k*x and writes the tutorial's four tabs.

Everything is read back from the real event files with TensorBoard's reader.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline import app
from pipeline.data import LinearData
from pipeline.readback.runs import (
    GRAPHS,
    HISTOGRAMS,
    IMAGES,
    SCALARS,
    TEXT,
    load_run,
    share_between,
)
from tests.conftest import compose_config

# -- the default experiment, run through the console script ---------------------------------


@pytest.fixture(scope="module")
def train_run(default_run):
    return load_run(default_run / "train")


@pytest.fixture(scope="module")
def test_run(default_run):
    return load_run(default_run / "test")


def test_graph_is_a_graphdef_with_nested_name_scopes(train_run):
    names = [node.name for node in train_run.graph.node]
    loss_ops = [n for n in names if n.startswith("loss/")]
    # mean(square(pred - y)) in TF2: Sub, Square, the reduction axes Const, Mean
    assert sorted(op.split("/")[1] for op in loss_ops) == ["Const", "Mean", "Square", "sub"]
    assert "linear/prediction/mul" in names
    assert any(n.startswith("update/ResourceApplyGradientDescent") for n in names)
    assert any(n.startswith("gradient_tape/") for n in names)


def test_scalars_k_and_loss_on_train_and_loss_on_test(train_run, test_run):
    assert {"k", "k/error", "loss"} <= set(train_run.tags(SCALARS))
    assert test_run.tags(SCALARS) == ["loss"]
    k = train_run.scalars("k")
    # every step by default, from step 0 (before any update) to step 1000 (the final state)
    assert [step for step, _ in k] == list(range(0, 1001))
    assert k[0][1] == 0.0  # k_init
    assert len(test_run.scalars("loss")) == 1001


def test_last_scalars_are_what_metrics_json_reports(default_run, train_run, test_run):
    metrics = json.loads((default_run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["steps"] == 1000
    assert set(metrics) >= {"k", "k_error", "train_loss", "test_loss", "steps", "seconds", "status"}
    assert train_run.scalars("k")[-1] == (1000, pytest.approx(metrics["k"], abs=1e-7))
    assert test_run.scalars("loss")[-1][1] == pytest.approx(metrics["test_loss"], rel=1e-6)
    assert metrics["k_error"] == pytest.approx(abs(metrics["k"] - 2.0), abs=1e-6)


def test_histograms_of_outputs_and_residuals(train_run, test_run):
    assert {"residuals", "outputs/prediction"} <= set(train_run.tags(HISTOGRAMS))
    assert "residuals" in test_run.tags(HISTOGRAMS)
    # the linear model's one weight is the scalar `k`: no histogram of one number
    assert not any(tag.startswith("parameters/") for tag in train_run.tags(HISTOGRAMS))
    steps = [step for step, _ in train_run.histograms("outputs/prediction")]
    assert steps == list(range(0, 1000, 10)) + [1000]
    # residuals count every training point: 200 by default
    assert train_run.histograms("residuals")[-1][1][:, 2].sum() == 200


def test_image_of_the_fit_decodes_as_png(train_run):
    images = train_run.images("plots/fit")
    assert [step for step, _ in images] == [1000]  # by default only the final fit
    picture = Image.open(io.BytesIO(images[-1][1]))
    assert picture.format == "PNG"
    assert picture.size[0] > 100 and picture.size[1] > 100


def test_config_text_shows_what_produced_the_run(train_run):
    config = dict(train_run.texts("config"))[0]
    assert "noise_std: 0.1" in config
    assert "_target_: pipeline.models.LinearModel" in config


def settled_at(values) -> float:
    """The share of the steps after which `values` stay within 1% of their last value."""
    values = np.asarray(values, dtype=np.float64)
    outside = np.flatnonzero(np.abs(values - values[-1]) > 0.01 * abs(values[-1]))
    return 0.0 if outside.size == 0 else (outside[-1] + 1) / (len(values) - 1)


def test_default_loss_descends_over_a_visible_part_of_the_steps(train_run):
    """Not a 2% drop and a flat line: "ignore outliers" would hide such a descent."""
    loss = [value for _, value in train_run.scalars("loss")]
    assert 0.10 <= settled_at(loss) <= 0.70, settled_at(loss)


@pytest.mark.slow  # trains 1000 steps: in `make test`, not `make test-fast`
@pytest.mark.parametrize("example", ["example2_scalars", "example3_histogram", "example4_image"])
def test_each_example_descends_over_a_visible_part_of_the_steps(tmp_path, example):
    _, train, test = run_in_process(tmp_path, f"+experiment={example}", "sinks=[scalars]")
    for run in (train, test):
        loss = [value for _, value in run.scalars("loss")]
        assert 0.10 <= settled_at(loss) <= 0.70, (example, settled_at(loss))


def test_default_settings_converge_to_the_least_squares_slope(default_run):
    metrics = json.loads((default_run / "metrics.json").read_text())
    data = LinearData(**{k: v for k, v in compose_config().data.items() if k != "_target_"})
    d = data.generate()
    x, y = d.x_train.astype(np.float64), d.y_train.astype(np.float64)
    closed_form = float((x * y).sum() / (x * x).sum())
    assert abs(metrics["k"] - 2.0) < 0.02
    assert abs(metrics["k"] - closed_form) < 1e-3


def test_run_ends_with_one_line_giving_estimate_truth_and_logs(default_run_output):
    """The shared default run's own output: `hydra.run.dir=<abs>/run` from its parent."""
    stdout, stderr = default_run_output
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("k = ") and "(true 2.0)" in last
    assert last.endswith("| logs: run | tensorboard --logdir run")
    assert "oneDNN" not in stderr and "cuda" not in stderr.lower()


# -- in-process runs: the compose API gives the same config the command line would ---------


def run_in_process(tmp_path, *overrides):
    """metrics and the train and test runs (None for a writer no sink used: not opened)."""
    cfg = compose_config(*overrides)
    metrics = app.run(cfg, tmp_path)
    runs = [load_run(tmp_path / w) if (tmp_path / w).is_dir() else None for w in ("train", "test")]
    return metrics, *runs


def test_mlp_hidden_output_and_n01_weights(example_runs):
    """At the default width the hidden weights look like the tutorial's N(0, 1) picture."""
    hidden = compose_config("model=mlp").model.hidden
    metrics, train, _ = example_runs["example3_histogram"]  # model=mlp, with histograms
    assert metrics["status"] == "completed"
    assert "outputs/hidden" in train.tags(HISTOGRAMS)
    for _, buckets in train.histograms("outputs/hidden"):
        assert buckets[:, 2].sum() == 200 * hidden  # N x D values in every histogram
    step0, weights = train.histograms("parameters/mlp/hidden/weights")[0]
    assert step0 == 0
    assert weights[:, 2].sum() == hidden
    assert 100 * share_between(weights, -0.5, 0.5) == pytest.approx(38.3, abs=2)
    assert 100 * share_between(weights, -1.5, 1.5) == pytest.approx(86.6, abs=2)


@pytest.mark.slow  # trains 1000 steps: in `make test`, not `make test-fast`
def test_mlp_converges_too(tmp_path):
    metrics, _, _ = run_in_process(tmp_path, "+experiment=example3_histogram", "sinks=[]")
    assert metrics["status"] == "completed"
    assert abs(metrics["k"] - 2.0) < 0.05


EXAMPLES = {
    "example1_graph": {GRAPHS},
    "example2_scalars": {GRAPHS, SCALARS},
    "example3_histogram": {GRAPHS, SCALARS, HISTOGRAMS},
    "example4_image": {GRAPHS, SCALARS, HISTOGRAMS, IMAGES},
}


#: the overrides of an example's in-process run
EXAMPLE_STEPS = "trainer.steps=20"


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory) -> dict:
    """Each example trained once, in process; its (metrics, train, test) read back."""
    return {
        example: run_in_process(
            tmp_path_factory.mktemp(example), f"+experiment={example}", EXAMPLE_STEPS
        )
        for example in EXAMPLES
    }


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_each_example_writes_exactly_the_kinds_it_names(example_runs, example):
    _, train, test = example_runs[example]
    # the graph alone goes to train: no empty `test` run beside it
    assert (test is None) == (example == "example1_graph")
    written = set(train.series) | set(test.series if test else ())
    if train.graph is not None:
        written.add(GRAPHS)
    written.discard("graph")  # the graph also appears as the `__run_graph__` tensor tag
    written = {GRAPHS if kind == "graphs" else kind for kind in written}
    assert written == EXAMPLES[example]
    assert TEXT not in written


def test_same_config_and_seed_give_the_same_numbers(tmp_path, example_runs):
    _, first, _ = example_runs["example3_histogram"]  # model=mlp: a random start
    _, second, _ = run_in_process(tmp_path, "+experiment=example3_histogram", EXAMPLE_STEPS)
    assert first.scalars("k") == second.scalars("k")
    assert first.scalars("loss") == second.scalars("loss")
    assert first.histograms("outputs/hidden")[-1][1].tolist() == (
        second.histograms("outputs/hidden")[-1][1].tolist()
    )


@pytest.mark.slow  # trains 1000 steps: in `make test`, not `make test-fast`
def test_adam_optimizer_converges(tmp_path):
    metrics, _, _ = run_in_process(tmp_path, "optimizer=adam", "sinks=[]")
    assert abs(metrics["k"] - 2.0) < 0.02


def test_images_every_n_steps_and_at_the_end(tmp_path):
    _, train, _ = run_in_process(
        tmp_path, "trainer.steps=25", "sinks=[images]", "+sinks.images.every=10"
    )
    assert [step for step, _ in train.images("plots/fit")] == [0, 10, 20, 25]


def test_the_fit_reads_at_card_size_with_the_truth_on_top():
    from pipeline.sinks import fit_plot

    data = LinearData(noise_std=0.5).generate()
    line_x = np.linspace(-1, 1, 11, dtype=np.float32)[:, None]
    fig = fit_plot.fit_figure(data, line_x, 1.9567 * line_x, 1000, 1.9567, "noise_std=0.5")
    ax = fig.axes[0]
    assert "k = 1.9567" in fig.get_suptitle() and "true 2" in fig.get_suptitle()
    assert ax.get_title() == "noise_std=0.5 · step 1000"
    fit, truth = ax.get_lines()
    assert truth.get_zorder() > fit.get_zorder() and truth.get_color() == fit_plot.TRUTH_COLOUR
    assert min(text.get_fontsize() for text in ax.get_legend().get_texts()) >= 12
    picture = Image.open(io.BytesIO(fit_plot.palette_png(fig))).convert("RGB")
    assert picture.size == (400, 300)
    red = np.array(Image.new("RGB", (1, 1), fit_plot.TRUTH_COLOUR)).reshape(3)
    assert (np.abs(np.asarray(picture).astype(int) - red).sum(axis=2) < 30).sum() > 200


def test_a_reused_figure_draws_what_a_new_one_draws():
    """A sweep job's plot reuses the last job's figure (FitPlot.drawn's `spare`): its
    pictures must be those of a figure built for the job, pixel for pixel."""
    from pipeline.sinks.fit_plot import FitPlot

    line_x = np.linspace(-1, 1, 101, dtype=np.float32)[:, None]
    settings = [(1, 0.1), (2, 3.0), (3, 0.0), (4, 10.0)]  # limits and ticks all differ
    spare = FitPlot.drawn(LinearData(seed=0, noise_std=1.0).generate(), "first")
    spare.png(line_x, 5 * line_x, 1000, 5.0)  # a fit far off, left in the spare's figure
    for seed, noise in settings:
        data = LinearData(seed=seed, noise_std=noise).generate()
        reused = FitPlot.drawn(data, f"noise_std={noise}", spare=spare)
        new = FitPlot.drawn(data, f"noise_std={noise}")
        assert reused is spare and new is not spare
        pictures = [
            np.asarray(
                Image.open(io.BytesIO(plot.png(line_x, 1.9 * line_x, 7, 1.9))).convert("RGB")
            )
            for plot in (reused, new)
        ]
        assert pictures[0].shape == (300, 400, 3)
        assert (pictures[0] == pictures[1]).all(), (seed, noise)
        spare = reused
    other = LinearData(k_true=3.0).generate()  # another legend: a new figure
    assert FitPlot.drawn(other, "", spare=spare) is not spare


def test_noise_is_shared_across_levels_unless_drawn_independently():
    def noise(level, draw):
        d = LinearData(noise_std=level, noise_draw=draw).generate()
        return d.x_train, (d.y_train - 2.0 * d.x_train).astype(np.float64)

    (x1, shared1), (x2, shared2) = noise(0.1, "shared"), noise(1.0, "shared")
    assert np.allclose(shared2, 10 * shared1, rtol=1e-4, atol=1e-6)  # one draw, scaled
    (x3, own1), (x4, own2) = noise(0.1, "independent"), noise(1.0, "independent")
    assert all(np.array_equal(x1, x) for x in (x2, x3, x4))  # the same x everywhere
    assert abs(np.corrcoef(own1.ravel(), own2.ravel())[0, 1]) < 0.3  # draws of their own
    assert np.array_equal(own1, noise(0.1, "independent")[1])  # the same level, the same draw
    with pytest.raises(ValueError, match="noise_draw"):
        LinearData(noise_draw="fresh")
