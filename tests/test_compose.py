"""docker-compose.yml and the Dockerfile: well-formed and consistent with the settings, no Docker needed."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer
import yaml

from adapter.cli import app
from adapter.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"mongo", "timescale", "orion", "mintaka", "mosquitto", "adapter"}
MINTAKA_PORT = 8080  # Mintaka's (Micronaut's) default, set explicitly in the compose file
ORION_PORT = 1026  # Orion-LD's fixed default, which the image listens on


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, rest = whole.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def env_pairs(text: str) -> dict[str, str]:
    """The variables of one ENV instruction (KEY=value pairs)."""
    return dict(part.split("=", 1) for part in shlex.split(text))


def service_port() -> int:
    return Settings.model_fields["service_port"].default


def adapter_env(compose: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in compose["services"]["adapter"]["environment"].items()}


def port_pairs(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(host, container) ports of a service's `ports` entries; each must be bound to loopback."""
    pairs = set()
    for entry in service.get("ports", []):
        address, host, container = str(entry).split(":")
        assert address == "127.0.0.1", f"{entry}: published beyond the host's loopback"
        pairs.add((int(host), int(container)))
    return pairs


def test_services_images_are_pinned(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: unpinned {image}"
    assert compose["services"]["orion"]["image"].startswith("fiware/orion-ld:1.")
    assert compose["services"]["mosquitto"]["image"].startswith("eclipse-mosquitto:2.")
    # Orion-LD's mongoc driver needs MongoDB >= 4.2.
    mongo = compose["services"]["mongo"]["image"]
    assert mongo.startswith("mongo:")
    major, minor = (int(x) for x in mongo.split(":")[1].split(".")[:2])
    assert (major, minor) >= (4, 2)


def test_every_service_has_a_healthcheck_and_dependencies_wait_for_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        if name == "mintaka":  # a jib image without a shell or curl: nothing to run a check with
            assert "healthcheck" not in service and service.get("restart") == "unless-stopped"
            assert not any("mintaka" in s.get("depends_on", {}) for s in services.values())
            continue
        check = service.get("healthcheck")
        assert check and check["test"][0] == "CMD" and len(check["test"]) > 1, name
        assert service.get("restart") == "unless-stopped", name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services and condition == {"condition": "service_healthy"}
    assert set(services["adapter"]["depends_on"]) == {"orion", "mosquitto"}
    assert set(services["orion"]["depends_on"]) == {"mongo", "timescale"}
    assert set(services["mintaka"]["depends_on"]) == {"timescale", "orion"}


def test_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert port_pairs(services["orion"]) == {(ORION_PORT, ORION_PORT)}
    assert port_pairs(services["mosquitto"]) == {(1883, 1883)}
    assert port_pairs(services["adapter"]) == {(service_port(), service_port())}
    assert "ports" not in services["mongo"]  # only Orion-LD talks to MongoDB
    assert "ports" not in services["timescale"]  # only Orion-LD and Mintaka talk to TimescaleDB
    assert {container for _, container in port_pairs(services["mintaka"])} == {MINTAKA_PORT}
    health = " ".join(services["adapter"]["healthcheck"]["test"])
    assert f"http://127.0.0.1:{service_port()}/health" in health
    assert f"http://localhost:{ORION_PORT}/version" in " ".join(services["orion"]["healthcheck"]["test"])


def test_volumes_are_declared_and_hold_the_state(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (ROOT / source).is_file(), f"bind-mounted {source} is missing"
            else:
                used.add(source)
    assert used == declared
    targets = [v.split(":")[1] for v in compose["services"]["adapter"]["volumes"]]
    assert adapter_env(compose)["BURGAS_STATE_DIR"] in targets
    assert any(v.endswith(":/data/db") for v in compose["services"]["mongo"]["volumes"])


def test_adapter_environment_is_settings(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    env = adapter_env(compose)
    fields = {f"BURGAS_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("BURGAS_")} <= fields
    # Besides settings, only the variables the bundled pipeline file reads (${MQTT_...}).
    bundled = set(re.findall(r"\$\{([A-Z_]+)", (ROOT / "config" / "burgas.yaml").read_text(encoding="utf-8")))
    assert {k for k in env if not k.startswith("BURGAS_")} <= bundled
    for name in list(os.environ):
        if name.startswith("BURGAS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()  # the values validate
    assert settings.ngsi_context == "generated"
    assert settings.service_port == service_port()

    broker = urlsplit(settings.broker_url or "")
    assert (broker.scheme, broker.hostname, broker.port) == ("http", "orion", ORION_PORT)
    # The generated @context documents are hosted on Orion-LD itself (adapter.sync.hosting): Orion-LD
    # does not depend on the adapter service (adapter:8080) for them.
    assert "BURGAS_CONTEXT_BASE_URL" not in env
    assert "adapter" not in (urlsplit(settings.context_base_url).hostname or "")


def test_orion_records_history_in_timescale_and_mintaka_reads_it(compose: dict[str, Any]) -> None:
    services = compose["services"]
    command = services["orion"]["command"]
    assert "-troe" in command and command[command.index("-troeHost") + 1] == "timescale"
    user = command[command.index("-troeUser") + 1]
    timescale = services["timescale"]["environment"]
    mintaka = services["mintaka"]["environment"]
    assert user == timescale["POSTGRES_USER"] == mintaka["DATASOURCES_DEFAULT_USERNAME"]
    # One password, from the environment, for the database, Orion-LD and Mintaka; never on a command line.
    passwords = {timescale["POSTGRES_PASSWORD"], services["orion"]["environment"]["ORIONLD_TROE_PWD"],
                 mintaka["DATASOURCES_DEFAULT_PASSWORD"]}
    assert len(passwords) == 1 and passwords.pop().startswith("${TROE_PASSWORD")
    assert not any("-troePwd" in part for part in command)
    assert mintaka["DATASOURCES_DEFAULT_HOST"] == "timescale" and mintaka["DATASOURCES_DEFAULT_DATABASE"] == "orion"
    assert str(mintaka["MICRONAUT_SERVER_PORT"]) == str(MINTAKA_PORT)
    temporal = urlsplit(adapter_env(compose)["BURGAS_TEMPORAL_URL"])
    assert (temporal.scheme, temporal.hostname, temporal.port) == ("http", "mintaka", MINTAKA_PORT)


def test_orion_is_multi_tenant(compose: dict[str, Any]) -> None:
    orion = compose["services"]["orion"]
    assert orion["environment"]["ORIONLD_MULTI_SERVICE"] == "TRUE"
    command = orion["command"]
    assert command[command.index("-dbhost") + 1] == "mongo"


def test_dockerfile_slim_python_non_root_and_the_real_console_script() -> None:
    instructions = dockerfile()
    keywords = [k for k, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    user = [args for k, args in instructions if k == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")  # nothing runs as root later
    assert any(k == "RUN" and "pip install ." in args for k, args in instructions)

    env: dict[str, str] = {}
    for k, args in instructions:
        if k == "ENV":
            env.update(env_pairs(args))
    fields = {f"BURGAS_{name.upper()}" for name in Settings.model_fields}
    assert {k for k in env if k.startswith("BURGAS_")} <= fields
    assert env["BURGAS_SERVICE_PORT"] == str(service_port())
    assert [args for k, args in instructions if k == "EXPOSE"] == [str(service_port())]
    (health,) = [args for k, args in instructions if k == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{service_port()}/health" in health

    (cmd,) = [json.loads(args) for k, args in instructions if k == "CMD"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts[cmd[0]] == "adapter.cli:app"
    serve = typer.main.get_command(app).commands[cmd[1]]  # type: ignore[attr-defined]
    options = {opt for param in serve.params for opt in param.opts}
    given = [arg for arg in cmd[2:] if arg.startswith("--")]
    assert set(given) <= options
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    config = cmd[cmd.index("--config") + 1]
    copied = {shlex.split(args)[-1].rstrip("/") for k, args in instructions if k == "COPY"}
    workdir = [args for k, args in instructions if k == "WORKDIR"][-1]
    assert config == f"{workdir}/config/burgas.yaml" and "./config" in copied
    assert (ROOT / "config" / "burgas.yaml").is_file()


def test_dockerignore_keeps_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", ".state"} <= ignored
    assert not {"adapter", "data_models", "config", "pyproject.toml", "README.md"} & ignored


def test_make_up_and_down_use_the_compose_file() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^up:\n\t\$\(COMPOSE\) up .*--build", makefile, re.M)
    assert re.search(r"^down:\n\t\$\(COMPOSE\) down", makefile, re.M)


def test_the_adapter_streams_from_the_compose_mosquitto(compose: dict[str, Any],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from adapter.config import MQTTSourceConfig, load_config

    for name, value in adapter_env(compose).items():
        monkeypatch.setenv(name, value)
    streams = [s for s in load_config(ROOT / "config" / "burgas.yaml").sources if isinstance(s, MQTTSourceConfig)]
    assert streams and all(s.enabled for s in streams)
    for stream in streams:
        url = urlsplit(stream.url)
        assert (url.hostname, url.port or 1883) == ("mosquitto", 1883)
    assert "mosquitto" in compose["services"]
