"""Reading and checking template files, and the registry of the shipped templates."""

from __future__ import annotations

import difflib
import functools
import re
import string
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, cast

import yaml

from morningstar.errors import ConfigError, UserInputError
from morningstar.llm.prompts._template import INPUT_TYPES, InputSpec, InputType, PromptTemplate
from morningstar.llm.schemas import SCHEMAS

__all__ = ["list_templates", "load_template", "load_template_file", "parse_template"]

_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_FILE = re.compile(r"^(?P<id>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.yaml$")
_TOP_KEYS = ("id", "version", "description", "schema", "inputs", "system", "user", "failure")
_INPUT_KEYS = ("type", "required", "description", "choices", "minimum", "maximum", "block")


class _Checker:
    """Builds one-line :class:`ConfigError` s naming the file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, problem: str, hint: str | None = None) -> ConfigError:
        where = f"{self.source}: {key}" if key else self.source
        return ConfigError(problem, where=where, hint=hint or "see docs/PROMPTS_GUIDE.md")

    def keys(self, data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                extra = (
                    f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(allowed)}"
                )
                raise self.error(f"{path}{key}", f"unknown key{extra}")

    def text(
        self, data: Mapping[str, Any], key: str, path: str = "", *, empty: bool = False
    ) -> str:
        value = data.get(key)
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.error(
                f"{path}{key}", "must be a non-empty string" if not empty else "must be a string"
            )
        return value


def parse_template(text: str, *, source: str) -> PromptTemplate:
    """Parse and check one template file's YAML text.

    Args:
        text: the YAML.
        source: the file name, used in messages and to check it matches ``<id>.v<version>.yaml``
            (the check is skipped when ``source`` has another form, e.g. ``<string>``).

    Raises:
        ConfigError: one line naming the file and the key path of the first problem.
    """
    check = _Checker(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise check.error("", f"not valid YAML{at}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise check.error("", "must be a mapping of id, version, description, schema, inputs, ...")
    check.keys(data, _TOP_KEYS, "")
    for key in _TOP_KEYS:
        if key not in data:
            raise check.error(key, "is missing")
    template_id = check.text(data, "id")
    if not _ID.match(template_id):
        raise check.error("id", f"{template_id!r} must be lower_snake_case")
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise check.error("version", f"must be an integer >= 1, got {version!r}")
    name = Path(source).name
    match = _FILE.match(name)
    if match and (match["id"] != template_id or int(match["version"]) != version):
        raise check.error(
            "",
            f"the file name {name!r} does not match id {template_id!r} version {version}",
            hint=f"name it {template_id}.v{version}.yaml",
        )
    schema_name = data["schema"]
    if schema_name is not None and schema_name not in SCHEMAS:
        raise check.error("schema", f"unknown schema {schema_name!r}; known: {', '.join(SCHEMAS)}")
    inputs = _parse_inputs(check, data["inputs"])
    system = check.text(data, "system", empty=True)
    user = check.text(data, "user")
    for key, body in (("system", system), ("user", user)):
        _check_placeholders(check, key, body, set(inputs))
    return PromptTemplate(
        id=template_id,
        version=version,
        description=check.text(data, "description"),
        schema_name=schema_name,
        schema=SCHEMAS[schema_name] if schema_name is not None else None,
        inputs=inputs,
        system=system,
        user=user,
        failure=check.text(data, "failure"),
        source=source,
    )


def _check_placeholders(check: _Checker, key: str, body: str, names: set[str]) -> None:
    template = string.Template(body)
    if not template.is_valid():
        raise check.error(key, "has an invalid placeholder (write $$ for a dollar sign)")
    for name in template.get_identifiers():
        if name not in names:
            close = difflib.get_close_matches(name, sorted(names), n=1)
            extra = f"; did you mean ${close[0]}?" if close else ""
            raise check.error(key, f"uses ${name}, which is not a declared input{extra}")


def _parse_inputs(check: _Checker, raw: Any) -> dict[str, InputSpec]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise check.error(
            "inputs", "must be a mapping of input name to {type, required, description}"
        )
    specs: dict[str, InputSpec] = {}
    for name, body in raw.items():
        path = f"inputs.{name}."
        if not isinstance(name, str) or not name.isidentifier():
            raise check.error(f"inputs.{name}", "must be a valid placeholder name")
        if not isinstance(body, dict):
            raise check.error(
                f"inputs.{name}", "must be a mapping with type, required, description"
            )
        check.keys(body, _INPUT_KEYS, path)
        kind = body.get("type")
        if kind not in INPUT_TYPES:
            raise check.error(
                f"{path}type", f"must be one of {', '.join(INPUT_TYPES)}, got {kind!r}"
            )
        required = body.get("required")
        if not isinstance(required, bool):
            raise check.error(f"{path}required", "must be true or false")
        spec = InputSpec(
            name=name,
            type=cast(InputType, kind),
            required=required,
            description=check.text(body, "description", path),
            choices=_choices(check, body.get("choices"), kind, path),
            minimum=_bound(check, body, "minimum", kind, path),
            maximum=_bound(check, body, "maximum", kind, path),
            block=_block(check, body.get("block"), required, kind, path),
        )
        specs[name] = spec
    return specs


def _choices(check: _Checker, raw: Any, kind: str, path: str) -> tuple[str | int, ...] | None:
    if raw is None:
        return None
    wanted = {"str": str, "int": int}.get(kind)
    if wanted is None:
        raise check.error(f"{path}choices", "only str and int inputs take choices")
    if not isinstance(raw, list) or not raw:
        raise check.error(f"{path}choices", "must be a non-empty list")
    for item in raw:
        if isinstance(item, bool) or not isinstance(item, wanted):
            raise check.error(f"{path}choices", f"{item!r} is not a {kind}")
    return tuple(raw)


def _bound(
    check: _Checker, body: Mapping[str, Any], key: str, kind: str, path: str
) -> float | None:
    raw = body.get(key)
    if raw is None:
        return None
    if kind not in {"int", "float"}:
        raise check.error(f"{path}{key}", "only int and float inputs take bounds")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise check.error(f"{path}{key}", f"must be a number, got {raw!r}")
    return float(raw)


def _block(check: _Checker, raw: Any, required: bool, kind: str, path: str) -> str | None:
    if raw is None:
        return None
    if required:
        raise check.error(f"{path}block", "only optional inputs take a block")
    if not isinstance(raw, str) or not string.Template(raw).is_valid():
        raise check.error(f"{path}block", "must be a string.Template text ($value, $key...)")
    names = set(string.Template(raw).get_identifiers())
    if kind != "mapping" and names - {"value"}:
        raise check.error(f"{path}block", "may only use $value (only mapping inputs have keys)")
    return raw


def load_template_file(path: Path) -> PromptTemplate:
    """Read and check one template file (outside the shipped set: tests, experiments).

    Raises:
        ConfigError: the file cannot be read or is not a valid template.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read prompt template: {exc.strerror or type(exc).__name__}", where=str(path)
        ) from exc
    return parse_template(text, source=str(path))


@functools.cache
def _registry() -> dict[str, dict[int, PromptTemplate]]:
    found: dict[str, dict[int, PromptTemplate]] = {}
    folder = resources.files("morningstar.llm.prompts").joinpath("templates")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        if not _FILE.match(entry.name):
            raise ConfigError(
                "a prompt template file must be named <id>.v<version>.yaml",
                where=f"llm/prompts/templates/{entry.name}",
            )
        template = parse_template(
            entry.read_text(encoding="utf-8"), source=f"llm/prompts/templates/{entry.name}"
        )
        found.setdefault(template.id, {})[template.version] = template
    return found


def load_template(template_id: str, version: int | None = None) -> PromptTemplate:
    """Return a shipped template: ``version``, or the latest when None (cached).

    Raises:
        UserInputError: unknown id (with a did-you-mean) or version (with the known ones).
    """
    registry = _registry()
    versions = registry.get(template_id)
    if versions is None:
        known = sorted(registry)
        close = difflib.get_close_matches(template_id, known, n=1)
        extra = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
        raise UserInputError(f"unknown prompt template {template_id!r} ({extra})")
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        known_versions = ", ".join(str(v) for v in sorted(versions))
        raise UserInputError(
            f"prompt template {template_id!r} has no version {version} (known: {known_versions})"
        )
    return versions[version]


def list_templates() -> list[PromptTemplate]:
    """Every shipped template, every version, sorted by id then version."""
    return [t for _, versions in sorted(_registry().items()) for _, t in sorted(versions.items())]
