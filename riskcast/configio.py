"""One place to find, read and validate configuration files, with errors that name the field.

Every typed YAML file (features, labels, training, simulator parameters) goes through here, so
a bad file always gives the same kind of message: ``<file>: <where>: <what is wrong>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from riskcast.errors import ConfigError
from riskcast.settings import read_settings

CONFIG_DIR_ENV = "RISKCAST_CONFIG_DIR"
M = TypeVar("M", bound=BaseModel)


def config_dir() -> Path | None:
    """``RISKCAST_CONFIG_DIR`` as the environment holds it now (kernel settings), or None."""
    return read_settings().config_dir


def config_candidates(filename: str) -> list[Path]:
    """Where a config file is looked for, in order, so a clean clone works from any directory:
    ``$RISKCAST_CONFIG_DIR``, ``./configs``, then ``configs/`` at the repository root."""
    candidates: list[Path] = []
    chosen = config_dir()
    if chosen is not None:
        candidates.append(chosen / filename)
    candidates.append(Path.cwd() / "configs" / filename)
    candidates.append(Path(__file__).resolve().parents[1] / "configs" / filename)
    return candidates


def find_config(filename: str) -> Path:
    """The first of `config_candidates` that exists; a ``RISKCAST_CONFIG_DIR`` without the file
    is an error (not a silent fall-back to another folder's file)."""
    chosen = config_dir()
    if chosen is not None and not (chosen / filename).is_file():
        raise ConfigError(f"{CONFIG_DIR_ENV}={chosen} has no {filename}")
    candidates = config_candidates(filename)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"no {filename} found (looked in {looked}); pass --config")


def read_yaml(path: Path, what: str = "configuration") -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc


def describe_validation_error(exc: ValidationError, raw: Any = None) -> str:
    """Pydantic's locations made readable: ``features[3] (name).aggregation: message``."""
    problems = []
    for err in exc.errors():
        parts: list[str] = []
        node: Any = raw
        for item in err["loc"]:
            if isinstance(item, int):
                label = f"[{item}]"
                if isinstance(node, list) and item < len(node):
                    node = node[item]
                    if isinstance(node, dict) and isinstance(node.get("name"), str):
                        label += f" ({node['name']})"
                else:
                    node = None
                parts.append(label)
            else:
                if not isinstance(item, str) or "[" in item:  # tagged-union branch names
                    continue
                parts.append(("." if parts else "") + item)
                node = node.get(item) if isinstance(node, dict) else None
        where = "".join(parts) or "<root>"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def validate_model(model: type[M], raw: Any, source: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc, raw)}") from exc


def load_yaml_model(model: type[M], path: Path, what: str = "configuration") -> M:
    """Read ``path`` and validate it into ``model``; every failure is a ConfigError naming it."""
    return validate_model(model, read_yaml(path, what), str(path))
