"""Reading scenario files: YAML into the validated model, with errors that name line and field.

The YAML loader differs from PyYAML's safe loader in two ways, both so that
what a bank writes is what the runner reads:

- Numbers with a decimal point stay strings. `amount: 2500000.00` is the
  string "2500000.00", never a float, so no amount is ever rounded.
- Only plain decimal integers are integers. YAML 1.1 reads `10:30` as the
  base-60 integer 630, and this loader reads it as the string "10:30".

Dates such as `2027-01-05` are read as dates, as YAML 1.1 defines them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ledger_bridge.scenarios.errors import ScenarioFileError
from ledger_bridge.scenarios.model import Scenario
from ledger_bridge.scenarios.validation import find_problems

Location = tuple[str | int, ...]

_DECIMAL_INTEGER = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class ScenarioYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader without floats and without base-60 or octal integers."""


ScenarioYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT_TAG, _FLOAT_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
ScenarioYamlLoader.add_implicit_resolver(_INT_TAG, _DECIMAL_INTEGER, list("-+0123456789"))


@dataclass(frozen=True, slots=True)
class ParsedYaml:
    """A YAML document as plain Python values, with the line of each value by its location."""

    data: Any
    lines: Mapping[Location, int]

    def line_of(self, location: Iterable[str | int]) -> int | None:
        """Return the line of the deepest part of `location` that the document contains.

        Parts that the document lacks, such as the tag Pydantic adds for a
        union member, are skipped, so an error about a missing field points
        at the mapping that should hold it.
        """
        found: Location = ()
        for part in location:
            candidate = (*found, part)
            if candidate in self.lines:
                found = candidate
        return self.lines.get(found)


def parse_yaml(text: str, path: Path) -> ParsedYaml:
    """Parse one YAML document into plain values and a map from location to line number."""
    try:
        root = yaml.compose(text, Loader=ScenarioYamlLoader)
    except yaml.YAMLError as error:
        raise ScenarioFileError(path, [f"not valid YAML: {error}"]) from error
    if root is None:
        raise ScenarioFileError(path, ["the file is empty; write a mapping with 'actions'"])
    lines: dict[Location, int] = {}
    constructor = ScenarioYamlLoader("")
    data = _construct(root, (), lines, constructor, path)
    return ParsedYaml(data=data, lines=lines)


def _construct(
    node: yaml.Node,
    location: Location,
    lines: dict[Location, int],
    constructor: ScenarioYamlLoader,
    path: Path,
) -> Any:
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node)
            if key in result:
                line = key_node.start_mark.line + 1
                raise ScenarioFileError(path, [f"line {line}: key {key!r} appears twice"])
            result[key] = _construct(value_node, (*location, key), lines, constructor, path)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, (*location, index), lines, constructor, path)
            for index, item in enumerate(node.value)
        ]
    return constructor.construct_object(node)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; raise ScenarioFileError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioFileError(path, [f"cannot be read: {error.strerror}"]) from error
    return parse_scenario(text, path)


def parse_scenario(text: str, path: Path) -> Scenario:
    """Validate scenario YAML text; `path` names the file in messages and the default name."""
    parsed = parse_yaml(text, path)
    if not isinstance(parsed.data, dict):
        raise ScenarioFileError(path, ["the top level must be a mapping with 'actions'"])
    data = {"name": path.stem, **parsed.data}
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioFileError(path, _describe_errors(error, parsed)) from error
    problems = [
        _describe(location, message, parsed) for location, message in find_problems(scenario)
    ]
    if problems:
        raise ScenarioFileError(path, problems)
    return scenario


def _describe_errors(error: ValidationError, parsed: ParsedYaml) -> list[str]:
    return [
        _describe(item["loc"], item["msg"].removeprefix("Value error, "), parsed)
        for item in error.errors(include_url=False)
    ]


def _describe(location: Iterable[str | int], message: str, parsed: ParsedYaml) -> str:
    location = tuple(location)
    line = parsed.line_of(location)
    where = f"line {line}: " if line is not None else ""
    return f"{where}{_field_path(location, parsed) or 'the file'}: {message}"


def _field_path(location: Iterable[str | int], parsed: ParsedYaml) -> str:
    """Render a location as `actions[3].amount`, leaving out union tags the file lacks."""
    text = ""
    found: Location = ()
    for part in location:
        candidate = (*found, part)
        in_file = candidate in parsed.lines
        if isinstance(part, int):
            text += f"[{part}]"
        elif in_file or not _is_union_tag(part):
            text += f".{part}" if text else str(part)
        if in_file:
            found = candidate
    return text


def _is_union_tag(part: str) -> bool:
    # Pydantic names the member of a tagged union by its tag, and a plain union's
    # member by its type, such as "function-after[...]" or "str".
    return part in _ACTION_TAGS or "[" in part or part in {"str", "int", "date", "list"}


_ACTION_TAGS = frozenset(Scenario.action_tags())
