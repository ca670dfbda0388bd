"""docker-compose.yml and the Dockerfile agree with the ledger's configuration (no Docker engine is needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from consumers.views import views_store
from ledger.cli import main
from ledger.config import Settings
from ledger.errors import ConfigError
from ledger.projections import PROJECTIONS

ROOT = Path(__file__).parent.parent


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_services_images_ports_and_health_checks() -> None:
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["postgres"]["image"].startswith("postgres:")
    assert "9092:9092" in services["kafka"]["ports"] and "5432:5432" in services["postgres"]["ports"]
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"]
    consumers = {name.removeprefix("consume-") for name in services if name.startswith("consume-")}
    assert consumers == {p.NAME for p in PROJECTIONS}
    for name in ("relay", *(f"consume-{c}" for c in consumers)):
        assert services[name]["image"] == "mutual-ledger:latest"
    assert services["relay"]["command"] == ["kafka", "relay"]
    assert all(services[f"consume-{c}"]["command"] == ["kafka", "consume", c] for c in consumers)


def test_every_service_of_the_image_runs_a_command_the_cli_has() -> None:
    for name, service in compose()["services"].items():
        if service.get("image") != "mutual-ledger:latest":
            continue
        words = [word for word in service["command"] if not word.startswith("-")]
        words = words[:1] if words[0] == "serve" else words  # serve's option values are not subcommands
        result = CliRunner().invoke(main, [*words, "--help"], prog_name="mutual-ledger")
        assert result.exit_code == 0, (name, result.output)
        assert result.output.startswith(f"Usage: mutual-ledger {' '.join(words[:2])}"), (name, result.output)


def test_per_stream_read_models_run_two_members_of_one_group_and_total_order_ones_one() -> None:
    services = compose()["services"]
    for projection in PROJECTIONS:
        replicas = services[f"consume-{projection.NAME}"].get("deploy", {}).get("replicas", 1)
        assert replicas == (2 if projection.STREAM_LOCAL else 1), projection.NAME


def test_the_environment_is_the_ledgers_configuration() -> None:
    services = compose()["services"]
    env = services["relay"]["environment"]
    settings = Settings.from_env(env)
    postgres = services["postgres"]["environment"]
    assert settings.database_url is not None and settings.views_url is not None
    for url in (settings.database_url, settings.views_url):
        assert f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/{postgres['POSTGRES_DB']}" \
            in url
    assert settings.eventsourcing_env()["POSTGRES_SCHEMA"] == "events"
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.kafka_partitions == int(env["LEDGER_KAFKA_PARTITIONS"]) > 1
    assert services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].endswith("//kafka:9092")
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "SCHEMA IF NOT EXISTS events" in init and "SCHEMA IF NOT EXISTS views" in init
    assert views_store.__doc__ and "postgresql://" in views_store.__doc__


def test_the_service_serves_the_api_with_the_ledgers_configuration() -> None:
    api = compose()["services"]["api"]
    assert api["image"] == "mutual-ledger:latest" and api["command"][0] == "serve" and "8000:8000" in api["ports"]
    settings = Settings.from_env(api["environment"])
    assert settings.views_url is not None and settings.checkpoint_interval_seconds == 60.0


def test_the_image_installs_the_packages_and_runs_the_cli() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("ledger", "schemas", "consumers", "audit"):
        assert f"COPY {package} {package}" in dockerfile
    assert 'ENTRYPOINT ["mutual-ledger"]' in dockerfile


def test_the_partition_count_is_a_whole_number_from_1_to_1024() -> None:
    assert Settings.from_env({}).kafka_partitions == 4
    assert Settings.from_env({"LEDGER_KAFKA_PARTITIONS": "1024"}).kafka_partitions == 1024
    for text in ("0", "1025", "-1", "four", "2.5", "٣"):
        with pytest.raises(ConfigError, match=rf"^LEDGER_KAFKA_PARTITIONS: must_be_a_whole_number_in_range \(1 to "
                                              rf"1024 \({text}\)\)$"):
            Settings.from_env({"LEDGER_KAFKA_PARTITIONS": text})
