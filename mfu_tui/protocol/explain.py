"""Say, in the protocol's own words, why msgspec refused a frame.

msgspec decodes and validates a frame in one fast pass, but its errors are
English sentences whose wording changes between releases. So the codec keeps
msgspec for the fast path only, and when a frame is refused it comes here:
the text is parsed again as plain JSON and walked against the frame's type
(``msgspec.inspect`` describes the fields, their types and their bounds), and
the first field that breaks a rule is named, for example
``'chatId' must be a string or null, got int``.

Nothing here reads msgspec's messages. Where the walk finds no problem the
refusal came from a check of our own (a ``__post_init__`` raising a
``ProtocolError``), which is kept, kind and text; failing that, the message
says less rather than guess.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from typing import Any

import msgspec
from msgspec import inspect as types

from mfu_tui.protocol.errors import ProtocolError, UnknownFrameType

#: JSON's own white space (``str.strip()`` would take more).
_JSON_SPACE = " \t\n\r"
#: How much of an unknown ``type`` value is echoed back.
_QUOTE_LIMIT = 40


def explain(data: bytes | str, frame_type: Any, error: Exception) -> ProtocolError:
    """Why ``data`` is not a valid ``frame_type``, given that msgspec raised ``error``."""
    if isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return ProtocolError("not valid JSON: the text is not UTF-8")
    try:
        value = _parse_json(text)
    except _NotJson as not_json:
        return ProtocolError(f"not valid JSON: {not_json}")
    info = types.type_info(frame_type)
    problem = _check(value, info, path="", frame=True)
    if problem is not None:
        return (UnknownFrameType if _unknown_type(value, info) else ProtocolError)(problem)
    return _own_check(error) or ProtocolError("the frame does not follow the protocol")


def _unknown_type(value: Any, info: types.Type) -> bool:
    """Whether ``value`` is an object whose type, a string, names none of the frames of ``info``."""
    if not isinstance(info, types.UnionType) or not isinstance(value, dict):
        return False
    members = [m for m in info.types if isinstance(m, types.StructType) and m.tag_field]
    if not members:
        return False
    tag = value.get(members[0].tag_field)
    return isinstance(tag, str) and tag not in {member.tag for member in members}


def explain_value(value: Any, kind: Any, error: msgspec.ValidationError, root: str) -> ProtocolError:
    """Why an already decoded ``value`` (named ``root``) is not a valid ``kind``."""
    problem = _check(value, types.type_info(kind), path=root, frame=False)
    if problem is not None:
        return ProtocolError(problem)
    return _own_check(error) or ProtocolError(f"'{root}' does not follow the protocol")


# --- JSON syntax --------------------------------------------------------------


class _NotJson(Exception):
    """The text is not JSON; the message says where."""


def _reject_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _parse_int(digits: str) -> int | float:
    # Python refuses to convert integers of thousands of digits; as a number
    # they are out of any range the frames accept, which the walk then says.
    try:
        return int(digits)
    except ValueError:
        return math.inf


_json = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)


def _parse_json(text: str) -> Any:
    """Parse ``text`` as exactly one JSON value, or raise ``_NotJson``."""
    start = len(text) - len(text.lstrip(_JSON_SPACE))
    try:
        value, end = _json.raw_decode(text, start)
    except RecursionError:
        raise _NotJson("arrays or objects are nested too deeply") from None
    except json.JSONDecodeError as error:
        if error.pos >= len(text.rstrip(_JSON_SPACE)):
            raise _NotJson("the text ends too early") from None
        raise _NotJson(f"cannot be read from byte {_byte_offset(text, error.pos)}") from None
    if text[end:].strip(_JSON_SPACE):
        after = len(text) - len(text[end:].lstrip(_JSON_SPACE))
        raise _NotJson(f"more text after the frame, from byte {_byte_offset(text, after)}")
    return value


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


# --- Types --------------------------------------------------------------------


def _check(value: Any, info: types.Type, path: str, frame: bool = False) -> str | None:
    """The first rule of ``info`` that ``value`` (found at ``path``) breaks, or None."""
    if isinstance(info, types.AnyType):
        return None
    if isinstance(info, types.UnionType):
        return _check_union(value, info, path, frame)
    if isinstance(info, (types.IntType, types.FloatType)) and _huge(value):
        return f"'{path}' is out of range"
    if isinstance(info, types.StructType):
        if not isinstance(value, dict):
            return _wrong_kind(value, info, path, frame)
        return _check_fields(value, info, path)
    if not _is_kind(value, info):
        return _wrong_kind(value, info, path, frame)
    if isinstance(info, types.ListType):
        for index, item in enumerate(value):
            if problem := _check(item, info.item_type, f"{path}[{index}]"):
                return problem
    if isinstance(info, types.BytesType) and not _is_base64(value):
        return f"'{path}' must be base64 (standard alphabet, padded with '=', no spaces)"
    return _check_bounds(value, info, path)


def _is_base64(text: str) -> bool:
    """Whether ``text`` is base64 as msgspec reads it (the standard alphabet, padded, nothing else)."""
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _check_union(value: Any, info: types.UnionType, path: str, frame: bool) -> str | None:
    tagged = [member for member in info.types if isinstance(member, types.StructType) and member.tag_field]
    if tagged and isinstance(value, dict):
        return _check_tagged(value, tagged, path)
    # A value of a member's kind is judged by that member's rules (its bounds,
    # its fields); a value of no member's kind is named with all of them.
    for member in info.types:
        if _is_kind(value, member):
            return _check(value, member, path)
    return _wrong_kind(value, info, path, frame)


def _check_tagged(value: dict[str, Any], members: list[types.StructType], path: str) -> str | None:
    tag_field = members[0].tag_field
    if tag_field not in value:
        return "frame has no 'type'" if not path else f"'{tag_field}' is required in '{path}'"
    tag = value[tag_field]
    if not isinstance(tag, str):
        return f"'{_join(path, str(tag_field))}' must be a string"
    for member in members:
        if member.tag == tag:
            return _check_fields(value, member, path)
    return f"unknown frame type {_quote(tag)}"


def _check_fields(value: dict[str, Any], info: types.StructType, path: str) -> str | None:
    for field in info.fields:
        if field.encode_name not in value:
            if field.required:
                return f"'{field.encode_name}' is required" + (f" in '{path}'" if path else "")
            continue
        if problem := _check(value[field.encode_name], field.type, _join(path, field.encode_name)):
            return problem
    return None


def _is_kind(value: Any, info: types.Type) -> bool:
    """Whether ``value`` is of the JSON kind ``info`` takes, bounds aside."""
    if isinstance(info, types.AnyType):
        return True
    if isinstance(info, types.UnionType):
        return any(_is_kind(value, member) for member in info.types)
    if isinstance(info, types.StrType):
        return isinstance(value, str)
    if isinstance(info, types.IntType):
        return (isinstance(value, int) and not isinstance(value, bool)) or _huge(value)
    if isinstance(info, types.FloatType):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(info, types.BoolType):
        return isinstance(value, bool)
    if isinstance(info, types.NoneType):
        return value is None
    if isinstance(info, types.ListType):
        return isinstance(value, list)
    if isinstance(info, types.StructType):
        return isinstance(value, dict)
    if isinstance(info, (types.DateTimeType, types.BytesType)):
        return isinstance(value, str)
    if isinstance(info, types.LiteralType):
        return any(type(value) is type(choice) for choice in info.values)
    return True  # a kind the frames do not use: msgspec is the judge, say less


def _huge(value: Any) -> bool:
    """A number JSON allows but no frame does (``1e999``, ten thousand digits)."""
    return isinstance(value, float) and not math.isfinite(value)


def _check_bounds(value: Any, info: types.Type, path: str) -> str | None:
    """The bound ``value`` breaks, its kind being right."""
    if isinstance(info, (types.StrType, types.ListType, types.IntType, types.FloatType)):
        for bound, broken in _bounds(value, info):
            if broken:
                return f"'{path}' must be {_kind_name(info)} {bound}"
    if isinstance(info, types.LiteralType) and value not in info.values:
        return f"'{path}' must be {_kind_name(info)}"
    if isinstance(info, types.DateTimeType):
        try:
            msgspec.convert(value, datetime)
        except msgspec.ValidationError:
            return f"'{path}' must be {_kind_name(info)}"
    return None


def _bounds(value: Any, info: Any) -> list[tuple[str, bool]]:
    """Each bound of ``info`` in words, with whether ``value`` breaks it."""
    if isinstance(info, (types.StrType, types.ListType)):
        size = len(value)
        return [
            (f"of length >= {info.min_length}", info.min_length is not None and size < info.min_length),
            (f"of length <= {info.max_length}", info.max_length is not None and size > info.max_length),
        ]
    return [
        (f">= {info.ge}", info.ge is not None and value < info.ge),
        (f"> {info.gt}", info.gt is not None and value <= info.gt),
        (f"<= {info.le}", info.le is not None and value > info.le),
        (f"< {info.lt}", info.lt is not None and value >= info.lt),
    ]


def _wrong_kind(value: Any, info: types.Type, path: str, frame: bool) -> str:
    got = _json_kind(value)
    if frame and not path:
        return f"a frame must be a JSON object, got {got}"
    return f"'{path}' must be {_kind_name(info)}, got {got}"


def _kind_name(info: types.Type) -> str:
    """``str | None`` -> ``a string or null``."""
    if isinstance(info, types.UnionType):
        return " or ".join(dict.fromkeys(_kind_name(member) for member in info.types))
    if isinstance(info, types.LiteralType):
        return "one of " + ", ".join(_quote(choice) for choice in info.values)
    names: list[tuple[type, str]] = [
        (types.StrType, "a string"),
        (types.IntType, "an integer"),
        (types.FloatType, "a number"),
        (types.BoolType, "a boolean"),
        (types.NoneType, "null"),
        (types.ListType, "an array"),
        (types.StructType, "an object"),
        (types.DateTimeType, "a date-time string (RFC 3339)"),
        (types.BytesType, "a base64 string"),
    ]
    return next((name for kind, name in names if isinstance(info, kind)), "something else")


def _json_kind(value: Any) -> str:
    """The JSON kind of a parsed value, as peers know it (``str``, ``array``...)."""
    if value is None:
        return "null"
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _own_check(error: Exception) -> ProtocolError | None:
    """The error of a check of ours (a ``__post_init__``) that refused the frame."""
    cause = error.__cause__
    return cause if isinstance(cause, ProtocolError) else None


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 4] + "...'"
