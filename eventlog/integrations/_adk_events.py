"""Stored ADK events back into `Event` objects without re-running pydantic on each field.

`Event.model_validate` costs about 85 us an event, mostly outside pydantic-core:
google-genai's `Part` has a custom ``__init__`` that validates every part twice,
every genai model runs a Python ``_check_field_type_mismatches`` hook, and
`Event` runs ``_accept_convenience_kwargs``. On a stored event these are no-ops:
the payload is ``model_dump(mode="json")`` of an `Event` that was validated when it
was appended, so its keys are field names, its nested values dicts, and none of
the convenience keys (``message``, ``state``, ...) occur.

`decode_event` rebuilds such a payload with ``model_construct`` field by field,
converting only what JSON changed (floats written as ints, enums as their values,
sets as lists). Anything it is not sure of falls back to ``model_validate`` for
that one object: a key that is not a field name, a value of an unexpected JSON
type, a field type it does not convert (bytes, unions of several types, ...), or
a model with validators or a custom ``__init__`` it does not know to be no-ops on
stored data. tests/integrations/test_adk_events.py compares both paths.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from typing import Any, Final

import pydantic
from google.adk.events.event import Event
from google.genai import types as genai_types

__all__ = ["decode_event"]


class _Fallback(Exception):
    """This value needs pydantic's full validation."""


_Convert = Callable[[Any], Any]

# Hooks that only reshape caller input (see the module docstring) and a custom
# __init__ that only normalizes a positional argument into the same fields.
_NO_OP_MODEL_VALIDATORS: Final = frozenset(
    {"_check_field_type_mismatches", "_accept_convenience_kwargs"}
)
_NO_OP_CUSTOM_INIT: Final[frozenset[type]] = frozenset({genai_types.Part})
# Defaults shared by every instance as model_validate shares them (never mutated).
_IMMUTABLE: Final = frozenset({type(None), str, int, float, bool, bytes, tuple, frozenset})


def _identity(value: Any) -> Any:
    return value


def _fallback(value: Any) -> Any:
    raise _Fallback


def _exact(kind: type) -> _Convert:
    def convert(value: Any) -> Any:
        if type(value) is not kind:
            raise _Fallback
        return value

    return convert


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int:
        return float(value)
    raise _Fallback


def _enum(cls: type[enum.Enum]) -> _Convert:
    def convert(value: Any) -> Any:
        try:
            return cls(value)
        except ValueError:
            raise _Fallback from None

    return convert


def _literal(allowed: tuple[Any, ...]) -> _Convert:
    def convert(value: Any) -> Any:
        if value not in allowed:
            raise _Fallback
        return value

    return convert


class _Decoder:
    def __init__(self) -> None:
        self._models: dict[type[pydantic.BaseModel], _Convert] = {}

    def model(self, cls: type[pydantic.BaseModel]) -> _Convert:
        """The converter of one model class (built once, cached)."""
        known = self._models.get(cls)
        if known is not None:
            return known
        if not self._trusted(cls):
            return self._validating(cls)
        fields: dict[str, _Convert] = {}
        # Every field in declaration order (the order model_validate fills
        # __dict__ in), holding its default; dict.update keeps that order.
        template: dict[str, Any] = {}
        factories: list[tuple[str, Callable[[], Any]]] = []
        required: set[str] = set()
        for name, info in cls.model_fields.items():
            template[name] = None
            if info.default_factory is not None:
                factory = info.default_factory
                if info.default_factory_takes_validated_data:
                    return self._validating(cls)
                factories.append((name, typing.cast(Callable[[], Any], factory)))
            elif info.is_required():
                required.add(name)
            elif type(info.default) in _IMMUTABLE:
                template[name] = info.default
            else:
                return self._validating(cls)
        post_init = cls.__pydantic_post_init__ is not None
        if cls.__private_attributes__ or cls.model_config.get("extra") == "allow":
            return self._validating(cls)
        new = cls.__new__
        setattr_ = object.__setattr__

        def construct(value: Any) -> Any:
            if type(value) is not dict:
                raise _Fallback
            if not required.issubset(value):
                return cls.model_validate(value)
            # Filled in place (no intermediate dict: fewer allocations, fewer
            # garbage-collector passes over a large session).
            values = template.copy()
            try:
                for key, item in value.items():
                    values[key] = fields[key](item)
            except (_Fallback, KeyError):
                return cls.model_validate(value)
            for name, factory in factories:
                if name not in value:
                    values[name] = factory()
            instance = new(cls)
            setattr_(instance, "__dict__", values)
            setattr_(instance, "__pydantic_fields_set__", set(value))
            setattr_(instance, "__pydantic_extra__", None)
            setattr_(instance, "__pydantic_private__", None)
            if post_init:
                instance.model_post_init(None)
            return instance

        # Registered before its fields, so a model that contains itself resolves.
        self._models[cls] = construct
        for name, info in cls.model_fields.items():
            fields[name] = self.annotation(info.annotation)
        return construct

    def _validating(self, cls: type[pydantic.BaseModel]) -> _Convert:
        def validate(value: Any) -> Any:
            return cls.model_validate(value)

        self._models[cls] = validate
        return validate

    @staticmethod
    def _trusted(cls: type[pydantic.BaseModel]) -> bool:
        decorators = cls.__pydantic_decorators__
        if decorators.field_validators or decorators.validators or decorators.root_validators:
            return False
        if any(name not in _NO_OP_MODEL_VALIDATORS for name in decorators.model_validators):
            return False
        return not cls.__pydantic_custom_init__ or cls in _NO_OP_CUSTOM_INIT

    def annotation(self, annotation: Any) -> _Convert:
        """The converter of one field type; `_fallback` for the types it does not convert."""
        if annotation is Any or annotation is object:
            return _identity
        if annotation in (str, bool, int):
            return _exact(annotation)
        if annotation is float:
            return _float
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is typing.Union or origin is types.UnionType:
            rest = [arg for arg in args if arg is not type(None)]
            if len(rest) != 1:
                return _fallback
            inner = self.annotation(rest[0])

            def optional(value: Any) -> Any:
                return None if value is None else inner(value)

            return optional
        if origin is typing.Literal:
            return _literal(args)
        if origin in (list, set) and len(args) == 1:
            item = self.annotation(args[0])
            build = list if origin is list else set

            def sequence(value: Any) -> Any:
                if type(value) is not list:
                    raise _Fallback
                return build([item(element) for element in value])

            return sequence
        if origin is dict and len(args) == 2 and args[0] is str:
            member = self.annotation(args[1])

            def mapping(value: Any) -> Any:
                if type(value) is not dict:
                    raise _Fallback
                if member is _identity:
                    return dict(value)
                return {key: member(element) for key, element in value.items()}

            return mapping
        if isinstance(annotation, type):
            if issubclass(annotation, enum.Enum):
                return _enum(annotation)
            if issubclass(annotation, pydantic.BaseModel):
                return self.model(annotation)
        return _fallback


_decode: Final = _Decoder().model(Event)


def decode_event(payload: Any) -> Event:
    """The `Event` a stored payload (``Event.model_dump(mode="json")``) was dumped from."""
    return typing.cast(Event, _decode(payload))
