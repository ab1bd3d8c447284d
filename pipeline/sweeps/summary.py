"""The summary at the end of a sweep: summary.csv, summary.png, HParams config, a table.

`SweepSummary` is a Hydra callback named in conf/config.yaml (`hydra.callbacks.summary`).
Its `on_multirun_end` runs once, in the process that launched the sweep, whatever the
launcher; it reads each job's metrics.json and .hydra/*.yaml (pipeline/readback/jobs.py),
except the config and overrides of a job that ended in its process (the basic and stacked
launchers: Hydra calls `on_job_end` there with what it saved, whose columns are kept), then
writes summary.csv, summary.png and the HParams experiment config at the sweep root and
prints a short table. The seed-mean runs and the tab's curves take each job's scalars
from its launcher where it held them (`hand_over`: the stacked launcher writes a
scalars-only job from arrays; Hydra calls `on_job_end` in the launcher's process under the
basic and stacked launchers), else from its event files, read once for both; the report
cache it fills for `tbpipe report` takes the final scalars of the runs this process wrote
(those jobs', the mean runs) as it wrote them, and reads the rest; the tab's digest
takes each job's row as read here. It stays light (no TensorFlow, no matplotlib at
import): Hydra imports it to build the callback before any job runs.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.check.schema import is_number
from pipeline.check.text_table import Column, sweep_number, text_table
from pipeline.compat import resolved_further
from pipeline.readback.groups import (
    GROUPED_FILE,
    default_group_keys,
    group_rows,
    grouped_table,
    seeds_vary,
    write_grouped_csv,
)
from pipeline.readback.jobs import (
    column_of,
    config_columns,
    main_metric_of_rows,
    read_sweep,
    resolved_columns,
    result_columns,
    swept_keys,
)
from pipeline.runinfo import COMPLETED
from pipeline.sweeps.search import SEARCH_COLUMNS, best_line, mark_trials
from pipeline.tasks import metrics_of

log = logging.getLogger(__name__)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """summary.csv: one row per job; its overrides, each swept key, final metrics, status."""
    keys = swept_keys(rows)
    # a search (pipeline/sweeps/search.py) adds each trial's objective and mark: best, failed
    columns = [*result_columns(rows), *(c for c in SEARCH_COLUMNS if any(c in r for r in rows))]
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["job", "dir", "overrides", *keys, *columns])
        for row in rows:
            swept = [row["swept"].get(key, "") for key in keys]
            writer.writerow(
                [
                    row["job"],
                    row["dir"],
                    row["overrides"],
                    *swept,
                    *(blank_if_none(row.get(col)) for col in columns),
                ]
            )
    return path


def blank_if_none(value: Any) -> Any:
    return "" if value is None else value


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The short table printed when a sweep ends (k and |k - k_true| for the tutorial's
    line, else the task's main metric); why a job failed goes below it."""
    if any("k" in row for row in rows):
        results = [("k", "k", 10), ("|k-k_true|", "k_error", 10)]
    else:
        main = main_metric_of_rows(rows)
        results = [(main, column_of(main), 14)]
    results.append(("test loss", "test_loss", 10))
    columns = [
        Column("job", ">", 3),
        *(Column(title, ">", width) for title, _, width in results),
        Column("s", ">", 6),
        Column("status", "<", 9),
        Column("setting"),
    ]
    swept = swept_keys(rows)
    varied = [key for key in swept if len({str(row["swept"].get(key)) for row in rows}) > 1]
    cells = [
        [
            str(row["job"]),
            *(sweep_number(row.get(key)) for _, key, _ in results),
            sweep_number(row.get("seconds"), 1),
            row.get("status") or "?",
            setting_of(row, varied),
        ]
        for row in rows
    ]
    lines = [text_table(columns, cells)]
    return "\n".join(lines + failures(rows))


def setting_of(row: dict[str, Any], varied: Sequence[str] = ()) -> str:
    """What sets the job apart, readably (`noise_std=0.5,seed=1`): its settings of the keys
    that vary across the sweep, else its overrides."""
    from pipeline.sweeps.naming import short_settings

    found = [(key, str(value)) for key, value in row.get("swept", {}).items() if key in varied]
    return short_settings(found) or row["overrides"] or "(defaults)"


def failures(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per job that did not complete: its state and why."""
    return [
        f"job {row['job']} {row.get('status') or '?'}: {row.get('reason') or 'no reason given'}"
        for row in rows
        if row.get("status") != COMPLETED
    ]


def compared_settings(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    """The settings whose value differs between jobs, with the values they took.

    Constants (the experiment, a step count given once, the model when only the noise is
    swept) would each be an axis on which every line meets at one point. With one job
    (or jobs that differ in nothing) the settings it overrode are listed instead.
    """
    values: dict[str, list[Any]] = {}
    for row in rows:
        for name, value in row.get("hparams", {}).items():
            values.setdefault(name, []).append(value)
    differ = {name: found for name, found in values.items() if len({str(v) for v in found}) > 1}
    if differ:
        return differ
    given = {key.lstrip("+~") for row in rows for key in row.get("swept", {})}
    return {name: found for name, found in values.items() if name in given}


def write_root_run(
    rows: Sequence[dict[str, Any]],
    sweep_dir: Path,
    panels: Sequence[tuple[str, bytes]] = (),
    task: Any = None,
    session_run: str = "root",
) -> None:
    """The sweep root's TensorBoard run: the HPARAMS experiment and the summary figure.

    The experiment lists the settings that differ between jobs and the metrics, |k -
    k_true| first, grouped by the run (train/test) they live in, as seen from where the
    jobs' sessions are (`session_run`, pipeline/sinks/hparams.py: from a session inside
    the train run, its own tags and nothing of test); IMAGES gets each panel of
    summary.png as a picture of its own (`plots/sweep_summary/k`, ...: one to a card).
    Written with TensorBoard's own event writer. It opens files through TensorFlow's gfile
    when TF is installed: free with the basic launcher (TF is loaded already), one import
    in the launching process of a parallel launcher.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from pipeline.compat import write_events_with_c_crc

    write_events_with_c_crc()  # the pictures' checksums in C, not Python
    hparams = [
        hp.HParam(name, hparam_domain(hp, found)) for name, found in compared_settings(rows).items()
    ]
    metrics = []
    for name in metrics_of(task):  # the task's main metric first
        run, _, tag = name.partition("/")
        if session_run == "root":
            metrics.append(hp.Metric(tag, group=run, display_name=f"{tag} ({run})"))
        elif run == session_run:
            metrics.append(hp.Metric(tag, group="", display_name=f"{tag} ({run})"))
    summaries = [hp.hparams_config_pb(hparams=hparams, metrics=metrics)]
    for name, png in panels:
        from PIL import Image

        width, height = Image.open(io.BytesIO(png)).size
        image = summary_pb2.Summary.Image(
            height=height, width=width, colorspace=3, encoded_image_string=png
        )
        tag = f"{SUMMARY_TAG}/{name.replace('/', '_')}"
        value = summary_pb2.Summary.Value(tag=tag, image=image)
        summaries.append(summary_pb2.Summary(value=[value]))
    writer = EventFileWriter(str(sweep_dir))
    try:
        for summary in summaries:
            writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))
    finally:
        writer.close()


#: summary.png's panels in the sweep root's IMAGES, in the `plots` group as each job's fit
SUMMARY_TAG = "plots/sweep_summary"


def hparam_domain(hp: Any, values: Sequence[Any]) -> Any:
    """The values a swept setting took, as a Discrete domain (None when types are mixed)."""
    if all(is_number(v) for v in values):
        return hp.Discrete(sorted({float(v) for v in values}))
    kinds = {type(v) for v in values}
    return hp.Discrete(sorted(set(values))) if len(kinds) == 1 else None


def summarise_seeds(
    rows: Sequence[dict[str, Any]],
    sweep_dir: Path,
    series: Any = None,
    finals: dict[str, dict[str, tuple[int, float]]] | None = None,
) -> list[tuple[str, bytes]]:
    """Settings run with several seeds: summary_by_setting.csv, the spread in summary.png,
    one mean run per setting in TensorBoard (pipeline/sweeps/replicates.py), grouped table.
    `series`: the jobs' scalars (board_plugin/sweep_view.SweepSeries); `finals` gets the
    mean runs' final scalars (`write_replicate_runs`). Returns summary.png's panels."""
    from pipeline.sweeps.plots import spread_png
    from pipeline.sweeps.replicates import write_replicate_runs

    keys = default_group_keys(rows)
    groups = group_rows(rows, keys)
    write_grouped_csv(groups, keys, sweep_dir / GROUPED_FILE)
    k_true = next((row["k_true"] for row in rows if row.get("k_true") is not None), None)
    panels = spread_png(groups, keys, sweep_dir / "summary.png", k_true)
    write_replicate_runs(sweep_dir, groups, rows, series, finals)
    print(
        f"\nsweep summary ({len(rows)} jobs, {len(groups)} settings x seeds): "
        f"{sweep_dir}/summary.csv, {GROUPED_FILE}, summary.png; mean runs in TensorBoard"
    )
    print("\n".join([grouped_table(groups, keys), *failures(rows)]), flush=True)
    return panels


#: what a noise sweep's summary says about how its jobs' noise relates (data.noise_draw)
NOISE_DRAW_NOTES = {
    "shared": "noise: one draw per seed, scaled by noise_std (common random numbers), so "
    "|k - k_true| is proportional to noise_std by construction; "
    "data.noise_draw=independent gives each level a draw of its own",
    "independent": "noise: each noise level drew its own (data.noise_draw=independent), so "
    "|k - k_true| scatters around the slope's standard error",
    # the shared draw's note, when the jobs' |k - k_true| do not show the proportionality
    "not converged": "noise: one draw per seed, scaled by noise_std (common random numbers); "
    "|k - k_true| is not proportional to noise_std here: not every fit converged "
    "(more trainer.steps, or a higher learning rate)",
}
#: |k - k_true| / noise_std may differ this much (relative) between the noise levels of
#: jobs alike in all else, for the fits to count as converged (float32 training)
PROPORTIONAL_WITHIN = 0.05


#: a job's `data.noise_draw`, kept beside its row's config columns until the sweep ends
NOISE_DRAW = "data.noise_draw"


def resolved_job_columns(resolved: dict[str, Any], overrides: list) -> dict[str, Any] | None:
    """What `SweepSummary` keeps of a job (`config_columns`, `data.noise_draw`) from its task
    config resolved into plain values (`readback.jobs.resolved_columns`); None where that
    could differ from reading its DictConfig."""
    columns = resolved_columns(resolved, [str(o) for o in overrides])
    if columns is None:  # the data are a mapping here, or none
        return None
    draw = (resolved.get("data") or {}).get("noise_draw")
    if not (draw is None or type(draw) in (str, int, float, bool)):
        return None
    if resolved_further(draw):
        return None
    return {**columns, NOISE_DRAW: draw}


def noise_draws(
    rows: Sequence[dict[str, Any]], sweep_dir: Path, known: Mapping[str, Any] | None = None
) -> str:
    """One line on how the jobs' noise relates, when the sweep varies the noise level.
    `known`: job dir (absolute) -> its noise draw, for jobs whose config is not read back."""
    if len({str(row.get("hparams", {}).get("data.noise_std")) for row in rows}) < 2:
        return ""
    draws = set()
    known = known or {}
    for row in rows:
        job_dir = os.path.abspath(Path(sweep_dir) / row["dir"])
        try:
            if job_dir in known:
                draws.add(known[job_dir])
            else:
                draws.add(noise_draw_of(Path(job_dir) / ".hydra" / "config.yaml"))
        except Exception:  # an unreadable job is reported by the table already
            continue
    if len(draws) != 1:
        return ""
    draw = draws.pop()
    if draw == "shared" and not proportional(rows):
        draw = "not converged"
    return NOISE_DRAW_NOTES.get(draw, "")


def noise_draw_of(config_file: Path) -> Any:
    """A job's `data.noise_draw` from its saved config: read with PyYAML's C loader (as
    readback reads the jobs), through OmegaConf only where the value is an interpolation."""
    from pipeline.readback.status import load_yaml

    draw = (load_yaml(config_file).get("data") or {}).get("noise_draw")
    if isinstance(draw, str) and "${" in draw:
        return OmegaConf.load(config_file).data.get("noise_draw")
    return draw


def proportional(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether |k - k_true| / noise_std is the same across the noise levels of each set of
    jobs alike in all else: what one shared draw gives once every fit has converged (a
    fit still on its way has an error of its own, which the noise does not scale)."""
    ratios: dict[str, list[float]] = {}
    for row in rows:
        settings = dict(row.get("hparams") or {})
        noise = settings.pop("data.noise_std", None)
        if row.get("status") != "completed" or row.get("k_error") is None:
            return False
        try:
            noise = float(noise)
        except (TypeError, ValueError):
            return False
        if noise > 0:
            key = repr(sorted(settings.items()))
            ratios.setdefault(key, []).append(float(row["k_error"]) / noise)
    compared = [group for group in ratios.values() if len(group) > 1]
    return bool(compared) and all(
        max(group) - min(group) <= PROPORTIONAL_WITHIN * max(group) for group in compared
    )


def task_of_sweep(config: DictConfig) -> dict[str, Any]:
    """The sweep's task config as plain data (the tutorial's line when it names none)."""
    from pipeline.tasks import LINE_FIT

    task = config.get("task")
    return OmegaConf.to_container(task, resolve=True) if task is not None else dict(LINE_FIT)


def job_finals(
    sweep_dir: Path, job_dir: str, held: Mapping[str, Mapping[str, tuple[Any, Any]]],
    writer_dirs: Mapping[str, str],
) -> dict[str, dict[str, tuple[int, float]]]:  # fmt: skip
    """A held job's runs (named as TensorBoard names them under the sweep dir) with each
    tag's last step and value, as its event files read back; none where two writers share
    a folder or a folder lies outside the sweep (those are read)."""
    job = os.path.relpath(os.path.abspath(job_dir), os.path.abspath(sweep_dir))
    runs = {
        writer: Path(os.path.normpath(os.path.join(job, folder))).as_posix()
        for writer, folder in writer_dirs.items()
    }
    inside = all(run == job or run.startswith(f"{job}/") for run in runs.values())
    if job.startswith("..") or not inside or len(set(runs.values())) < len(runs):
        return {}
    return {
        runs[writer]: {
            tag: (int(steps[-1]), float(values[-1]))
            for tag, (steps, values) in tags.items()
            if len(steps)
        }
        for writer, tags in held.items()
        if writer in runs
    }


#: (the job's config, its scalars) the launcher hands over for the job it runs now
_handed: tuple[Any, Any] | None = None


def hand_over(config: DictConfig, scalars: Any) -> None:
    """What a launcher that writes a job from arrays calls before the job ends: `scalars`
    (pipeline/sweeps/stacked_write.Scalars: its steps, and `<writer>/<tag>` -> one value a
    step) are what the job's event files will hold, so the sweep summary takes them
    instead of reading the files. Taken by `SweepSummary.on_job_end` for the job whose
    config is `config`, in the same process."""
    global _handed
    _handed = (config, scalars)


class SweepSummary(Callback):
    """Hydra callback: when a sweep ends, summarise its jobs at the sweep root."""

    def __init__(self) -> None:
        #: job dir -> (steps, values) of each job its launcher handed over (`hand_over`)
        self.held: dict[str, tuple[Any, Any]] = {}
        #: job dir -> what its summary row takes from its config (`config_columns`, and
        #: `data.noise_draw`), for each job that ended in this process
        self.configs: dict[str, dict[str, Any]] = {}
        #: job dir -> its overrides as Hydra saved them (`JobReturn.overrides`), likewise
        self.overrides: dict[str, list[str]] = {}
        #: job dir -> writer -> its folder (`writer.train`, ...), of each job held
        self.writer_dirs: dict[str, dict[str, str]] = {}
        #: the process that launched the sweep (a joblib or Slurm job ends in its own,
        #: where nothing kept would be read)
        self.launching_pid: int | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.held.clear()
        self.configs.clear()
        self.overrides.clear()
        self.writer_dirs.clear()
        self.launching_pid = os.getpid()

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """Keep what the sweep's end needs of a job that ended in this process (the basic
        and stacked launchers): its row's columns from its config, and the scalars the
        launcher handed over for it, if it completed."""
        global _handed
        handed, _handed = _handed, None
        output_dir = OmegaConf.select(config, "hydra.runtime.output_dir")
        if not output_dir:
            return
        if os.getpid() == self.launching_pid:
            written = handed is not None and handed[0] is config
            resolved = getattr(handed[1], "resolved_config", None) if written else None
            self._keep_config(str(output_dir), job_return, resolved)
        if handed is None or handed[0] is not config:
            return  # a job its launcher did not write from arrays: its files are read
        from hydra.core.utils import JobStatus

        if job_return.status == JobStatus.COMPLETED:
            self.held[str(output_dir)] = (handed[1].steps, handed[1].values)
            folders = config.get("writer") or {}  # where each writer's run is (`writer.train`)
            writers = {name.partition("/")[0] for name in handed[1].values}
            self.writer_dirs[str(output_dir)] = {
                name: str(folders.get(name, name)) for name in sorted(writers)
            }

    def _keep_config(
        self, output_dir: str, job_return: Any, resolved: dict[str, Any] | None = None
    ) -> None:
        """The job's task config as Hydra saved it in `.hydra/config.yaml` (`JobReturn.cfg`,
        with the overrides saved beside it in `overrides.yaml`): taken from here, neither
        is read back. `resolved`: that config resolved, as the stacked launcher wrote it
        (nothing in it to redact), its columns read from it where they can be."""
        overrides = job_return.overrides
        if resolved is not None and isinstance(overrides, list):  # its DictConfig not read
            found = resolved_job_columns(resolved, overrides)
            if found is not None:
                self.overrides[os.path.abspath(output_dir)] = [str(o) for o in overrides]
                self.configs[os.path.abspath(output_dir)] = found
                return
        job_config = getattr(job_return, "cfg", None)
        if not isinstance(job_config, DictConfig) or not isinstance(overrides, list):
            return
        self.overrides[os.path.abspath(output_dir)] = [str(o) for o in overrides]
        try:
            columns = config_columns(job_config, [str(o) for o in overrides])
            columns[NOISE_DRAW] = OmegaConf.select(job_config, "data.noise_draw")
        except Exception:  # whatever fails here fails again reading the files: said there
            return
        self.configs[os.path.abspath(output_dir)] = columns

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._summarise(config)
        finally:
            self.held.clear()
            self.configs.clear()
            self.overrides.clear()
            self.writer_dirs.clear()

    def _summarise(self, config: DictConfig) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        draws = {path: columns.pop(NOISE_DRAW) for path, columns in self.configs.items()}
        config_free: dict[str, dict[str, Any]] = {}  # each job's row as the tab reads it
        rows = read_sweep(sweep_dir, self.configs, self.overrides, config_free)
        if not rows:
            log.warning("sweep summary: no jobs found in %s", sweep_dir)
            return
        from pipeline.board_plugin.sweep_view import SweepSeries, written_series

        # every job's scalars, for the mean runs and the tab: as handed over, else read once
        series = SweepSeries()
        finals: dict[str, dict[str, tuple[int, float]]] = {}  # run -> its final scalars
        for job_dir, (steps, values) in self.held.items():
            held = written_series(steps, values)
            series.hold(job_dir, held)
            finals |= job_finals(sweep_dir, job_dir, held, self.writer_dirs.get(job_dir, {}))
        # an Optuna search: best and failed trials, by the scalar it optimised
        best = mark_trials(rows, sweep_dir, config.get("objective"))
        write_csv(rows, sweep_dir / "summary.csv")
        if seeds_vary(rows):  # settings x seeds: the grouped table says more than each job
            panels = summarise_seeds(rows, sweep_dir, series, finals)
            if note := noise_draws(rows, sweep_dir, draws):
                print(note, flush=True)
        else:
            from pipeline.sweeps.plots import summary_png

            note = noise_draws(rows, sweep_dir, draws)
            panels = summary_png(rows, swept_keys(rows), sweep_dir / "summary.png", note=note)
            print(f"\nsweep summary ({len(rows)} jobs): {sweep_dir}/summary.csv, summary.png")
            print(table(rows), flush=True)
            if note:
                print(note, flush=True)
        session_run = OmegaConf.select(config, "sinks.hparams.session_run", default="root")
        write_root_run(rows, sweep_dir, panels, task_of_sweep(config), session_run)
        if best is not None:
            print(best_line(best, config.get("objective")), flush=True)
        from pipeline.readback.report_cache import remember

        # so that even the first `tbpipe report` of it reads no event file; the runs this
        # process wrote (the held jobs', the mean runs) are not read back for it either
        remember(sweep_dir, finals)
        from pipeline.board_plugin.digest import remember as remember_tab

        # and the first TensorBoard's tab shows it without them, nor reading a job again
        remember_tab(sweep_dir, series, config_free)
