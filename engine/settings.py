"""Deployment settings, read once from ``CAMPO_*`` environment variables and CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a deployment may change without touching the YAML."""

    model_config = SettingsConfigDict(env_prefix="CAMPO_", extra="ignore")

    #: folder holding modules/, tags/, screens/ and migrations/
    project: Path = Path(".")
    #: SQLAlchemy URL; empty means the embedded SQLite file in ``data_dir``
    database_url: str = ""
    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    #: MQTT broker URL for the bus and the health check (``mqtt://host:port``); empty: none
    mqtt_url: str = ""
    #: start the simulated well pad with ``campo serve`` (the embedded default)
    simulate: bool = True
    #: largest page a list endpoint serves
    max_page_size: int = 1000
    default_page_size: int = 50
    #: production mode refuses unsafe defaults
    production: bool = False

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``sqlite:///<data_dir>/campo.db``."""
        if self.database_url:
            return self.database_url
        data = self.data_dir if self.data_dir.is_absolute() else self.project / self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(data / 'campo.db').resolve()}"
