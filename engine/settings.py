"""Deployment settings, read once from ``CAMPO_*`` environment variables and CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a deployment may change without touching the YAML."""

    model_config = SettingsConfigDict(env_prefix="CAMPO_", extra="ignore")

    #: folder holding modules/, tags/, screens/ and migrations/
    project: Path = Path(".")
    #: site overlay folders applied on top of the project's modules, in order (env:
    #: comma-separated); relative ones are taken from the current folder
    overlays: Annotated[list[Path], NoDecode] = []
    #: SQLAlchemy URL; empty means the embedded SQLite file in ``data_dir``
    database_url: str = ""
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    #: MQTT broker URL for the bus, upstream publishing and the health check
    #: (``mqtt://host:1883``, ``mqtts://host`` = TLS on 8883; engine.mqtt); empty: none
    mqtt_url: str = ""
    #: credentials and TLS for ``mqtt_url`` where the URL gives none (docs/live.md)
    mqtt_username: str = ""
    mqtt_password: SecretStr = SecretStr("")
    mqtt_ca_file: Path | None = None
    mqtt_tls_insecure: bool = False
    #: start the simulated well pad with ``campo serve`` (the embedded default)
    simulate: bool = True
    #: where ``campo serve``'s simulated pad listens; the tag map's ``sim_pad`` site reads the
    #: same variables (``CAMPO_SIM_MODBUS_HOST``/``_PORT``, ``CAMPO_SIM_OPCUA_ENDPOINT``), so
    #: moving the pad off a busy port moves both
    sim_modbus_host: str = "127.0.0.1"
    sim_modbus_port: int = 5020
    sim_opcua_endpoint: str = "opc.tcp://127.0.0.1:4840/campo/sim"
    #: run the SCADA runtime (polling the devices of ``tags/``) inside ``campo serve``
    scada: bool = True
    #: how the web side reaches the SCADA runtime: ``inproc`` (same process) or ``mqtt``
    #: (separate processes joined by the broker at ``mqtt_url``)
    bus: str = "inproc"
    bus_prefix: str = "campo/bus"
    #: publish every tag change upstream to ``mqtt_url`` as retained JSON on this topic
    #: template (``{tag}``, ``{tag_path}`` = dots as slashes, ``{site}``); empty: off
    upstream_topic: str = ""
    #: publish the site as a Sparkplug B edge node (both set: on) to ``mqtt_url``
    sparkplug_group: str = ""
    sparkplug_node: str = ""
    #: alarms: MQTT topic of the retained active set per site (``<topic>/<site>/active``)
    #: and transitions (``<topic>/<site>/events``), published when ``mqtt_url`` is set
    alarm_topic: str = "campo/alarms"
    #: alarms: days the journal keeps transitions
    alarm_journal_days: float = 365.0
    #: largest page a list endpoint serves
    max_page_size: int = 1000
    default_page_size: int = 50
    #: the site's time zone (IANA name, e.g. ``America/Argentina/Neuquen``): the desk shows
    #: times in it, and ``today()``/``now()`` dates and naming series ``{YYYY}`` use it
    timezone: str = "UTC"
    #: the desk's static files (default: the repository's ``ui/`` folder)
    ui_dir: Path | None = None
    #: largest file accepted by an attachment field (bytes)
    max_upload_bytes: int = 10 * 1024 * 1024
    #: production mode refuses unsafe defaults
    production: bool = False

    # -- historian (engine.historian, docs/historian.md)
    #: keep every tag change in the database (in the process that runs the SCADA runtime)
    history: bool = True
    #: database of the history; empty: the same as ``database_url``
    history_database_url: str = ""
    #: folder of the store-and-forward spool; default ``<data_dir>/history-spool``
    history_spool_dir: Path | None = None
    #: largest spool on disk; above it the oldest samples are dropped (counted and logged)
    history_spool_max_bytes: int = 1 << 30
    #: samples per database write, and the longest wait before one
    history_batch: int = 50_000
    history_flush_seconds: float = 1.0
    #: most points one ``/api/history`` answer may hold
    history_max_points: int = 100_000
    #: days the 1-minute rollups are kept (1-hour rollups live as long as the samples)
    history_rollup_1m_days: float = 35.0

    # -- authentication and gateway (engine.auth)
    #: JWT signing secret (HS256); empty: read ``secret_file`` (development generates one)
    jwt_secret: SecretStr = SecretStr("")
    #: file holding the JWT secret; default ``<data_dir>/jwt_secret``
    secret_file: Path | None = None
    access_token_minutes: int = 15
    refresh_token_days: int = 7
    #: comma-separated origins allowed by CORS (``*`` for any); empty: no CORS headers
    cors_origins: str = ""
    #: rate limits (``N per second|minute|hour``; empty: none): login per IP and per user
    #: name, whole API per user; counted across the worker processes of ``campo serve``
    login_rate_limit: str = "10 per minute"
    api_rate_limit: str = "1200 per minute"
    #: seconds a verified token or API key is trusted without asking the database again
    #: (the staleness bound of revocations, see docs/security.md); 0 turns the cache off
    auth_cache_seconds: float = 2.0
    #: open WebSockets (``/api/ws``) allowed per user and in all, per web process
    ws_max_per_user: int = 32
    ws_max_total: int = 4000
    #: failed logins in a row that lock an account, and for how long
    lockout_attempts: int = 5
    lockout_minutes: int = 15
    #: largest request body accepted (413 above)
    max_body_bytes: int = 10 * 1024 * 1024
    #: first-start admin: created only when ``CAMPO_ADMIN_PASSWORD`` is set and no admin exists
    admin_username: str = "admin"
    admin_password: SecretStr = SecretStr("")

    @field_validator("overlays", mode="before")
    @classmethod
    def _split_overlays(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [Path(p.strip()) for p in value.split(",") if p.strip()]
        return value

    def resolved_history_url(self) -> str:
        """The history's database URL (the main database unless ``history_database_url``)."""
        return self.history_database_url or self.resolved_database_url()

    def resolved_spool_dir(self) -> Path:
        """The spool folder, defaulting to ``<data_dir>/history-spool``."""
        if self.history_spool_dir is not None:
            return self.history_spool_dir
        data = self.data_dir if self.data_dir.is_absolute() else self.project / self.data_dir
        return data / "history-spool"

    def resolved_data_dir(self) -> Path:
        """``data_dir``, relative to the project unless absolute (not created here)."""
        return self.data_dir if self.data_dir.is_absolute() else self.project / self.data_dir

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/campo.db``."""
        if self.database_url:
            return self.database_url
        data = self.data_dir if self.data_dir.is_absolute() else self.project / self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(data / 'campo.db').resolve()}"
