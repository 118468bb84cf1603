"""The thumbnail job, Ruby style (positional args): Ruby and node-resque apps can enqueue it too."""

from __future__ import annotations

from resque_compat import job


@job("Media::Thumbnail")
def thumbnail(image_id: int, sizes: list[int]) -> None:
    for size in sizes:
        print(f"thumbnail {image_id} at {size}px")
