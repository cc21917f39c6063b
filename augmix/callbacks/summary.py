"""The model summary printed when fitting starts: Lightning's table, without a FLOPs count of zero.

Lightning counts FLOPs only by running the model's ``example_input_array``. This module has none:
its batches are dicts that the DataModule finishes after transfer, through the hooks an example
input would pass as well. Lightning's own summary then shows a column of zeros and
"Total FLOPs: 0". This one keeps the rest of the table and shows FLOPs only when they were counted.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import ModelSummary as LightningModelSummary
from pytorch_lightning.utilities.model_summary import get_formatted_model_size, get_human_readable_count

RIGHT_ALIGNED = ("Params", "Params per Device", "FLOPs", "In sizes", "Out sizes")


class ModelSummary(LightningModelSummary):
    """Lightning's model summary (rich table) with the FLOPs left out when nothing counted them."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]
        table = Table(header_style="bold magenta")
        for name, _ in columns:
            table.add_column(name, justify="right" if name in RIGHT_ALIGNED else "left", style="dim" if name == " " else None)
        for row in zip(*(values for _, values in columns)):
            table.add_row(*map(str, row))
        totals = [
            ("Trainable params", get_human_readable_count(trainable_parameters)),
            ("Non-trainable params", get_human_readable_count(total_parameters - trainable_parameters)),
            ("Total params", get_human_readable_count(total_parameters)),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ]
        if total_flops:
            totals.append(("Total FLOPs", get_human_readable_count(total_flops)))
        grid = Table.grid()
        for label, value in totals:
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)
