"""Interruptions that must not lose work: stop signals in every phase, Ctrl-C, kill -9, a full disk.

| phase / case                   | before                                             | after                                                  |
|--------------------------------|----------------------------------------------------|--------------------------------------------------------|
| SIGTERM in validation          | exit 0, no line, the epoch lost                    | `SIGTERM: saved <last.ckpt> ... during validation,     |
|                                |                                                    | which runs again from its start; ...`, exit 0; the     |
|                                |                                                    | rerun validates again, then equals an unstopped run    |
| Ctrl-C, first                  | exit 1, no checkpoint: the rerun starts over       | acknowledged; `SIGINT: saved ...` after the batch,     |
|                                |                                                    | exit 130; the rerun continues                          |
| Ctrl-C, second                 | (the first already aborted)                        | aborts at once: one line, exit 130, no broken file     |
| sanity check                   | exit 0, no line                                    | `...: stopped in the sanity check, ...`, exit 0        |
| post-fit test (`test=true`)    | SIGUSR1 ignored; the rerun skips the test          | stops after the batch; the rerun runs the test         |
| post-fit evaluation            | killed (SIGTERM, SIGUSR1/2); the rerun skips it    | stops after the batch, finished sets kept; the rerun   |
|                                |                                                    | evaluates only the missing sets                        |
| evaluate.py                    | SIGUSR1/2 kill silently; Ctrl-C traceback          | stops after the batch, finished sets kept, one line    |
| between two sweep jobs         | the next job starts                                | the sweep stops before it; the rerun continues         |
| a sweep job, in validation     | the job's epoch lost                               | the job saves, the sweep stops; the rerun resumes it,  |
|                                |                                                    | then runs the next job                                 |
| DDP, signal to rank zero only  | Lightning stops at the next step without saving    | all ranks agree at a batch boundary, save, one line    |
| kill -9 mid-save               | `.last.ckpt.*.tmp` (180 MB) stays forever          | removed at the next start; a live writer's never       |
| disk full / `ulimit -f`        | `RuntimeError ... unexpected pos` traceback        | `Error: could not write <path>: file too large ...;    |
|                                |                                                    | the previous last.ckpt is intact ...`, exit 2; also    |
|                                |                                                    | for metrics.json and evaluation results                |
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from augmix import interrupts, training
from augmix.cli import report_errors
from augmix.errors import AugMixError
from augmix.evaluation import evaluate
from augmix.evaluation.run import ResultStore
from augmix.files import AtomicCheckpointIO, atomic_write, remove_stale_temporaries, write_json
from augmix.training import train
from tests.conftest import ROOT, compose_train
from tests.evaluation_fixtures import evaluate_config, lightning_checkpoint

# Two epochs of two batches; validation has three batches of 50 images, so it can be interrupted mid-way.
QUICK = (
    "experiment=quickstart", "logger=csv", "trainer.max_epochs=2", "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=3", "+trainer.num_sanity_val_steps=0", "data.eval_batch_size=50", "data.batch_size=16",
)
TINY = (*QUICK, "evaluate_after_fit=null")
ENV = {**os.environ, "WANDB_MODE": "disabled"}
RESUME = "run the same command again to resume."


def pause(stage: str, batch: int, marker: Path, epoch: int | None = None, hold: bool = False) -> list[str]:
    """Overrides that make the run wait at a batch for the test's signal (tests.helpers.PauseAtBatch)."""
    extra = [f"+callbacks.pause.epoch={epoch}"] if epoch is not None else []
    return [
        "+callbacks.pause._target_=tests.helpers.PauseAtBatch", f"+callbacks.pause.batch={batch}",
        f"+callbacks.pause.stage={stage}", f"+callbacks.pause.marker={marker}", f"+callbacks.pause.hold={hold}", *extra,
    ]


def start(command: list[str], stderr: Path) -> subprocess.Popen:
    with open(stderr, "w") as handle:
        return subprocess.Popen(command, cwd=ROOT, env=ENV, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=handle)


def wait_for(process: subprocess.Popen, ready, stderr: Path, what: str) -> None:
    deadline = time.time() + 300
    while not ready():
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"the run never reached {what}: {stderr.read_text()[-3000:]}")
        time.sleep(0.1)


def interrupted(command: list[str], marker: Path, stop: signal.Signals, tmp_path: Path) -> tuple[int, str]:
    """Run ``command``, send ``stop`` once it wrote ``marker``; its exit status and stderr."""
    stderr = tmp_path / "stderr.txt"
    process = start(command, stderr)
    wait_for(process, marker.exists, stderr, "its pause point")
    process.send_signal(stop)
    returncode = process.wait(timeout=300)
    return returncode, stderr.read_text()


def train_command(out: Path, *overrides: str, base: tuple[str, ...] = TINY) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *base, f"hydra.run.dir={out}", *overrides]


def stop_lines(stderr: str) -> list[str]:
    """The lines the user reads about the stop (progress bars and library logs filtered out)."""
    prefixes = ("SIG", "Ctrl-C", "Aborted", "Error")
    return [line.strip() for line in stderr.splitlines() if line.strip().startswith(prefixes)]


def fit(out: Path, *overrides: str, base: tuple[str, ...] = TINY) -> dict:
    """The same command, run again in this process (as train.py would)."""
    return train(compose_train(*base, f"paths.output_dir={out}", *overrides))


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def assert_same_run(run: Path, reference: Path) -> None:
    """Bit-identical weights and the same final metrics as an uninterrupted run."""
    ours, theirs = checkpoint(run / "checkpoints" / "last.ckpt"), checkpoint(reference / "checkpoints" / "last.ckpt")
    assert ours["global_step"] == theirs["global_step"]
    assert all(torch.equal(ours["state_dict"][k], theirs["state_dict"][k]) for k in theirs["state_dict"])
    mine, straight = (json.loads((path / "metrics.json").read_text()) for path in (run, reference))
    for key in ("val/acc", "val/loss", "val/acc_best", "epoch", "global_step", "finished"):
        assert mine[key] == straight[key], key


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted run every stopped-and-resumed run must equal."""
    out = tmp_path_factory.mktemp("straight")
    fit(out)
    return out


# --------------------------------------------------------------------------------------- training


def test_sigterm_during_validation_saves_and_the_same_command_validates_again(tmp_path, straight):
    out, marker = tmp_path / "run", tmp_path / "paused"
    returncode, stderr = interrupted(train_command(out, *pause("validation", 1, marker, epoch=0)), marker, signal.SIGTERM, tmp_path)
    last = out / "checkpoints" / "last.ckpt"
    assert returncode == 0, stderr[-3000:]
    assert stop_lines(stderr) == [
        f"SIGTERM: saved {last} at epoch 0, batch 2 (global step 2) during validation, which runs again from its start; {RESUME}"
    ]
    assert "Traceback" not in stderr
    saved = checkpoint(last)
    assert saved["global_step"] == 2 and saved["AugMixDataModule"]["resume_point"] == [0, 2], "the epoch's training is kept"
    assert not (out / "metrics.json").exists(), "no validation had finished"

    stale = out / "checkpoints" / f".last.ckpt.{dead_pid()}@{socket.gethostname()}.abcdefgh.tmp"
    stale.write_bytes(b"half a checkpoint of a save that was killed")
    fit(out)  # validates epoch 0 again from its start, then trains epoch 1: nothing retrained or skipped
    assert not stale.exists(), "temp files of killed saves are removed at start-up"
    assert_same_run(out, straight)
    progress = checkpoint(last)["loops"]["fit_loop"]["epoch_loop.val_loop.batch_progress"]["total"]
    assert progress["ready"] == progress["completed"], "later checkpoints do not read as interrupted mid-validation"


def test_first_ctrl_c_saves_at_the_next_batch_so_the_same_command_continues(tmp_path):
    """Resuming from such a checkpoint is exact (test_sigterm_during_validation_..., and
    tests/test_reliability.py for a stop mid-training)."""
    out, marker = tmp_path / "run", tmp_path / "paused"
    returncode, stderr = interrupted(train_command(out, *pause("train", 0, marker, epoch=1)), marker, signal.SIGINT, tmp_path)
    last = out / "checkpoints" / "last.ckpt"
    assert returncode == 130, stderr[-3000:]
    assert stop_lines(stderr) == [
        "Ctrl-C: stopping at the next batch boundary to save; press Ctrl-C again to abort at once.",
        f"SIGINT: saved {last} at epoch 1, batch 1 (global step 3); {RESUME}",
    ]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    saved = checkpoint(last)
    assert saved["global_step"] == 3 and saved["AugMixDataModule"]["resume_point"] == [1, 1], "the rerun continues here"


@pytest.mark.slow
def test_a_second_ctrl_c_aborts_at_once_and_leaves_no_broken_file(tmp_path):
    out, marker, stderr = tmp_path / "run", tmp_path / "paused", tmp_path / "stderr.txt"
    process = start(train_command(out, *pause("train", 0, marker, epoch=0, hold=True)), stderr)
    wait_for(process, marker.exists, stderr, "its pause point")
    process.send_signal(signal.SIGINT)
    wait_for(process, lambda: "press Ctrl-C again" in stderr.read_text(), stderr, "the first Ctrl-C")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == 130
    text = stderr.read_text()
    assert stop_lines(text)[-1] == "Aborted by Ctrl-C without saving; every file written so far is complete (files are written atomically)."
    assert "Traceback" not in text and not any(line.startswith("SIGINT: saved") for line in stop_lines(text))
    assert not list(out.rglob("*.tmp")) and not (out / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_a_stop_in_the_sanity_check_stops_before_training(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "paused"
    command = train_command(out, "trainer.num_sanity_val_steps=2", *pause("sanity", 0, marker))
    returncode, stderr = interrupted(command, marker, signal.SIGTERM, tmp_path)
    assert returncode == 0, stderr[-3000:]
    assert stop_lines(stderr) == [
        "SIGTERM: stopped in the sanity check, before any training step: nothing to save yet; run the same command again to start."
    ]
    assert not (out / "checkpoints").exists()


@pytest.mark.slow
def test_a_stop_during_the_post_fit_test_keeps_training_and_the_rerun_runs_the_test(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "paused"
    testing = ("trainer.max_epochs=1", "test=true", "+trainer.limit_test_batches=3")
    returncode, stderr = interrupted(train_command(out, *testing, *pause("test", 1, marker)), marker, signal.SIGUSR1, tmp_path)
    assert returncode == 0, stderr[-3000:]
    assert stop_lines(stderr) == [
        f"SIGUSR1: stopped the test run after 2 of 3 batches; the trained checkpoints in {out / 'checkpoints'} are unchanged; "
        "run the same command again to run the test."
    ]
    before = json.loads((out / "metrics.json").read_text())
    assert before["finished"] and "test/acc" not in before
    stamp = (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    metrics = fit(out, *testing)
    after = json.loads((out / "metrics.json").read_text())
    assert after["post_fit"] == {"test": True, "global_step": 2} and after["test/acc"] == metrics["test/acc"]
    assert after["global_step"] == before["global_step"], "nothing was trained again"
    assert (out / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stamp
    assert fit(out, *testing)["test/acc"] == metrics["test/acc"]  # done: the third run only reads metrics.json


def paused_in_evaluation(script: str, marker: Path, batch: int, *args: str) -> list[str]:
    code = "import sys; from tests.helpers import run_paused_in_evaluation; run_paused_in_evaluation(*sys.argv[1:])"
    return [sys.executable, "-c", code, str(ROOT / script), str(marker), str(batch), *args]


@pytest.mark.slow
def test_a_stop_during_the_post_fit_evaluation_keeps_finished_sets_and_the_rerun_completes_them(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "paused"
    robustness = (  # the quickstart's synthetic digits-C, smaller
        "evaluate_after_fit.limit_per_set=16", "evaluate_after_fit.batch_size=8", "evaluate_after_fit.progress=false",
        "evaluate_after_fit.corruptions=[gaussian_noise,contrast]", "evaluate_after_fit.severities=[1,2]", "trainer.max_epochs=1",
    )
    command = paused_in_evaluation("train.py", marker, 4, *QUICK, f"hydra.run.dir={out}", *robustness)
    returncode, stderr = interrupted(command, marker, signal.SIGTERM, tmp_path)
    sets = out / "robustness_sets"
    assert returncode == 0, stderr[-3000:]
    assert stop_lines(stderr) == [
        f"SIGTERM: stopped evaluation after 2 of 5 sets; the finished sets are kept in {sets}; run the same command again to continue."
    ]
    kept = {path.name: path.stat().st_mtime_ns for path in sets.glob("*-*.json")} | {"clean.json": (sets / "clean.json").stat().st_mtime_ns}
    metrics = fit(out, *robustness, base=QUICK)
    assert metrics["robustness/mean_corruption_error"] is not None
    summary = json.loads((out / "robustness.json").read_text())
    assert len(summary["sets"]) == 5
    assert all((sets / name).stat().st_mtime_ns == stamp for name, stamp in kept.items()), "finished sets are not computed again"


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory) -> Path:
    return lightning_checkpoint(tmp_path_factory.mktemp("trained") / "last.ckpt")


EVALUATE = (
    "benchmark=synthetic", "benchmark.limit_per_set=16", "benchmark.batch_size=8",
    "benchmark.corruptions=[gaussian_noise,contrast]", "benchmark.severities=[1,2]",
)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGUSR1, signal.SIGINT], ids=["SIGUSR1", "SIGINT"])
def test_evaluate_py_stops_at_the_next_batch_keeps_finished_sets_and_continues(tmp_path, trained_checkpoint, stop):
    out, marker = tmp_path / "out", tmp_path / "paused"
    args = (f"checkpoint={trained_checkpoint}", *EVALUATE, "benchmark.progress=false", "trainer.accelerator=cpu")
    returncode, stderr = interrupted(paused_in_evaluation("evaluate.py", marker, 2, *args, f"hydra.run.dir={out}"), marker, stop, tmp_path)
    sets = out / "robustness_sets"
    assert returncode == (130 if stop == signal.SIGINT else 0), stderr[-3000:]
    assert stop_lines(stderr)[-1] == (
        f"{stop.name}: stopped evaluation after 1 of 5 sets; the finished sets are kept in {sets}; run the same command again to continue."
    )
    assert "Traceback" not in stderr and not (out / "robustness.json").exists()
    stamp = (sets / "clean.json").stat().st_mtime_ns
    summary = evaluate(evaluate_config(trained_checkpoint, out, list(EVALUATE)), data_overrides=([], False))
    assert len(summary["sets"]) == 5 and (sets / "clean.json").stat().st_mtime_ns == stamp


# ------------------------------------------------------------------------------------------ sweeps


def test_a_stop_between_two_sweep_jobs_stops_before_the_next_job(tmp_path, monkeypatch, capsys):
    """In a local sweep the handlers stay for the whole process: a signal that came after job 0's
    last batch stops the sweep when job 1 would start."""
    monkeypatch.setattr(training, "in_multirun", lambda: True)
    out = tmp_path / "sweep" / "1"
    cfg = compose_train(*TINY, f"paths.output_dir={out}")
    interrupts.install()  # as job 0 left them
    try:
        signal.raise_signal(signal.SIGUSR1)
        with pytest.raises(interrupts.Stopped) as stopped:
            train(cfg)
    finally:
        interrupts.uninstall()  # job 1's installation
        interrupts.uninstall()  # job 0's
    assert stopped.value.code == 0
    assert capsys.readouterr().err.strip() == (
        "SIGUSR1: stopped before sweep job 1 started; the jobs before it are kept; run the same command again to continue the sweep."
    )
    assert not out.exists()
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL, "the previous handler is back"


@pytest.mark.slow
def test_a_sweep_job_stopped_in_validation_stops_the_sweep_and_the_rerun_continues(tmp_path):
    sweep, marker = tmp_path / "sweep", tmp_path / "paused"
    command = [sys.executable, str(ROOT / "train.py"), "-m", f"hydra.sweep.dir={sweep}", *TINY, "trainer.max_epochs=1", "seed=0,1"]
    returncode, stderr = interrupted([*command, *pause("validation", 0, marker)], marker, signal.SIGTERM, tmp_path)
    assert returncode == 0, stderr[-3000:]
    assert stop_lines(stderr) == [
        f"SIGTERM: saved {sweep / '0' / 'checkpoints' / 'last.ckpt'} at epoch 0, batch 2 (global step 2) during validation, "
        f"which runs again from its start; {RESUME}"
    ]
    assert not (sweep / "1").exists(), "the sweep stopped instead of starting its next job"
    again = subprocess.run([*command, *pause("validation", 0, marker)], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    for job in ("0", "1"):
        assert json.loads((sweep / job / "metrics.json").read_text())["finished"]


@pytest.mark.slow
def test_ranks_agree_on_a_stop_that_only_rank_zero_received(tmp_path):
    out, marker = tmp_path / "run", tmp_path / "paused"
    ddp = ("trainer=ddp_cpu", "data.batch_size=32", "trainer.limit_train_batches=4")
    returncode, stderr = interrupted(train_command(out, *ddp, *pause("train", 1, marker, epoch=0)), marker, signal.SIGTERM, tmp_path)
    assert returncode == 0, stderr[-3000:]
    # four batches, asked every ten: the ranks agree at the start of validation
    last = out / "checkpoints" / "last.ckpt"
    assert stop_lines(stderr) == [
        f"SIGTERM: saved {last} at epoch 0, batch 4 (global step 4) during validation, which runs again from its start; {RESUME}"
    ]
    resumed = subprocess.run(train_command(out, *ddp), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["finished"] and metrics["global_step"] == 8


# --------------------------------------------------------------------------------------- handlers


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2], ids=lambda number: number.name)
def test_every_stop_signal_is_recorded_as_a_stop_request_and_not_acted_on_at_once(stop):
    with interrupts.handling_stops():
        assert interrupts.requested() is None
        signal.raise_signal(stop)
        assert interrupts.requested() == stop and not interrupts.aborted()


def test_ctrl_c_twice_and_handlers_installed_before_ours(capfd):
    """The first Ctrl-C is acknowledged and recorded, the second aborts; a handler installed
    before ours (submitit's SIGUSR2 requeue) runs only once the work is kept, then ours go away."""
    calls = []
    sigint_before = signal.getsignal(signal.SIGINT)  # Python's default_int_handler; SIG_IGN in a background job
    previous = signal.signal(signal.SIGUSR2, lambda number, frame: calls.append(number))
    try:
        with interrupts.handling_stops():
            signal.raise_signal(signal.SIGUSR2)
            signal.raise_signal(signal.SIGINT)
            assert interrupts.requested() == signal.SIGUSR2 and calls == []
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            assert interrupts.aborted()
            with pytest.raises(interrupts.Stopped) as stopped:
                interrupts.stop("kept everything")
        assert stopped.value.code == 0 and calls == [signal.SIGUSR2]
        assert signal.getsignal(signal.SIGINT) is sigint_before
        signal.raise_signal(signal.SIGUSR2)
        assert calls == [signal.SIGUSR2, signal.SIGUSR2], "the previous handler is back"
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert capfd.readouterr().err.splitlines()[-2:] == [
        "Ctrl-C: stopping at the next batch boundary to save; press Ctrl-C again to abort at once.",
        "SIGUSR2: kept everything; run the same command again to resume.",
    ]


# ------------------------------------------------------------------------------ files left behind


def test_a_temp_file_left_by_kill_9_mid_save_is_removed_at_start_up_and_no_live_one(tmp_path):
    folder, marker = tmp_path / "checkpoints", tmp_path / "writing"
    writer = os.fork()  # a real atomic_write, killed with SIGKILL in the middle of its write
    if writer == 0:
        def write(handle) -> None:
            handle.write(b"x" * 100_000)
            handle.flush()
            marker.write_text("writing")
            time.sleep(120)

        try:
            atomic_write(folder / "last.ckpt", write)
        finally:
            os._exit(0)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.01)
    os.kill(writer, signal.SIGKILL)
    os.waitpid(writer, 0)
    (killed,) = folder.glob(".last.ckpt.*.tmp")
    host, two_hours_ago = socket.gethostname(), time.time() - 7200
    live = folder / f".last.ckpt.{os.getpid()}@{host}.abcdefgh.tmp"  # a concurrent writer on this host
    elsewhere = folder / ".last.ckpt.123@another-node.abcdefgh.tmp"  # being written on another node
    abandoned = folder / ".best.ckpt.123@another-node.abcdefgh.tmp"
    legacy = folder / ".last.ckpt.k2j3h4g5.tmp"  # written before temp names recorded their writer
    unrelated = [folder / "notes.tmp", folder / ".last.ckpt.tmp", folder / "last.ckpt"]
    for path in (live, elsewhere, abandoned, legacy, *unrelated):
        path.write_bytes(b"x")
    for path in (abandoned, legacy):
        os.utime(path, (two_hours_ago, two_hours_ago))
    assert sorted(remove_stale_temporaries(folder)) == sorted([killed, abandoned, legacy])
    assert all(path.exists() for path in (live, elsewhere, *unrelated))

    sets = tmp_path / "robustness_sets"  # evaluation results: cleaned when the store opens
    sets.mkdir()
    stale = sets / f".fog-3.json.{dead_pid()}@{host}.abcdefgh.tmp"
    stale.write_text("{")
    ResultStore(sets, {"what": "test"}).open()
    assert not stale.exists()


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"the previous checkpoint")
    save = report_errors(lambda: AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(500_000)}}, last))
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, limit[1]))  # ulimit -f: a 2 MB checkpoint does not fit
    try:
        with pytest.raises(SystemExit) as exit_info:
            save()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        f"Error: could not write {last}: file too large (over the file size limit, see ulimit -f); the previous last.ckpt is "
        "intact. Free some space (or raise the limit) and run the same command again"
    )
    assert last.read_bytes() == b"the previous checkpoint" and sorted(last.parent.iterdir()) == [last]


def test_a_full_disk_while_writing_metrics_or_evaluation_results_names_the_file(tmp_path, monkeypatch):
    metrics = tmp_path / "metrics.json"
    write_json(metrics, {"val/acc": 0.5})

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("augmix.files.os.fsync", no_space)
    with pytest.raises(AugMixError) as error:
        write_json(metrics, {"val/acc": 0.6})
    assert str(error.value).startswith(f"could not write {metrics}: no space left on device; the previous metrics.json is intact")
    assert json.loads(metrics.read_text()) == {"val/acc": 0.5}
    store = ResultStore(tmp_path / "robustness_sets", {"what": "test"})
    with pytest.raises(AugMixError, match=r"could not write .*clean\.json: no space left on device; no earlier clean\.json existed"):
        store.write("clean", {"error": 0.1})
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow
def test_a_full_disk_in_training_keeps_the_previous_last_ckpt(tmp_path):
    out = tmp_path / "run"
    first = subprocess.run(train_command(out, "trainer.max_epochs=1"), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    last = out / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    (out / "metrics.json").unlink()  # not finished: the same command resumes and saves again

    def limit_file_size() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) // 2, resource.RLIM_INFINITY))

    again = subprocess.run(
        train_command(out, "trainer.max_epochs=1", "resume=false"), cwd=ROOT, env=ENV, capture_output=True, text=True,
        timeout=600, preexec_fn=limit_file_size,
    )
    assert again.returncode == 2, again.stderr[-3000:]
    errors = stop_lines(again.stderr)
    assert len(errors) == 1 and errors[0].startswith("Error: could not write ") and "file too large" in errors[0]
    assert "Traceback" not in again.stderr and last.read_bytes() == before
    assert not list((out / "checkpoints").glob(".*.tmp"))
