"""README.md of an exported model: the Hub's model card, from the checkpoint's stored run config and
the robustness report of that checkpoint.

Values from the checkpoint are data: each is shown as a code span with newlines, pipes and
backticks neutralised, so a config cannot add markup to the card.
"""

from __future__ import annotations

from typing import Any

from augmix.evaluation.reports import error_columns, error_rows, published_markdown
from augmix.export.model import TrainedModel

CITATION = """@inproceedings{hendrycks2020augmix,
  title={{AugMix}: A Simple Data Processing Method to Improve Robustness and Uncertainty},
  author={Hendrycks, Dan and Mu, Norman and Cubuk, Ekin D. and Zoph, Barret and Gilmer, Justin and Lakshminarayanan, Balaji},
  booktitle={International Conference on Learning Representations (ICLR)},
  year={2020}
}"""
SHOWN_CHARS = 200


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def code(value: Any) -> str:
    """``value`` as a markdown code span that cannot break the table or add markup."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif value is None:
        text = "null"
    else:
        text = str(value)
    text = " ".join(text.split()).replace("`", "'").replace("|", "/")[:SHOWN_CHARS]
    return f"`{text}`"


def _callable_name(node: Any) -> Any:
    return str(node.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(node, dict) else node


def recipe_rows(trained: TrainedModel) -> list[tuple[str, Any]]:
    """(setting, value) rows of the training recipe, as stored in the checkpoint."""
    c = trained.config
    augmix = c.get("augmix") if isinstance(c.get("augmix"), dict) else {}
    enabled = augmix.get("enabled", True)
    rows: list[tuple[str, Any]] = [
        ("backbone", trained.backbone),
        ("backbone kwargs", trained.backbone_kwargs or None),
        ("initialised from pretrained weights", _get(c, "model.pretrained")),
        ("auxiliary BatchNorm in training (stripped here)", _get(c, "model.split_bn")),
        ("data", trained.data["name"]),
        ("classes", trained.data["num_classes"]),
        ("image size", trained.data["image_size"]),
        ("train transform", _plain_transform(trained.data["train_transform"])),
        ("eval transform", _plain_transform(trained.data["eval_transform"])),
        ("mean / std", f"{list(trained.data['mean'])} / {list(trained.data['std'])}"),
        ("AugMix", enabled),
    ]
    if enabled:
        rows += [
            ("AugMix severity / width / depth / alpha", " / ".join(str(augmix.get(k)) for k in ("severity", "width", "depth", "alpha"))),
            ("AugMix all_ops", augmix.get("all_ops")),
            ("Jensen-Shannon consistency (augmix.jsd)", augmix.get("jsd")),
            ("JSD weight (loss.weight)", _get(c, "loss.weight") if augmix.get("jsd", True) else None),
        ]
    for name in ("mixup", "cutmix"):
        alpha = _get(c, f"augmix.{name}.alpha")
        if isinstance(alpha, (int, float)) and alpha > 0:
            rows.append((f"{name} alpha", alpha))
    erase = _get(c, "augmix.erase.prob")
    if isinstance(erase, (int, float)) and erase > 0:
        rows.append(("random erasing probability", erase))
    rows += [
        ("loss", _callable_name(c.get("loss"))),
        ("label smoothing", _get(c, "loss.label_smoothing")),
        ("optimizer", _callable_name(_get(c, "model.optimizer"))),
        ("learning rate", _get(c, "model.optimizer.lr")),
        ("momentum / Nesterov", f"{_get(c, 'model.optimizer.momentum')} / {_get(c, 'model.optimizer.nesterov')}"),
        ("weight decay", _get(c, "model.optimizer.weight_decay")),
        ("schedule", _callable_name(_get(c, "model.scheduler"))),
        ("batch size (per device)", _get(c, "data.batch_size")),
        ("epochs", _get(c, "trainer.max_epochs")),
        ("devices x nodes", f"{_get(c, 'trainer.devices')} x {_get(c, 'trainer.num_nodes')}"),
        ("precision", _get(c, "trainer.precision")),
        ("seed", c.get("seed")),
        ("checkpoint sha256", trained.checkpoint.sha256),
    ]
    return rows


def _plain_transform(node: Any) -> str:
    if not isinstance(node, dict):
        return str(node)
    arguments = ", ".join(f"{k}={v}" for k, v in node.items() if k != "_target_")
    return f"{_callable_name(node)}({arguments})"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def robustness_section(report: dict[str, Any]) -> list[str]:
    """The robustness table of the report, labelled REGENERATED / PARTIAL where so."""
    labels = []
    if report["regenerated"]:
        labels.append("**REGENERATED** corruptions (synthesised by this project, not the released benchmark files)")
    else:
        labels.append("the released benchmark files")
    if not report["complete"]:
        labels.append("**PARTIAL** (a subset of corruptions, severities or images: not comparable with published numbers)")
    limit = "all images" if report["limit_per_set"] is None else f"the first {report['limit_per_set']} images of each set"
    out = [
        "## Robustness",
        "",
        f"Benchmark {code(report['benchmark'])} ({'; '.join(labels)}), protocol {code(report['protocol'])}, {limit}. "
        "Top-1 error in %:",
        "",
        "| metric | % |",
        "|---|---|",
        f"| clean error | {_fmt(report['clean_error'])} |",
        f"| mean corruption error | {_fmt(report['mean_corruption_error'])} |",
    ]
    if report.get("mCE") is not None:
        out += [f"| mCE (AlexNet-normalised) | {_fmt(report['mCE'])} |", f"| relative mCE | {_fmt(report.get('relative_mCE'))} |"]
    out += published_markdown(report)
    columns = error_columns(report)
    out += ["", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for row in error_rows(report):
        out.append(f"| {row[0]} | " + " | ".join(_fmt(v) for v in row[1:]) + " |")
    return out


def model_card(trained: TrainedModel, repo_id: str, report: dict[str, Any] | None, note: str | None) -> str:
    """The README.md text for the Hub repository ``repo_id`` (``USER/NAME``); ``report`` is this
    checkpoint's robustness.json (or None, with ``note`` saying why there is none)."""
    name = repo_id.rsplit("/", 1)[-1]
    custom = trained.backbone.startswith("cifar_")
    augmix = "AugMix + JSD" if _get(trained.config, "augmix.enabled") is not False else "no AugMix (baseline)"
    loading = ["import timm", *(["import augmix  # registers the paper's CIFAR architectures in timm"] if custom else [])]
    out = [
        "---",
        "library_name: timm",
        "pipeline_tag: image-classification",
        "tags:",
        "- image-classification",
        "- timm",
        "- augmix",
        "- robustness",
        "---",
        f"# {name}",
        "",
        f"{code(trained.backbone)} trained on {code(trained.data['name'])} with {augmix}, exported from a "
        "checkpoint of the augmix framework (Hendrycks, Mu et al., ICLR 2020).",
        "",
        "## Use",
        "",
        "```python",
        *loading,
        "",
        f'model = timm.create_model("hf-hub:{repo_id}", pretrained=True).eval()  # or "local-dir:/path/to/this/folder"',
        "config = timm.data.resolve_data_config({}, model=model)",
        "transform = timm.data.create_transform(**config)",
        "```",
        "",
    ]
    if custom:
        out += [f"{code(trained.backbone)} is one of the paper's CIFAR architectures, which `import augmix` registers in timm.", ""]
    out += [
        "Files: `model.safetensors` (weights only, timm key names, auxiliary BatchNorm removed), `config.json` "
        "(timm's pretrained config: architecture, classes, input size, normalisation, crop).",
        "",
        "## Training recipe",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {setting} | {code(value)} |" for setting, value in recipe_rows(trained)),
        "",
    ]
    out += robustness_section(report) if report is not None else ["## Robustness", "", note or "No robustness report."]
    out += ["", "## Citation", "", "```bibtex", CITATION, "```"]
    return "\n".join(out) + "\n"
