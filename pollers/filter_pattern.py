"""EventBridge event-pattern grammar as Lambda event filtering applies it: compile one pattern, match one record.

Grammar and error reasons follow aws/event-ruler (`JsonRuleCompiler`), the engine behind EventBridge patterns;
matching follows the Lambda DG "Lambda event filtering" page, which overrides EventBridge on one point:
exact number values compare by their JSON text, so 300, 300.0 and 3.0e2 are different values.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["JsonNumber", "Leaf", "Node", "PatternError", "compile_pattern", "loads", "match"]


class PatternError(ValueError):
    """A pattern that AWS would refuse; the text is event-ruler's reason."""


@dataclass(frozen=True)
class JsonNumber:
    """A JSON number kept as written, so exact matching can compare representations."""

    text: str

    def __float__(self) -> float:
        return float(self.text)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def loads(text: str | bytes) -> Any:
    """json.loads that keeps numbers as JsonNumber and refuses NaN/Infinity."""
    return json.loads(text, parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=_reject_constant)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Rule:
    """One entry of a leaf array: an exact value or a single-operator object."""

    op: str
    arg: Any
    test: Callable[[Any], bool] = field(compare=False, repr=False)
    if_absent: bool = False  # only {"exists": false} matches a field with no leaf value


@dataclass(frozen=True)
class Leaf:
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Node:
    fields: tuple[tuple[str, Node | Leaf], ...]
    ors: tuple[tuple[Node, ...], ...] = ()  # each "$or" group needs one branch to match


# ---------------------------------------------------------------- compiling


def compile_pattern(pattern: Any) -> Node:
    if not isinstance(pattern, dict):
        raise PatternError("Filter is not an object")
    return _compile_object(pattern)


def _compile_object(obj: dict[str, Any]) -> Node:
    if not obj:
        raise PatternError("Empty objects are not allowed")
    fields: list[tuple[str, Node | Leaf]] = []
    ors: list[tuple[Node, ...]] = []
    for key, value in obj.items():
        if key == "$or":
            ors.append(_compile_or(value))
        elif isinstance(value, dict):
            fields.append((key, _compile_object(value)))
        elif isinstance(value, list):
            if not value:
                raise PatternError("Empty arrays are not allowed")
            fields.append((key, Leaf(tuple(_compile_rule(v) for v in value))))
        else:
            raise PatternError(f'"{key}" must be an object or an array')
    return Node(tuple(fields), tuple(ors))


def _compile_or(value: Any) -> tuple[Node, ...]:
    if not isinstance(value, list):
        raise PatternError("It must be an Array followed with $or.")
    if not all(isinstance(branch, dict) for branch in value):
        raise PatternError("Only JSON object is allowed in array of $or relationship.")
    if len(value) < 2:
        raise PatternError("There must have at least 2 Objects in $or relationship.")
    return tuple(_compile_object(branch) for branch in value)


def _compile_rule(value: Any) -> Rule:
    if value is None or isinstance(value, (str, bool, JsonNumber)):
        return Rule("equals", value, lambda leaf: _same_value(value, leaf))
    if not isinstance(value, dict):
        raise PatternError("Match value must be String, number, true, false, or null")
    if not value:
        raise PatternError("Match expression name not found")
    if len(value) > 1:
        raise PatternError("Only one key allowed in match expression")
    [(op, arg)] = value.items()
    builder = _OPERATORS.get(op)
    if builder is None:
        raise PatternError(f"Unrecognized match type {op}")
    return builder(arg)


def _string_arg(op: str, arg: Any) -> str:
    if not isinstance(arg, str):
        raise PatternError(f"{op} match pattern must be a string")
    return arg


def _affix(op: str, arg: Any) -> Rule:
    """prefix/suffix, optionally wrapped in equals-ignore-case."""
    fold = False
    if isinstance(arg, dict) and list(arg) == ["equals-ignore-case"]:
        fold, arg = True, arg["equals-ignore-case"]
    text = _string_arg(op, arg)
    check = str.startswith if op == "prefix" else str.endswith
    if fold:
        needle = text.casefold()
        return Rule(op, arg, lambda leaf: isinstance(leaf, str) and check(leaf.casefold(), needle))
    return Rule(op, arg, lambda leaf: isinstance(leaf, str) and check(leaf, text))


def _equals_ignore_case(arg: Any) -> Rule:
    needle = _string_arg("equals-ignore-case", arg).casefold()
    return Rule("equals-ignore-case", arg, lambda leaf: isinstance(leaf, str) and leaf.casefold() == needle)


def _exists(arg: Any) -> Rule:
    if not isinstance(arg, bool):
        raise PatternError("exists match pattern must be either true or false.")
    return Rule("exists", arg, lambda leaf: arg, if_absent=not arg)


def _wildcard_regex(text: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "*\\":
                raise PatternError(f"Invalid escape character at pos {i + 1}")
            out.append(re.escape(text[i + 1]))
            i += 2
            continue
        if ch == "*":
            if i + 1 < len(text) and text[i + 1] == "*":
                raise PatternError(f"Consecutive wildcard characters at pos {i + 1}")
            out.append(".*")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _wildcard(arg: Any) -> Rule:
    regex = _wildcard_regex(_string_arg("wildcard", arg))
    return Rule("wildcard", arg, lambda leaf: isinstance(leaf, str) and regex.fullmatch(leaf) is not None)


def _cidr(arg: Any) -> Rule:
    text = _string_arg("prefix", arg)  # event-ruler reports a non-string cidr with the prefix wording
    if text.count("/") != 1:
        raise PatternError("Malformed CIDR, one '/' required")
    address, bits = text.split("/")
    if not bits.isdigit():
        raise PatternError("Malformed CIDR, mask bits must be an integer")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise PatternError(f"Nonstandard IP address: {address}") from None

    def test(leaf: Any) -> bool:
        try:
            return isinstance(leaf, str) and ipaddress.ip_address(leaf) in network
        except ValueError:
            return False

    return Rule("cidr", arg, test)


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "=": float.__eq__, ">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
}


def _numeric_operand(op: str, operand: Any) -> float:
    if not isinstance(operand, JsonNumber):
        raise PatternError(f"Value of {'equals' if op == '=' else op} must be numeric")
    return float(operand)


def _numeric(arg: Any) -> Rule:
    """["=", n] | ["<"|"<="|">"|">=", n] | [">"|">=", low, "<"|"<=", high], checked in event-ruler's order."""
    if not isinstance(arg, list):
        raise PatternError("Value of numeric must be an array.")
    if not arg or not isinstance(arg[0], str):
        raise PatternError(f"Invalid member in numeric match: {_show(arg[0]) if arg else ']'}")
    op = arg[0]
    if op not in _COMPARE:
        raise PatternError(f"Unrecognized numeric range operator: {op}")
    terms = [(_COMPARE[op], _numeric_operand(op, arg[1] if len(arg) > 1 else None))]
    if len(arg) > 2:
        if op not in (">", ">="):
            raise PatternError("Too many elements in numeric expression")
        top_op = arg[2]
        if not isinstance(top_op, str):
            raise PatternError(f"Bad value in numeric range: {_show(top_op)}")
        if top_op not in ("<", "<="):
            raise PatternError(f"Bad numeric range operator: {top_op}")
        top = _numeric_operand(top_op, arg[3] if len(arg) > 3 else None)
        if len(arg) > 4:
            raise PatternError("Too many terms in numeric range expression")
        if top <= terms[0][1]:
            raise PatternError("Bottom must be less than top")
        terms.append((_COMPARE[top_op], top))

    def test(leaf: Any) -> bool:
        number = _as_float(leaf)
        return number is not None and all(cmp(number, bound) for cmp, bound in terms)

    return Rule("numeric", arg, test)


def _anything_but(arg: Any) -> Rule:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise PatternError("Only one key allowed in match expression")
        [(op, inner)] = arg.items()
        if op in ("prefix", "suffix"):
            if not isinstance(inner, str):
                raise PatternError("prefix/suffix match pattern must be a string")
            if not inner:
                raise PatternError("Null prefix/suffix not allowed")
            positive = _affix(op, inner)
        elif op in ("equals-ignore-case", "wildcard"):
            values = inner if isinstance(inner, list) else [inner]
            if not values or not all(isinstance(v, str) for v in values):
                raise PatternError(f"Inside anything-but/{op} list, number|start|null|boolean is not supported.")
            build = _equals_ignore_case if op == "equals-ignore-case" else _wildcard
            rules = [build(v) for v in values]
            return Rule("anything-but", arg, _none_of(rules))
        else:
            raise PatternError(f"Unsupported anything-but pattern: {op}")
        return Rule("anything-but", arg, _none_of([positive]))
    values = arg if isinstance(arg, list) else [arg]
    if not isinstance(arg, (list, str, JsonNumber)):
        raise PatternError("Value of anything-but must be an array or single string/number value.")
    if not all(isinstance(v, (str, JsonNumber)) for v in values):
        raise PatternError("Inside anything but list, start|null|boolean is not supported.")
    numbers = {float(v) for v in values if isinstance(v, JsonNumber)}
    strings = {v for v in values if isinstance(v, str)}
    if not values or (numbers and strings):
        raise PatternError(
            "Inside anything but list, either all values are number or string, mixed type is not supported"
        )
    # Numbers compare by value (event-ruler's ComparableNumber). A string list applying only to strings and a
    # number list only to numbers is our reading of event-ruler, not confirmed against AWS.
    if numbers:
        return Rule("anything-but", arg, lambda leaf: (n := _as_float(leaf)) is not None and n not in numbers)
    return Rule("anything-but", arg, lambda leaf: isinstance(leaf, str) and leaf not in strings)


def _none_of(rules: list[Rule]) -> Callable[[Any], bool]:
    return lambda leaf: isinstance(leaf, str) and not any(rule.test(leaf) for rule in rules)


_OPERATORS: dict[str, Callable[[Any], Rule]] = {
    "prefix": lambda arg: _affix("prefix", arg),
    "suffix": lambda arg: _affix("suffix", arg),
    "equals-ignore-case": _equals_ignore_case,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": _exists,
    "wildcard": _wildcard,
    "cidr": _cidr,
}


def _show(value: Any) -> str:
    return value.text if isinstance(value, JsonNumber) else json.dumps(value)


# ---------------------------------------------------------------- matching


def _number_text(value: Any) -> str | None:
    if isinstance(value, JsonNumber):
        return value.text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return None


def _as_float(value: Any) -> float | None:
    text = _number_text(value)
    return None if text is None else float(text)


def _same_value(expected: Any, leaf: Any) -> bool:
    if isinstance(expected, JsonNumber):
        return _number_text(leaf) == expected.text
    if expected is None or isinstance(expected, bool):
        return leaf is expected
    return isinstance(leaf, str) and leaf == expected


def _flatten(values: list[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from _flatten(value)
        else:
            yield value


def _match_leaf(leaf: Leaf, value: Any) -> bool:
    # Objects are intermediate nodes, not leaves: {"exists": false} matches them (EventBridge "Exists matching").
    if value is MISSING or isinstance(value, dict):
        leaves: list[Any] = []
    elif isinstance(value, list):
        leaves = [v for v in _flatten(value) if not isinstance(v, dict)]
    else:
        leaves = [value]
    if not leaves:
        return any(rule.if_absent for rule in leaf.rules)
    return any(rule.test(v) for rule in leaf.rules for v in leaves)


def match(node: Node, value: Any) -> bool:
    """True if `value` (a record or part of one) satisfies the compiled pattern `node`."""
    if isinstance(value, list):
        elements = list(_flatten(value))
        # Each array element is tried as a whole, so keys ANDed in one pattern object must hold in one element.
        return any(match(node, e) for e in elements) if elements else match(node, MISSING)
    if value is not MISSING and not isinstance(value, dict):
        return False  # a scalar where the pattern expects an object: e.g. a plain-string SQS body
    for key, child in node.fields:
        found = value.get(key, MISSING) if value is not MISSING else MISSING
        if not (_match_leaf(child, found) if isinstance(child, Leaf) else match(child, found)):
            return False
    return all(any(match(branch, value) for branch in group) for group in node.ors)
