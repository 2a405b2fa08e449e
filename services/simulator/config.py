"""The simulator's settings, from the environment."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from services.settings import EnvironmentSettings, secret


def _none_if_blank(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class SimulatorConfig(EnvironmentSettings):
    host: str = Field("127.0.0.1", validation_alias="SIMULATOR_HOST")
    port: int = Field(8090, ge=0, le=65535, validation_alias="SIMULATOR_PORT")
    # Where statuses are posted; empty means none are posted.
    callback_url: str = Field("", validation_alias="SIMULATOR_CALLBACK_URL")
    # Every scripted delay is divided by this (10 → ten times faster).
    speed: float = Field(1.0, gt=0, validation_alias="SIMULATOR_SPEED")
    seed: Annotated[int | None, BeforeValidator(_none_if_blank)] = Field(
        None, validation_alias="SIMULATOR_SEED"
    )
    rules_path: str = Field("", validation_alias="SIMULATOR_RULES")
    signature_secret: str = secret("SIMULATOR_SIGNATURE_SECRET")
    # Added to every answer to /v0.1/messages (not scaled by speed): a network.
    latency_ms: float = Field(0.0, ge=0, validation_alias="SIMULATOR_LATENCY_MS")
    # When set, sends must carry Basic credentials matching these (a Bearer
    # token is accepted as is).
    api_key: str = Field("", validation_alias="SIMULATOR_API_KEY")
    api_secret: str = Field("", repr=False, validation_alias="SIMULATOR_API_SECRET")
    callback_attempts: int = Field(8, ge=1, validation_alias="SIMULATOR_CALLBACK_ATTEMPTS")
    callback_timeout_s: float = Field(5.0, gt=0, validation_alias="SIMULATOR_CALLBACK_TIMEOUT_S")
