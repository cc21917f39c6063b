"""Config typos, nan/inf settings and an unlucky wandb (issue 10, sections 4 and 5).

| case | before | after |
|---|---|---|
| `+augmix.severty=3`, `++augmix.erase.prb=0.5` | silently ignored (Hydra's `+` bypasses the schema) | `Error: unknown config key augmix.severty (did you mean augmix.severity?); check the spelling: ...`, exit 2 |
| `+seeed=1` (train.py), `+checkpont=x` (evaluate.py), `+limt=3` (make_corrupted.py) | silently ignored | the same line, naming the top level of the entry config |
| `+model.num_classes=3` in evaluate.py | silently ignored | the line names `model.backbone and model.backbone_kwargs` |
| `+trainer.limit_train_batchs=2`, `+model.optimizer.momentun=0.8` | InstantiationException traceback, after the data and model were built | the line names the callable, e.g. `trainer accepts only the arguments of pytorch_lightning.Trainer` |
| legit `+`: `+trainer.limit_train_batches`, `+callbacks.NAME._target_`, `+benchmark@evaluate_after_fit=synthetic`, ... | accepted | still accepted |
| `model.optimizer.lr=nan`, `loss.weight=inf`, `augmix.alpha=nan`, `data.std=[inf,...]`, ... | accepted; the run failed later as "diverged" | `Error: model.optimizer.lr=nan is invalid: must be a finite number ...`, exit 2, in every entry point |
| wandb with an API key, server refusing or silent | hung ~100 s, then a CommError traceback | one `Warning: wandb server ... is unreachable (...)` line within `PROBE_TIMEOUT_S`, offline run in the run dir, run finishes |
| wandb server answers but wandb.init fails (401, hang) | CommError traceback (after up to 90 s) | one `Warning: wandb.init failed (...)` line (init bounded by 30 s), offline run in the run dir |
| wandb's cache / data / artifact folders | ~/.cache/wandb, ~/.local/share/wandb, ./artifacts | <run dir>/wandb/{cache,data,artifacts}; values the user set are kept |
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from augmix import loggers as wandb_setup
from augmix.config import EVALUATE_KEYS, MAKE_CORRUPTED_KEYS, TRAIN_KEYS, validate, validate_evaluate
from augmix.errors import ConfigError
from tests.conftest import ROOT, compose_train
from tests.evaluation_fixtures import compose_config

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


def refused(config: object, validator=validate) -> str:
    with pytest.raises(ConfigError) as error:
        validator(config)
    assert "\n" not in str(error.value)
    return str(error.value)


# --- unknown keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+augmix.severty=3"], "unknown config key augmix.severty (did you mean augmix.severity?); check the spelling: "
         "`+` adds new keys, and augmix accepts only the fields of augmix.config.AugMixConfig"),
        (["++augmix.erase.prb=0.5"], "unknown config key augmix.erase.prb (did you mean augmix.erase.prob?); check the "
         "spelling: `+` adds new keys, and augmix.erase accepts only the fields of augmix.config.EraseConfig"),
        (["+seeed=1"], "unknown config key seeed (did you mean seed?); check the spelling: `+` adds new keys, "
         "and the top level of train.yaml accepts only its own keys and config groups"),
        (["+trainer.limit_train_batchs=2"], "unknown config key trainer.limit_train_batchs (did you mean "
         "trainer.limit_train_batches?); check the spelling: `+` adds new keys, and trainer accepts only the "
         "arguments of pytorch_lightning.Trainer"),
        (["+model.optimizer.momentun=0.8"], "unknown config key model.optimizer.momentun (did you mean "
         "model.optimizer.momentum?)"),
        (["+callbacks.crash._target_=tests.helpers.CrashAtEpochStart", "+callbacks.crash.epochs=1"],
         "unknown config key callbacks.crash.epochs (did you mean callbacks.crash.epoch?)"),
    ],
)
def test_a_key_added_with_plus_that_nothing_reads_is_refused_with_a_suggestion(overrides, message):
    assert refused(compose_train(*overrides)).startswith(message)


def test_the_plus_uses_the_readme_and_tests_rely_on_still_validate():
    validate(compose_train(
        "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "+trainer.val_check_interval=2",
        "+trainer.max_time=00:00:00:03", "+benchmark@evaluate_after_fit=synthetic", "+model.backbone_kwargs.drop_rate=0.1",
        "+callbacks.crash._target_=tests.helpers.CrashAtEpochStart", "+callbacks.crash.epoch=1",
    ))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+checkpont=x"], "unknown config key checkpont (did you mean checkpoint?); check the spelling: `+` adds new "
         "keys, and the top level of evaluate.yaml accepts only its own keys and config groups"),
        (["+model.num_classes=3"], "unknown config key model.num_classes; check the spelling: `+` adds new keys, "
         "and model accepts only model.backbone and model.backbone_kwargs"),
        (["+trainer.devics=2"], "unknown config key trainer.devics (did you mean trainer.devices?)"),
    ],
)
def test_evaluate_refuses_unknown_keys_before_reading_the_checkpoint(overrides, message, tmp_path, capsys):
    import evaluate

    missing = tmp_path / "no.ckpt"  # never opened: the key is refused first
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(compose_config("evaluate", [f"checkpoint={missing}", f"paths.output_dir={tmp_path}", *overrides]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Error: {message}") and err.count("\n") == 1


def test_train_and_make_corrupted_print_the_one_line_and_exit_2(tmp_path, capsys):
    import make_corrupted
    import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(compose_train("+augmix.severty=3", f"paths.output_dir={tmp_path}"))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: unknown config key augmix.severty (did you mean augmix.severity?)") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exit_info:
        make_corrupted.main(compose_config("make_corrupted", ["+limt=3", f"out={tmp_path / 'c'}"]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("Error: unknown config key limt (did you mean limit?)")
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    "name, keys, overrides",
    [("train", TRAIN_KEYS, ["val_corruptions=held_out"]), ("evaluate", EVALUATE_KEYS, []), ("make_corrupted", MAKE_CORRUPTED_KEYS, [])],
)
def test_top_level_schemas_list_exactly_what_the_entry_configs_compose(name, keys, overrides):
    """A key added to configs/<name>.yaml without its schema would refuse every run, and a stale
    schema entry would let that key's typos through again."""
    assert set(compose_config(name, overrides).keys()) == set(keys) - {"hydra"}


# --- nan and inf -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.optimizer.lr=nan", "model.optimizer.lr=nan is invalid: must be a finite number"),
        ("model.optimizer.weight_decay=inf", "model.optimizer.weight_decay=inf is invalid"),
        ("model.optimizer.momentum=nan", "model.optimizer.momentum=nan is invalid"),
        ("model.scheduler.final_lr=-inf", "model.scheduler.final_lr=-inf is invalid"),
        ("loss.weight=inf", "loss.weight=inf is invalid: must be a finite number"),
        ("loss.weight=nan", "loss.weight=nan is invalid"),
        ("augmix.alpha=nan", "augmix.alpha=nan is invalid"),
        ("augmix.mixup.alpha=inf", "augmix.mixup.alpha=inf is invalid"),
        ("augmix.erase.area=[0.1,nan]", "augmix.erase.area=[0.1, nan] is invalid: must hold finite numbers only"),
        ("data.mean=[0.5,nan,0.5]", "data.mean=[0.5, nan, 0.5] is invalid: must hold finite numbers only"),
        ("data.std=[inf,0.5,0.5]", "data.std=[inf, 0.5, 0.5] is invalid"),
        ("loss.label_smoothing=nan", "loss.label_smoothing=nan is invalid: must be a finite number"),
        ("trainer.gradient_clip_val=inf", "trainer.gradient_clip_val=inf is invalid"),
    ],
)
def test_nan_and_inf_are_refused_at_start_up_naming_the_key(override, message):
    assert refused(compose_train(override)).startswith(message)


def test_a_non_finite_step_thirds_gamma_is_refused():
    assert refused(compose_train("model/scheduler=step_thirds", "model.scheduler.gamma=nan")).startswith(
        "model.scheduler.gamma=nan is invalid"
    )


def test_evaluate_refuses_non_finite_settings():
    config = compose_config("evaluate", ["checkpoint=x.ckpt", "benchmark=synthetic", "data.std=[0.5,0.5,inf]"])
    assert refused(config, validate_evaluate).startswith("data.std=[0.5, 0.5, inf] is invalid")


# --- wandb: an unreachable server, a failing wandb.init, files outside the run dir -------------


@pytest.fixture
def wandb_env(monkeypatch, tmp_path) -> Path:
    """An API key, no WANDB_MODE, an empty HOME; every variable wandb_setup sets is restored after."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    for name in ("WANDB_MODE", "WANDB_INIT_TIMEOUT", *wandb_setup.WANDB_FOLDERS):
        monkeypatch.delenv(name, raising=False)
    return home


def wandb_files_under(home: Path) -> list[Path]:
    return [path for path in home.rglob("*") if "wandb" in path.name]


@pytest.fixture
def fresh_wandb() -> Iterator[None]:
    """wandb reads its settings (mode, server) once per process and its service keeps the
    environment it started with: start both afresh, so this test's environment applies."""
    import wandb

    wandb.teardown()
    yield
    wandb.teardown()


def refusing_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers (what a black-holing network looks like)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture
def unauthorised_url() -> Iterator[str]:
    """A server that answers every request with 401: reachable, but wandb.init fails."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"errors": [{"message": "invalid api key"}]}')

        do_GET = do_HEAD = do_POST  # noqa: N815

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_probe_tells_an_answer_from_a_refusal_and_from_silence(silent_url, unauthorised_url):
    assert wandb_setup.unreachable_reason(unauthorised_url, timeout=5) is None  # any status is an answer
    assert wandb_setup.unreachable_reason(refusing_url(), timeout=5) == "connection refused"
    assert wandb_setup.unreachable_reason(silent_url, timeout=0.5) == "no answer within 0.5 s"


@pytest.mark.parametrize("server", ["refusing", "silent"])
def test_an_unreachable_wandb_server_means_offline_in_the_run_dir_with_one_warning(
    server, wandb_env, fresh_wandb, silent_url, monkeypatch, tmp_path, capfd
):
    url = refusing_url() if server == "refusing" else silent_url
    monkeypatch.setenv("WANDB_BASE_URL", url)
    monkeypatch.setattr(wandb_setup, "PROBE_TIMEOUT_S", 0.5)
    out = tmp_path / "run"
    loggers = wandb_setup.build_loggers(compose_train("logger=wandb", f"paths.output_dir={out}").logger)
    loggers[0].log_metrics({"train/loss": 1.0}, step=0)
    wandb_setup.finish_wandb(loggers)

    assert list((out / "wandb").glob("offline-run-*/run-*.wandb")), "the run must be logged offline in the run dir"
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    reason = "connection refused" if server == "refusing" else "no answer within 0.5 s"
    assert warnings == [
        f"Warning: wandb server {url} is unreachable ({reason}); logging offline to {out}/wandb. "
        f"Upload later with: wandb sync {out}/wandb/offline-run-*"
    ]
    assert "Traceback" not in err
    assert wandb_files_under(wandb_env) == []


def test_wandb_folders_go_into_the_run_dir_unless_the_user_set_them(monkeypatch, tmp_path):
    for name in wandb_setup.WANDB_FOLDERS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "mine"))
    wandb_setup.keep_wandb_files_in(tmp_path / "one" / "wandb")
    wandb_setup.keep_wandb_files_in(tmp_path / "two" / "wandb")  # the next job of a sweep
    assert os.environ["WANDB_CACHE_DIR"] == str(tmp_path / "two" / "wandb" / "cache")
    assert os.environ["WANDB_ARTIFACT_DIR"] == str(tmp_path / "two" / "wandb" / "artifacts")
    assert os.environ["WANDB_DATA_DIR"] == str(tmp_path / "mine")


def test_a_failing_wandb_init_falls_back_to_offline_and_nothing_lands_in_home(
    wandb_env, fresh_wandb, unauthorised_url, monkeypatch, tmp_path, capfd
):
    monkeypatch.setenv("WANDB_BASE_URL", unauthorised_url)
    out = tmp_path / "run"
    loggers = wandb_setup.build_loggers(compose_train("logger=wandb", f"paths.output_dir={out}").logger)
    loggers[0].log_metrics({"train/loss": 1.0}, step=0)
    wandb_setup.finish_wandb(loggers)

    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("Warning: wandb.init failed (") and "wandb sync" in warnings[0]
    assert "invalid api key" in warnings[0] and "Traceback" not in err
    assert list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert wandb_files_under(wandb_env) == []
    assert (out / "wandb" / "cache").is_dir()  # where wandb's service put its logs instead of ~/.cache/wandb


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB")}
    return {**env, "HOME": str(home), **extra}


@pytest.mark.slow
def test_train_py_with_an_api_key_and_a_silent_network_finishes_offline(tmp_path, silent_url):
    home, out = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    env = clean_env(home, WANDB_API_KEY=FAKE_KEY, WANDB_BASE_URL=silent_url)
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "experiment=quickstart", f"hydra.run.dir={out}", "logger=wandb",
         "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1", "evaluate_after_fit=null"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "is unreachable (no answer within" in warnings[0]
    assert (out / "metrics.json").is_file() and list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert wandb_files_under(home) == []
