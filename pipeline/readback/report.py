"""`tbpipe report DIR`: what every run under a TensorBoard logdir ended with, without clicking.

Works on any logdir (tbpipe's runs and sweeps, the Keras TensorBoard callback, TF1
FileWriter logs): runs are found and read by TensorBoard's rules (`runs.py`).
One row per run with its final scalars: kept from the last report where a run's files
are unchanged (`report_cache.py`), else read by TensorBoard's Rust data server
(`data_server.py`), else by the Python reader (`scalars.py`), all with the same result;
each faster path kept for a gain measured side by side (docs/PERFORMANCE.md, "Reading
runs back").
`--histograms` adds the distribution reading guide (`histogram_guide.py`) for every
histogram tag at its first and last step (read by TensorBoard's accumulator).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from pipeline.check.errors import OneLineParser
from pipeline.check.text_table import text_table
from pipeline.compat import read_events_without_tensorflow
from pipeline.runinfo import strict_json_value

PROG = "tbpipe report"


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("logdir", type=Path, help="a TensorBoard logdir (any depth of runs)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    form.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--histograms",
        action="store_true",
        help="also read every histogram: mean, std, shares in (-0.5, 0.5) and (-1.5, 1.5), "
        "dead share and the DISTRIBUTIONS percentiles, at the first and last step",
    )
    parser.add_argument(
        "--group-by",
        nargs="?",
        const="",
        default=None,
        metavar="KEY[,KEY]",
        help="a sweep's jobs grouped by setting (default: every swept key except seed): n, "
        "failed, mean, std and 95%% interval of k, |k - k_true|, train and test loss",
    )
    parser.add_argument(
        "--dead-threshold",
        type=float,
        default=None,
        metavar="T",
        help="a weight with |w| < T counts as dead (default 1e-3)",
    )
    return parser


def scalar_rows(runs: list) -> list[dict]:
    """One row per run that holds scalars: its name, last step and each tag's final value;
    for a tbpipe run, its `status` too (`tbpipe status`'s states).

    A run that diverged stops recording at the last step whose loss was finite, one step
    before the step its metrics.json (and the sweep's summary.csv) reports: the state
    after that step's update, whose loss is NaN or Inf. The row shows that step and those
    values, so that the report and the summary say the same."""
    from pipeline.readback.runs import final_scalars

    rows = []
    for name, run in runs:
        finals = final_scalars(run)
        if not finals:  # e.g. a job dir's HParams session, the sweep's HParams config
            continue
        step = max((step for step, _ in finals.values()), default=None)
        row = {"run": name, "step": step, "scalars": {t: v for t, (_, v) in finals.items()}}
        ended = tbpipe_run_of(Path(run.path))
        if ended is not None:
            row = {"run": name, "status": ended[1], **with_recorded_end(row, run.path, *ended)}
        rows.append(row)
    return rows


def tbpipe_run_of(event_dir: Path) -> tuple[Path, str, dict] | None:
    """(run dir, state, metrics.json) of the tbpipe run that `event_dir` belongs to (the
    run dir itself, or its train/ or test/), None for another program's logs."""
    from pipeline.readback.status import read_metrics_file
    from pipeline.runinfo import state_of

    for run_dir in (event_dir, event_dir.parent):
        metrics, mtime = read_metrics_file(run_dir)
        if metrics is not None:
            return run_dir, state_of(metrics, mtime), metrics
    return None


def with_recorded_end(row: dict, event_dir: Path, run_dir: Path, state: str, metrics: dict) -> dict:
    """`row` at the step metrics.json ends on when a diverged run's events stop before it
    (see `scalar_rows`): each of the writer's scalars that metrics.json records, a
    non-finite one (null there) as NaN."""
    from pipeline.runinfo import DIVERGED

    steps, final = metrics.get("steps"), metrics.get("final") or {}
    if state != DIVERGED or not isinstance(steps, int) or row["step"] is None:
        return row
    if steps <= row["step"]:
        return row
    writer = Path(event_dir).relative_to(run_dir).as_posix()
    recorded = {
        name.partition("/")[2]: value
        for name, value in final.items()
        if name.partition("/")[0] == writer
    }
    if not recorded:
        return row
    scalars = dict(row["scalars"])
    scalars.update({tag: math.nan if value is None else value for tag, value in recorded.items()})
    return {**row, "step": steps, "scalars": scalars}


def _scalar_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    tags = sorted({tag for row in rows for tag in row["scalars"]})
    statuses = any("status" in row for row in rows)  # tbpipe's runs: how each ended
    header = ["run", *(["status"] if statuses else []), "step", *tags]
    body = []
    for row in rows:
        values = [row["scalars"].get(tag) for tag in tags]
        body.append(
            [row["run"], *([row.get("status") or ""] if statuses else [])]
            + ["" if row["step"] is None else str(row["step"])]
            + ["" if v is None else f"{v:.6g}" for v in values]
        )
    return header, body


def _histogram_table(readings: list) -> tuple[list[str], list[list[str]]]:
    from pipeline.readback.histogram_guide import DISTRIBUTION_PERCENTILES

    percentile_names = [f"{p:g}" for p in DISTRIBUTION_PERCENTILES]
    header = ["run", "tag", "step", "count", "mean", "std", "in(-0.5,0.5)", "in(-1.5,1.5)"]
    header += ["dead", "dead<=", *[f"p{name}" for name in percentile_names]]
    body = []
    for r in readings:
        body.append(
            [r.run, r.tag, str(r.step), f"{r.count:g}", f"{r.mean:.4g}", f"{r.std:.4g}"]
            + [f"{share:.1%}" for share in (r.within_half, r.within_one_and_half, r.dead)]
            + [f"{r.dead_at_most:.1%}"]
            + [f"{r.percentiles[name]:.4g}" for name in percentile_names]
        )
    return header, body


def _csv(header: list[str], body: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    return out.getvalue().rstrip("\n")


def render(logdir: Path, rows: list[dict], readings: list | None, form: str) -> str:
    """The report as text: form is "table", "csv" or "json"."""
    if form == "json":
        document = {
            "logdir": str(logdir),
            "runs": [
                {**row, "scalars": {t: strict_json_value(v) for t, v in row["scalars"].items()}}
                for row in rows
            ],
        }
        if readings is not None:
            document["histograms"] = [
                {
                    k: (strict_json_value(v) if isinstance(v, float) else v)
                    for k, v in r.as_dict().items()
                }
                | {"percentiles": {p: strict_json_value(v) for p, v in r.percentiles.items()}}
                for r in readings
            ]
        return json.dumps(document, indent=2, allow_nan=False)
    tables = [_scalar_table(rows)]
    if readings is not None:
        tables.append(_histogram_table(readings))
    if form == "csv":
        return "\n\n".join(_csv(header, body) for header, body in tables)
    return "\n\n".join(text_table(header, body, rule=True) for header, body in tables)


def main(argv: Sequence[str] | None = None) -> int:
    """`tbpipe report DIR [--csv|--json] [--histograms] [--dead-threshold T]`."""
    args = _parser().parse_args(argv)
    if not args.logdir.is_dir():
        print(
            f"{PROG}: DIR '{args.logdir}' is not a directory; give a TensorBoard logdir",
            file=sys.stderr,
        )
        return 2
    if args.group_by is not None:
        return print_groups(args.logdir, args.group_by, args)
    threshold = args.dead_threshold
    if threshold is not None and not (math.isfinite(threshold) and threshold > 0):
        print(
            f"{PROG}: --dead-threshold {threshold} is not allowed; give a number > 0",
            file=sys.stderr,
        )
        return 2

    if argv is None or sys.argv[1:2] == ["report"]:  # this process reads runs, nothing more
        read_events_without_tensorflow()  # TensorBoard's stub, not TensorFlow's import
    from pipeline.readback import histogram_guide, report_cache, runs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", runs.DamagedEventFile)
        if args.histograms:
            wanted = {runs.SCALARS, runs.HISTOGRAMS}
            loaded = runs.load_runs(args.logdir, wanted, ends_only=True)  # first and last steps
        else:  # the last steps: from the cache, else TensorBoard's data server (Rust), else Python
            loaded = report_cache.load_final_scalars(args.logdir)
    for warning in caught:
        if not issubclass(warning.category, runs.DamagedEventFile):
            continue
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    if not loaded:
        print(
            f"{PROG}: no event files (events.out.tfevents.*) under '{args.logdir}'", file=sys.stderr
        )
        return 1

    readings = None
    if args.histograms:
        threshold = histogram_guide.DEAD_THRESHOLD if threshold is None else threshold
        readings = [
            reading
            for name, run in loaded
            for reading in histogram_guide.read_run_histograms(name, run, threshold)
        ]
    form = "json" if args.json else "csv" if args.csv else "table"
    print(render(args.logdir, scalar_rows(loaded), readings, form))
    return 0


def print_groups(sweep_dir: Path, group_by: str, args: argparse.Namespace) -> int:
    """`--group-by`: the sweep summary's grouped table (summary_by_setting.csv) for any sweep."""
    from pipeline.readback.groups import flat, grouped_table, write_grouped_rows
    from pipeline.readback.jobs import read_sweep

    rows = read_sweep(sweep_dir)
    if not rows:
        print(
            f"{PROG}: no sweep jobs (*/.hydra/overrides.yaml) under '{sweep_dir}'", file=sys.stderr
        )
        return 1
    try:
        keys, groups = grouped(rows, group_by)
    except ValueError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    if args.json:
        records = [{k: strict_json_value(v) for k, v in flat(g, keys).items()} for g in groups]
        print(json.dumps({"group_by": keys, "groups": records}, indent=2, allow_nan=False))
    elif args.csv:
        write_grouped_rows(groups, keys, sys.stdout, end="\n")
    else:
        print(grouped_table(groups, keys))
    return 0


def grouped(rows: list[dict], group_by: str) -> tuple[list[str], list[dict]]:
    """The keys asked for (or the default ones) and the groups; ValueError for an unknown key."""
    from pipeline.readback.groups import default_group_keys, group_rows
    from pipeline.readback.jobs import swept_keys

    swept = swept_keys(rows)
    keys = [k for k in group_by.split(",") if k] if group_by else default_group_keys(rows)
    unknown = [k for k in keys if k not in swept]
    if unknown:
        listing = ", ".join(swept) or "none"
        raise ValueError(
            f"--group-by {unknown[0]}: not a swept key of this sweep; swept: {listing}"
        )
    return keys, group_rows(rows, keys)


if __name__ == "__main__":
    sys.exit(main())
