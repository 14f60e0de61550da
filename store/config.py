from pydantic import BaseModel, ConfigDict, Field


class StoreConfig(BaseModel):
    """The `store` section of config.yaml."""

    model_config = ConfigDict(extra="forbid")

    url: str = "sqlite+aiosqlite:///data/intake.db"
    # Apply pending migrations when the bot starts; a city that runs migrations as a separate
    # deployment step (`python bot.py db upgrade`) turns this off.
    migrate_on_start: bool = True
    pool_size: int = Field(default=5, ge=1)
    echo: bool = False
