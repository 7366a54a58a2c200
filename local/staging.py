"""Moves step inputs and outputs between the embedded S3 and a step's local /opt/ml folders.

Listing, sharded download (ShardedByS3Key) through a per-ETag cache, upload, and the mapping of
container paths (``/opt/ml/...``) to a step instance's work folder.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.expressions import PipelineRunError
from processing.lake import split_s3_uri

CONTAINER_ROOT = "/opt/ml/"
TRANSFER_THREADS = 8
CACHE_FOLDER = ".s3-cache"


@dataclass(frozen=True)
class S3Object:
    """One listed object: its key and ETag (the cache key: objects are immutable per ETag)."""

    key: str
    etag: str


def s3_location(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of ``uri``; a malformed URI is a run error naming it."""
    try:
        return split_s3_uri(uri)
    except ValueError as error:
        raise PipelineRunError(str(error)) from None


def container_path(root: Path, path: str) -> Path:
    """Where the container path ``path`` (under /opt/ml) lives in the instance folder ``root``."""
    if not path.startswith(CONTAINER_ROOT):
        raise PipelineRunError(f"container path {path!r} is outside {CONTAINER_ROOT}")
    return root / "opt" / "ml" / path.removeprefix(CONTAINER_ROOT)


def shard(objects: Sequence[S3Object], index: int, count: int) -> list[S3Object]:
    """The objects instance ``index`` of ``count`` reads with ShardedByS3Key (sorted by key)."""
    if not 0 <= index < count:
        raise PipelineRunError(f"instance {index} is not one of {count} instances")
    return sorted(objects, key=lambda item: item.key)[index::count]


class S3Staging:
    """Transfers through the embedded S3, concurrently, with a local copy per (key, ETag).

    Use it as a context manager (or call :meth:`close`): it owns a thread pool.
    """

    def __init__(self, s3: Any, cache_folder: Path, threads: int = TRANSFER_THREADS) -> None:
        self.s3 = s3
        self.cache_folder = cache_folder
        # Daily files are many and small: transfer them concurrently (boto3 clients are
        # thread-safe), as SageMaker's own input staging does.
        self._transfers = ThreadPoolExecutor(max_workers=threads)

    def __enter__(self) -> S3Staging:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Wait for running transfers and release the threads."""
        self._transfers.shutdown(wait=True)

    def objects(self, uri: str) -> list[S3Object]:
        """Every object under ``uri``, sorted by key."""
        bucket, prefix = s3_location(uri)
        listed: list[S3Object] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            listed.extend(S3Object(item["Key"], item["ETag"]) for item in page.get("Contents", []))
        return sorted(listed, key=lambda item: item.key)

    def _cached(self, bucket: str, item: S3Object) -> Path:
        # Objects are immutable per ETag: a step that reads what an earlier step read or wrote
        # gets a local copy instead of another transfer through the emulator.
        digest = uuid.uuid5(uuid.NAMESPACE_URL, f"{bucket}/{item.key}/{item.etag}").hex
        return self.cache_folder / digest

    def download(self, uri: str, target: Path, instance: tuple[int, int] | None = None) -> None:
        """Copy every object under ``uri`` into ``target``, keeping its path below the prefix.

        ``instance`` (index, count) downloads only that instance's shard.
        """
        bucket, prefix = s3_location(uri)
        objects = self.objects(uri)
        if not objects:
            raise PipelineRunError(f"no objects under {uri}")
        if instance is not None:
            objects = shard(objects, *instance)

        def fetch(item: S3Object) -> None:
            relative = item.key[len(prefix) :].lstrip("/") or Path(item.key).name
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            cached = self._cached(bucket, item)
            if not cached.exists():
                cached.parent.mkdir(parents=True, exist_ok=True)
                body = self.s3.get_object(Bucket=bucket, Key=item.key)["Body"].read()
                # Written aside, then renamed: a concurrent reader never sees half a file.
                partial = cached.with_suffix(f".{uuid.uuid4().hex}")
                partial.write_bytes(body)
                partial.replace(cached)
            shutil.copyfile(cached, path)

        target.mkdir(parents=True, exist_ok=True)
        list(self._transfers.map(fetch, objects))

    def upload(self, source: Path, uri: str) -> None:
        """Put every file below the folder ``source`` under ``uri``, keeping relative paths."""
        bucket, prefix = s3_location(uri)
        files = sorted(path for path in source.rglob("*") if path.is_file())

        def put(path: Path) -> None:
            relative = path.relative_to(source).as_posix()
            self._put(path, bucket, f"{prefix}/{relative}" if prefix else relative)

        list(self._transfers.map(put, files))

    def upload_file(self, path: Path, uri: str) -> None:
        """Put the file ``path`` at exactly ``uri`` (a full object key)."""
        bucket, key = s3_location(uri)
        if not key:
            raise PipelineRunError(f"{uri} names no object key")
        self._put(path, bucket, key)

    def _put(self, path: Path, bucket: str, key: str) -> None:
        etag = self.s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())["ETag"]
        cached = self._cached(bucket, S3Object(key, etag))
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, cached)
