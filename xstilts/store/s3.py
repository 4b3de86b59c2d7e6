"""A store on any S3-compatible endpoint (AWS S3, MinIO, Ceph RGW, rclone, GCS interop) through boto3.

The endpoint comes from the `endpoint_url` argument, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`
(which boto3 also reads itself); credentials come only from boto3's standard chain (environment,
shared files, the pod's Secret via `envFrom`), never from a sweep file, and never appear in a message.

Transfers go through boto3's transfer manager (multipart above the part size, ranged parallel GETs),
with many files in flight at once. Connection errors, throttling and 5xx are retried with backoff by
botocore; what stays broken becomes a one-line `StoreError` that names the endpoint, the bucket and
the fix. Tunables (environment):

| variable | default | meaning |
|---|---|---|
| `XSTILTS_S3_PART_SIZE_MB` | 64 | multipart threshold and part size (MiB, at least 5) |
| `XSTILTS_S3_CONCURRENCY` | 8 | requests in flight (parts and files together) |
| `XSTILTS_S3_MAX_ATTEMPTS` | 5 (or `AWS_MAX_ATTEMPTS`) | attempts per request, first included |
| `XSTILTS_S3_RETRY_MODE` | standard (or `AWS_RETRY_MODE`) | botocore retry mode: standard or adaptive |
| `XSTILTS_S3_CONNECT_TIMEOUT` | 10 | seconds to open a connection |
| `XSTILTS_S3_READ_TIMEOUT` | 60 | seconds to wait for data on an open connection |
| `XSTILTS_S3_ADDRESSING_STYLE` | path with a custom endpoint, else auto | path, virtual or auto |
| `XSTILTS_STORE_OUTAGE_S` | 300 | seconds to keep retrying an endpoint that answered before and stopped |
| `XSTILTS_S3_CONDITIONAL_WRITES` | auto | PutObject honours If-None-Match/If-Match: auto (probe), on, off |

An endpoint that has answered once and then fails with a transient error (unreachable, timeouts, 5xx,
throttling) is retried with exponential backoff (up to 30 s apart) for `XSTILTS_STORE_OUTAGE_S`
seconds before the error is raised; one that never answered fails at once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import botocore.loaders
import botocore.session
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from xstilts.errors import StoreError
from xstilts.store.base import ObjectInfo, Store, common_prefix

_T = TypeVar("_T")

MiB = 1024 * 1024
DELETE_BATCH = 1000  # the S3 API's limit for one DeleteObjects call
MIN_PART_SIZE_MB = 5.0  # S3's minimum size of a non-final multipart part

_MISSING_KEY_CODES = {"NoSuchKey", "404", "NotFound"}
_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "Forbidden",
    "403",
    "401",
}
_CONNECTION_ERRORS = (BotoConnectionError, HTTPClientError)
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "500",
    "502",
    "503",
    "504",
}
_CONDITION_FAILED_CODES = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
MAX_OUTAGE_BACKOFF_S = 30.0


def _env_float(name: str, default: float, *fallbacks: str) -> float:
    for var in (name, *fallbacks):
        raw = os.environ.get(var, "").strip()
        if raw:
            try:
                return float(raw)
            except ValueError:
                raise StoreError(
                    f"{var}={raw!r} is not a number (fix: set it to a number or unset it)"
                ) from None
    return default


def _env_str(name: str, default: str, *fallbacks: str) -> str:
    for var in (name, *fallbacks):
        raw = os.environ.get(var, "").strip()
        if raw:
            return raw
    return default


def resolve_endpoint(endpoint_url: str | None = None) -> str | None:
    """The explicit endpoint, else the one boto3 would take from the environment (S3-specific first)."""
    if endpoint_url:
        return endpoint_url
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


@dataclass(frozen=True)
class S3Settings:
    """Transfer, retry and timeout settings (see the module docstring for the environment variables)."""

    part_size_mb: float = 64.0
    concurrency: int = 8
    max_attempts: int = 5
    retry_mode: str = "standard"
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    addressing_style: str | None = None  # None: path with a custom endpoint, boto3's default otherwise
    outage_s: float = 300.0  # how long to ride out an endpoint that answered before and stopped
    conditional_writes: str = "auto"  # auto (probe the endpoint) | on | off

    @classmethod
    def from_env(cls, **overrides: Any) -> S3Settings:
        """Settings from `XSTILTS_S3_*` (and `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE`); `overrides` win."""
        values: dict[str, Any] = {
            "part_size_mb": _env_float("XSTILTS_S3_PART_SIZE_MB", cls.part_size_mb),
            "concurrency": int(_env_float("XSTILTS_S3_CONCURRENCY", cls.concurrency)),
            "max_attempts": int(_env_float("XSTILTS_S3_MAX_ATTEMPTS", cls.max_attempts, "AWS_MAX_ATTEMPTS")),
            "retry_mode": _env_str("XSTILTS_S3_RETRY_MODE", cls.retry_mode, "AWS_RETRY_MODE"),
            "connect_timeout": _env_float("XSTILTS_S3_CONNECT_TIMEOUT", cls.connect_timeout),
            "read_timeout": _env_float("XSTILTS_S3_READ_TIMEOUT", cls.read_timeout),
            "addressing_style": os.environ.get("XSTILTS_S3_ADDRESSING_STYLE") or None,
            "outage_s": _env_float("XSTILTS_STORE_OUTAGE_S", cls.outage_s),
            "conditional_writes": _env_str("XSTILTS_S3_CONDITIONAL_WRITES", cls.conditional_writes).lower(),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.retry_mode not in ("standard", "adaptive", "legacy"):
            raise StoreError(
                f"S3 retry mode {self.retry_mode!r} is unknown "
                "(fix: XSTILTS_S3_RETRY_MODE=standard or adaptive)"
            )
        if self.concurrency < 1 or self.max_attempts < 1:
            raise StoreError("XSTILTS_S3_CONCURRENCY and XSTILTS_S3_MAX_ATTEMPTS must be at least 1")
        if self.conditional_writes not in ("auto", "on", "off"):
            raise StoreError(
                f"XSTILTS_S3_CONDITIONAL_WRITES={self.conditional_writes!r} is unknown (fix: auto, on or off)"
            )
        if self.addressing_style not in (None, "path", "virtual", "auto"):
            raise StoreError(
                f"S3 addressing style {self.addressing_style!r} is unknown "
                "(fix: XSTILTS_S3_ADDRESSING_STYLE=path, virtual or auto)"
            )

    @property
    def part_size(self) -> int:
        return int(max(self.part_size_mb, MIN_PART_SIZE_MB) * MiB)

    def client_config(self, endpoint_url: str | None) -> Config:
        style = self.addressing_style or ("path" if endpoint_url else "auto")
        return Config(
            signature_version="s3v4",
            s3={"addressing_style": style},
            # botocore's "max_attempts" counts retries only; "total_max_attempts" counts the first try too,
            # as AWS_MAX_ATTEMPTS does.
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.concurrency + 4,
            # rclone (and other S3 look-alikes) reject or mangle the default CRC trailers on ranged GETs.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )

    def transfer_config(self) -> TransferConfig:
        return TransferConfig(
            multipart_threshold=self.part_size,
            multipart_chunksize=self.part_size,
            max_concurrency=self.concurrency,
            max_io_queue=1000,
            io_chunksize=1 * MiB,
            use_threads=True,
            preferred_transfer_client="classic",
        )


@functools.lru_cache(maxsize=1)
def _shared_loader() -> botocore.loaders.Loader:
    return botocore.loaders.create_loader()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not uri.startswith("s3://"):
        raise StoreError(f"{uri!r} is not an s3:// URI (fix: use s3://bucket/prefix)")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise StoreError(f"{uri!r} names no bucket (fix: use s3://bucket/prefix)")
    return bucket, prefix.strip("/")


class S3Store(Store):
    """Objects under `s3://bucket/prefix` on an S3-compatible endpoint."""

    list_page_size = 1000  # keys per ListObjectsV2 call (S3's maximum)
    head_limit = 16  # `existing`: up to this many keys a HEAD each, more: one listing

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        settings: S3Settings | None = None,
        region_name: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = resolve_endpoint(endpoint_url)
        self.settings = settings or S3Settings.from_env()
        self.region_name = region_name
        self.uri = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._root = f"{self.prefix}/" if self.prefix else ""
        self.client = self._make_client()
        self._bucket_seen = False
        self._reached = False  # answered at least once: from then on, outages are ridden out
        self._conditional: bool | None = None

    @classmethod
    def from_uri(cls, uri: str, *, endpoint_url: str | None = None, **settings: Any) -> S3Store:
        """Open `s3://bucket/prefix`; `settings` override `S3Settings` fields (e.g. `max_attempts=2`)."""
        bucket, prefix = parse_s3_uri(uri)
        return cls(bucket, prefix, endpoint_url=endpoint_url, settings=S3Settings.from_env(**settings))

    def _make_client(self) -> Any:
        # A fresh session per store (credentials and region are read from the environment now), sharing
        # one model loader so that a second store does not parse the S3 service model again.
        session = botocore.session.Session()
        session.register_component("data_loader", _shared_loader())
        region = self.region_name or session.get_config_variable("region")
        region = region or ("us-east-1" if self.endpoint_url else None)
        return session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region,
            config=self.settings.client_config(self.endpoint_url),
        )

    # -- naming ---------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The endpoint actually used (for messages)."""
        return self.endpoint_url or self.client.meta.endpoint_url

    def _full(self, key: str) -> str:
        return self._root + key.lstrip("/")

    def _relative(self, full_key: str) -> str:
        return full_key[len(self._root) :]

    # -- error translation ------------------------------------------------------------------------

    def _fail(self, exc: BaseException, action: str, key: str | None = None) -> NoReturn:
        """Turn a botocore/s3transfer error into FileNotFoundError or a one-line StoreError."""
        where = f"bucket '{self.bucket}' at {self.endpoint}"
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _MISSING_KEY_CODES and key is not None:
                raise FileNotFoundError(f"{self.uri}/{key}") from None
            if code == "NoSuchBucket":
                raise StoreError(
                    f"S3 {where} does not exist ({action}): create the bucket or fix the store URI"
                ) from None
            if code in _CREDENTIAL_CODES or status in (401, 403):
                raise StoreError(
                    f"S3 {where} refused the credentials ({code or status} while trying to {action}): "
                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the chart's Secret) and the "
                    "bucket's permissions"
                ) from None
            transient = code in _TRANSIENT_CODES or (isinstance(status, int) and status >= 500)
            raise StoreError(
                f"S3 {where} failed to {action}: {code or status}: {_one_line(exc)}", transient=transient
            ) from None
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            raise StoreError(
                f"no S3 credentials found for {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or mount the chart's Secret)"
            ) from None
        if isinstance(exc, _CONNECTION_ERRORS):
            raise StoreError(
                f"S3 endpoint {self.endpoint} is unreachable for bucket '{self.bucket}' (failed to {action} "
                f"after {self.settings.max_attempts} attempts: {type(exc).__name__}): check that the server "
                "is running and that AWS_ENDPOINT_URL points at it",
                transient=True,
            ) from None
        if isinstance(exc, BotoCoreError):
            raise StoreError(
                f"S3 {where} failed to {action}: {type(exc).__name__}: {_one_line(exc)}"
            ) from None
        raise exc

    def _call(
        self, action: str, fn: Callable[..., Any], /, *args: Any, key: str | None = None, **kw: Any
    ) -> Any:
        """One request, ridden through a store outage (see `_ride_out`)."""

        def attempt() -> Any:
            try:
                return fn(*args, **kw)
            except (ClientError, BotoCoreError) as exc:
                self._fail(exc, action, key)

        return self._ride_out(attempt)

    def _ride_out(self, attempt: Callable[[], _T]) -> _T:
        """Run `attempt`; while it fails with a transient StoreError (the endpoint unreachable, 5xx,
        throttling) and this store has answered before, retry with exponential backoff for up to
        `outage_s` seconds. A store that never answered fails at once: a wrong endpoint is reported
        in seconds, a short outage in the middle of a sweep is ridden out."""
        started: float | None = None
        delay = 1.0
        while True:
            try:
                result = attempt()
            except FileNotFoundError:
                self._reached = True
                raise
            except StoreError as exc:
                window = self.settings.outage_s
                if not exc.transient or not self._reached or window <= 0:
                    raise
                now = time.monotonic()
                if started is None:
                    started = now
                    _warn(f"warning: {exc}; retrying for up to {window:.0f} s (XSTILTS_STORE_OUTAGE_S)")
                waited = now - started
                if waited >= window:
                    raise StoreError(
                        f"{exc} (still failing after {waited:.0f} s of retries; XSTILTS_STORE_OUTAGE_S "
                        "sets how long to wait)",
                        transient=True,
                    ) from None
                time.sleep(min(delay, window - waited))
                delay = min(delay * 2, MAX_OUTAGE_BACKOFF_S)
                continue
            if started is not None:
                _warn(f"S3 endpoint {self.endpoint} answers again after {time.monotonic() - started:.0f} s")
            self._reached = True
            return result

    # -- primitives -------------------------------------------------------------------------------

    def put_file(self, local_path: Path, key: str) -> None:
        self.put_files([(Path(local_path), key)])

    def get_file(self, key: str, local_path: Path) -> None:
        self.get_files([(key, Path(local_path))])

    def put_files(self, pairs: list[tuple[Path, str]]) -> None:
        """Upload many files at once; multipart above the part size."""

        def submit(manager: Any, pair: tuple[Path, str]) -> Any:
            return manager.upload(str(pair[0]), self.bucket, self._full(pair[1]))

        self._ride_out(lambda: self._transfer(pairs, submit, "upload", lambda pair: pair[1]))

    def get_files(self, pairs: list[tuple[str, Path]]) -> None:
        """Download many files at once, each to a temporary name renamed into place when complete."""
        for _key, local_path in pairs:
            Path(local_path).parent.mkdir(parents=True, exist_ok=True)

        def submit(manager: Any, pair: tuple[str, Path]) -> Any:
            # s3transfer writes to `<name>.<random>` and renames it on success (removes it on failure).
            return manager.download(self.bucket, self._full(pair[0]), str(pair[1]))

        self._ride_out(lambda: self._transfer(pairs, submit, "download", lambda pair: pair[0]))

    def _transfer(
        self,
        pairs: list[Any],
        submit: Callable[[Any, Any], Any],
        action: str,
        key_of: Callable[[Any], str],
    ) -> None:
        """Run one transfer per pair on a shared transfer manager; the first failure cancels the rest."""
        if not pairs:
            return
        # Leaving the block with an exception cancels the transfers still queued (s3transfer's __exit__).
        with create_transfer_manager(self.client, self.settings.transfer_config()) as manager:
            futures = [(submit(manager, pair), key_of(pair)) for pair in pairs]
            for future, key in futures:
                self._wait(future, f"{action} {key}", key)

    def _wait(self, future: Any, action: str, key: str) -> None:
        try:
            future.result()
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc, action, key)
        except Exception as exc:  # s3transfer's RetriesExceededError wraps the last botocore error
            cause = getattr(exc, "last_exception", None) or exc.__cause__
            if isinstance(cause, (ClientError, BotoCoreError)):
                self._fail(cause, action, key)
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self._call(f"write {key}", self.client.put_object, Bucket=self.bucket, Key=self._full(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        def read() -> bytes:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            return response["Body"].read()

        return self._call(f"read {key}", read, key=key)

    def exists(self, key: str) -> bool:
        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code", "")) not in _MISSING_KEY_CODES:
                    self._fail(exc, f"check {key}")
                return False
            except BotoCoreError as exc:
                self._fail(exc, f"check {key}")
            return True

        found = self._ride_out(head)
        # HEAD answers a bare 404 for a missing bucket too: make sure once that the bucket is there, so a
        # typo in the bucket name is an error rather than "nothing is done yet".
        if not found and not self._bucket_seen:
            self.check()
            self._bucket_seen = True
        return found

    def existing(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` exist: a HEAD each for a few, else one listing of their common prefix (a status
        pass over a large sweep costs a LIST per 1000 objects instead of a HEAD per phase)."""
        wanted = list(dict.fromkeys(keys))
        if len(wanted) <= self.head_limit:
            return {key for key in wanted if self.exists(key)}
        lookup = set(wanted)
        return {obj.key for obj in self.list(common_prefix(wanted)) if obj.key in lookup}

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix` (recursive), one page of 1000 at a time; each page
        request is ridden through an outage on its own, so a long listing resumes where it was."""
        token: str | None = None
        while True:
            request: dict[str, Any] = {
                "Bucket": self.bucket,
                "Prefix": self._full(prefix),
                "MaxKeys": self.list_page_size,
            }
            if token:
                request["ContinuationToken"] = token
            page = self._call(f"list {prefix or '/'}", self.client.list_objects_v2, **request)
            for obj in page.get("Contents", []):
                yield ObjectInfo(key=self._relative(obj["Key"]), size=int(obj["Size"]))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    def delete_prefix(self, prefix: str) -> None:
        """Delete the object at exactly `prefix` and everything under `prefix/` (not `prefix-other`)."""
        stem = prefix.strip("/")
        keys = [o.key for o in self.list(f"{stem}/" if stem else "")]
        if stem and self.exists(stem):
            keys.append(stem)
        for start in range(0, len(keys), DELETE_BATCH):
            self._delete_batch(keys[start : start + DELETE_BATCH])

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", self.client.delete_object, Bucket=self.bucket, Key=self._full(key))

    def _delete_batch(self, keys: list[str]) -> None:
        objects = [{"Key": self._full(k)} for k in keys]
        response = self._call(
            f"delete {len(keys)} objects",
            self.client.delete_objects,
            Bucket=self.bucket,
            Delete={"Objects": objects, "Quiet": True},
        )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise StoreError(
                f"S3 bucket '{self.bucket}' at {self.endpoint} refused to delete {len(errors)} objects "
                f"(first: {self._relative(first.get('Key', '?'))}: {first.get('Code')}); check the "
                "credentials' permissions"
            )

    # -- conditional writes -------------------------------------------------------------------------

    @property
    def conditional_writes(self) -> bool:
        """Whether the endpoint honours `If-None-Match: *` and `If-Match` on PutObject (AWS S3 does since
        2024; rclone's `serve s3` ignores both). Probed once per store unless XSTILTS_S3_CONDITIONAL_WRITES
        says `on` or `off`."""
        if self._conditional is None:
            setting = self.settings.conditional_writes
            self._conditional = setting == "on" if setting in ("on", "off") else self._probe_conditional()
        return self._conditional

    def _probe_conditional(self) -> bool:
        key = f"leases/.probe-{secrets.token_hex(8)}"
        full = self._full(key)
        try:
            if self._put_conditional(key, b"1", None) is None:
                return False
            # Both conditions must be refused on an object that exists with another ETag.
            refuses_create = self._put_conditional(key, b"2", None) is None
            refuses_replace = self._put_conditional(key, b"3", '"00000000000000000000000000000000"') is None
            return refuses_create and refuses_replace
        except StoreError as exc:
            if exc.transient:
                raise
            return False  # a server that rejects the headers outright has no conditional writes
        finally:
            try:
                self._call(f"delete {key}", self.client.delete_object, Bucket=self.bucket, Key=full)
            except StoreError:
                pass

    def read_versioned(self, key: str) -> tuple[bytes, str] | None:
        def read() -> tuple[bytes, str]:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            return response["Body"].read(), str(response.get("ETag", ""))

        try:
            return self._call(f"read {key}", read, key=key)
        except FileNotFoundError:
            return None

    def put_conditional(self, key: str, data: bytes, expected: str | None) -> str | None:
        if not self.conditional_writes:
            return self._put_conditional(key, data, expected, conditional=False)
        return self._put_conditional(key, data, expected)

    def _put_conditional(
        self, key: str, data: bytes, expected: str | None, *, conditional: bool = True
    ) -> str | None:
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}

        def put() -> str | None:
            try:
                response = self.client.put_object(
                    Bucket=self.bucket, Key=self._full(key), Body=data, **(condition if conditional else {})
                )
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code in _CONDITION_FAILED_CODES or status in (409, 412):
                    return None
                if expected is not None and code in _MISSING_KEY_CODES:
                    return None  # replace-if-unchanged on an object that is gone
                self._fail(exc, f"write {key}")
            except BotoCoreError as exc:
                self._fail(exc, f"write {key}")
            return str(response.get("ETag", "")) or hashlib.md5(data).hexdigest()

        return self._ride_out(put)

    # -- extras -----------------------------------------------------------------------------------

    def check(self) -> None:
        """Fail early, with a one-line StoreError, if the bucket is missing, unreachable or refuses us."""

        def head_bucket() -> None:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code in _MISSING_KEY_CODES:  # HeadBucket has no body: a 404 is a missing bucket
                    exc.response["Error"]["Code"] = "NoSuchBucket"
                self._fail(exc, "reach the bucket")
            except BotoCoreError as exc:
                self._fail(exc, "reach the bucket")

        self._ride_out(head_bucket)

    def describe(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"S3Store({self.uri!r}, endpoint={self.endpoint!r})"


def _warn(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300]
