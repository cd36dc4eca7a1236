"""Configuration from environment variables only; the whole list lives here and in README.md."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

SERVICES = ("directory", "conversations", "sync", "attachments", "moderation", "mass_messaging")

_TRUE = {"1", "true", "yes", "on"}

# Documents, images, audio, video and archives; executables, scripts and web pages are not among them.
_ATTACHMENT_TYPES = (
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/rtf",
    "text/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.*",
    "application/vnd.oasis.opendocument.*",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "image/tiff",
    "image/heic",
    "audio/*",
    "video/*",
    "application/zip",
    "application/x-7z-compressed",
    "application/x-rar",
    "application/vnd.rar",
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/x-bzip2",
    "application/x-xz",
)
# Shown in the browser rather than saved: types a browser renders without running anything.
_INLINE_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "audio/*",
    "video/*",
    "text/plain",
)


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def _env_list(name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = os.environ.get(name)
    return default if raw is None else tuple(p.strip() for p in raw.split(",") if p.strip())


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in _TRUE


@dataclass(frozen=True, slots=True)
class Settings:
    env: str = "development"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    namespace: str = "im"
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432"
    db_prefix: str = "im"
    database_urls: dict[str, str] = field(default_factory=dict)
    jwt_secret: str = "development-only-secret-change-me-0123456789"
    jwt_public_key: str = ""
    cursor_secret: str = "development-cursor-secret-change-me"
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "school-im"
    jwt_audience: str = "school-im"
    token_ttl_seconds: int = 8 * 3600
    dev_login: bool = True
    rpc_timeout_seconds: float = 5.0
    rpc_threads: int = 8
    consumer_prefetch: int = 32
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    gateway_workers: int = 4
    # Threads per gateway worker (gunicorn's gthread workers); 1 = one request at a time per worker.
    gateway_threads: int = 1
    realtime_host: str = "127.0.0.1"
    realtime_port: int = 8001
    realtime_public_url: str = ""
    socketio_path: str = "socket.io"
    realtime_async_mode: str = "eventlet"
    # A dead client is dropped after ping interval + timeout with nothing heard from it.
    realtime_ping_interval: float = 25.0
    realtime_ping_timeout: float = 15.0
    realtime_max_pending_packets: int = 1000
    realtime_max_connections: int = 20_000
    max_body_bytes: int = 1024 * 1024
    max_upload_files: int = 10
    course_participants_url: str = "https://lms.example.org/course/{course_id}/participants"
    sync_retention_hours: float = 7 * 24
    # Celery workers `make run` starts for mass messages, and each one's threads.
    mass_workers: int = 1
    mass_worker_threads: int = 2
    # 1,000 recipients a chunk: one conversations call adds them in one statement and announces
    # them in one event (one packet for realtime to build), which takes well under a second, so a
    # killed worker redoes at most a second of work, and cancelling stops within one chunk; 50,000
    # recipients are 50 chunks, few enough that per-chunk costs (task, RPC, progress event) vanish.
    mass_chunk_size: int = 1000
    # A job's chunks are spread out to this many recipients a second, so a mass message never
    # takes the machine from people chatting: 50,000 recipients go out in about 35 s.
    mass_recipients_per_second: float = 1500.0
    blob_store: str = "local"  # "local" (files under blob_dir) or "s3"
    blob_dir: str = "var/blobs"
    s3_endpoint_url: str = ""
    s3_bucket: str = "school-im"
    s3_region: str = "us-east-1"
    # Content types a file may have (shell-style patterns), and those shown in the browser.
    attachment_types: tuple[str, ...] = field(default_factory=lambda: _ATTACHMENT_TYPES)
    attachment_inline_types: tuple[str, ...] = field(default_factory=lambda: _INLINE_TYPES)
    unclaimed_upload_hours: float = 24.0
    log_level: str = "INFO"
    # A background loop that has not moved for this long is stuck: its process exits to be started again.
    loop_stall_seconds: float = 300.0
    # Readiness fails while the oldest event waiting in a service's outbox is older than this.
    outbox_stale_seconds: float = 30.0
    # Each service process serves /healthz and /readyz on this port (0: none; the gateway asks over RPC).
    health_port: int = 0
    health_host: str = "127.0.0.1"

    @classmethod
    def from_env(cls) -> Settings:
        d = cls()
        env = _env("IM_ENV", d.env)
        return cls(
            env=env,
            amqp_url=_env("AMQP_URL", d.amqp_url),
            namespace=_env("IM_NAMESPACE", d.namespace),
            postgres_url=_env("POSTGRES_URL", d.postgres_url),
            db_prefix=_env("DB_PREFIX", d.db_prefix),
            database_urls={
                s: os.environ[f"{s.upper()}_DATABASE_URL"]
                for s in SERVICES
                if f"{s.upper()}_DATABASE_URL" in os.environ
            },
            jwt_secret=_env("JWT_SECRET", d.jwt_secret),
            jwt_public_key=_env("JWT_PUBLIC_KEY", ""),
            cursor_secret=_env("CURSOR_SECRET", d.cursor_secret),
            jwt_algorithm=_env("JWT_ALGORITHM", d.jwt_algorithm),
            jwt_issuer=_env("JWT_ISSUER", d.jwt_issuer),
            jwt_audience=_env("JWT_AUDIENCE", d.jwt_audience),
            token_ttl_seconds=_env_int("TOKEN_TTL_SECONDS", d.token_ttl_seconds),
            # Minting tokens for anyone is only ever a development convenience.
            dev_login=_env_bool("DEV_LOGIN", env == "development"),
            rpc_timeout_seconds=_env_float("RPC_TIMEOUT_SECONDS", d.rpc_timeout_seconds),
            rpc_threads=_env_int("RPC_THREADS", d.rpc_threads),
            consumer_prefetch=_env_int("CONSUMER_PREFETCH", d.consumer_prefetch),
            gateway_host=_env("GATEWAY_HOST", d.gateway_host),
            gateway_port=_env_int("GATEWAY_PORT", d.gateway_port),
            gateway_workers=_env_int("GATEWAY_WORKERS", d.gateway_workers),
            gateway_threads=_env_int("GATEWAY_THREADS", d.gateway_threads),
            realtime_host=_env("REALTIME_HOST", d.realtime_host),
            realtime_port=_env_int("REALTIME_PORT", d.realtime_port),
            realtime_public_url=_env("REALTIME_PUBLIC_URL", ""),
            socketio_path=_env("SOCKETIO_PATH", d.socketio_path),
            realtime_async_mode=_env("REALTIME_ASYNC_MODE", d.realtime_async_mode),
            realtime_ping_interval=_env_float("REALTIME_PING_INTERVAL", d.realtime_ping_interval),
            realtime_ping_timeout=_env_float("REALTIME_PING_TIMEOUT", d.realtime_ping_timeout),
            realtime_max_pending_packets=_env_int("REALTIME_MAX_PENDING_PACKETS", d.realtime_max_pending_packets),
            realtime_max_connections=_env_int("REALTIME_MAX_CONNECTIONS", d.realtime_max_connections),
            max_body_bytes=_env_int("MAX_BODY_BYTES", d.max_body_bytes),
            max_upload_files=_env_int("MAX_UPLOAD_FILES", d.max_upload_files),
            course_participants_url=_env("COURSE_PARTICIPANTS_URL", d.course_participants_url),
            sync_retention_hours=_env_float("SYNC_RETENTION_HOURS", d.sync_retention_hours),
            mass_workers=_env_int("MASS_WORKERS", d.mass_workers),
            mass_worker_threads=_env_int("MASS_WORKER_THREADS", d.mass_worker_threads),
            mass_chunk_size=_env_int("MASS_CHUNK_SIZE", d.mass_chunk_size),
            mass_recipients_per_second=_env_float("MASS_RECIPIENTS_PER_SECOND", d.mass_recipients_per_second),
            blob_store=_env("BLOB_STORE", d.blob_store),
            blob_dir=_env("BLOB_DIR", d.blob_dir),
            s3_endpoint_url=_env("S3_ENDPOINT_URL", d.s3_endpoint_url),
            s3_bucket=_env("S3_BUCKET", d.s3_bucket),
            s3_region=_env("S3_REGION", d.s3_region),
            attachment_types=_env_list("ATTACHMENT_TYPES", d.attachment_types),
            attachment_inline_types=_env_list("ATTACHMENT_INLINE_TYPES", d.attachment_inline_types),
            unclaimed_upload_hours=_env_float("UNCLAIMED_UPLOAD_HOURS", d.unclaimed_upload_hours),
            log_level=_env("LOG_LEVEL", d.log_level),
            loop_stall_seconds=_env_float("LOOP_STALL_SECONDS", d.loop_stall_seconds),
            outbox_stale_seconds=_env_float("OUTBOX_STALE_SECONDS", d.outbox_stale_seconds),
            health_port=_env_int("HEALTH_PORT", d.health_port),
            health_host=_env("HEALTH_HOST", d.health_host),
        ).check()

    def check(self) -> Settings:
        """Refuse to run production on the built-in development secrets."""
        if self.env != "production":
            return self
        defaults = Settings()
        problems = []
        if not self.jwt_public_key and self.jwt_secret == defaults.jwt_secret:
            problems.append("set JWT_PUBLIC_KEY (or JWT_SECRET) to the identity provider's key")
        if self.cursor_secret == defaults.cursor_secret:
            problems.append("set CURSOR_SECRET to a random value")
        if problems:
            raise ValueError("IM_ENV=production with development secrets: " + "; ".join(problems))
        return self

    def database_url(self, service: str) -> str:
        """The service's own database: an explicit URL, else `<POSTGRES_URL>/<DB_PREFIX>_<service>`."""
        if service in self.database_urls:
            return self.database_urls[service]
        return f"{self.postgres_url.rstrip('/')}/{self.db_prefix}_{service}"

    @property
    def exchange(self) -> str:
        return f"{self.namespace}.events"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.namespace}.dead"

    def rpc_queue(self, service: str) -> str:
        return f"{self.namespace}.rpc.{service}"

    def consumer_queue(self, name: str) -> str:
        return f"{self.namespace}.{name}"
