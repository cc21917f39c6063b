"""A progress bar over all pending sets: images done, images/s, ETA and the set being evaluated."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class ImagesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} img/s" if speed else "- img/s")


class SetProgress:
    """Rank zero's view of the run; a no-op elsewhere or when disabled."""

    def __init__(self, total_images: int, total_sets: int, enabled: bool) -> None:
        self.total_sets, self.done_sets, self.done_images = total_sets, 0, 0
        self.progress = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                ImagesPerSecond(),
                TextColumn("sets {task.fields[sets]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                speed_estimate_period=60.0,
            )
            if enabled and total_sets
            else None
        )
        self.task = None
        if self.progress is not None:
            self.task = self.progress.add_task("evaluating", total=total_images, sets=f"0/{total_sets}")

    def __enter__(self) -> SetProgress:  # noqa: PYI034
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def start_set(self, key: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=key)

    def advance(self, images: int) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, images)

    def finish_set(self, images: int) -> None:
        """``images``: the set's size over all ranks (``advance`` only estimates it from this rank's)."""
        self.done_sets += 1
        self.done_images += images
        if self.progress is not None:
            self.progress.update(self.task, completed=self.done_images, sets=f"{self.done_sets}/{self.total_sets}")
