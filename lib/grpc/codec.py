"""Wire (de)serialisation of betterproto2 messages, through upb where that is exact.

betterproto2 encodes in Python: for `UserListPointResponse` with 50 map entries that is
~260 µs to serialise and ~130 µs to parse a 50-id request, more than the SQL behind it.
upb (protobuf's C implementation), built from the very descriptors betterproto2 generated,
does the same in ~7 µs and ~4 µs. For a "flat" message (scalar, repeated-scalar and
scalar-map fields, no oneof or enum) the two are interchangeable field by field, so the
codec goes through upb and hands the implementation an ordinary betterproto2 object; any
other message keeps betterproto2's own codec. Same bytes either way (tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor

Parse = Callable[[bytes], Any]
Serialize = Callable[[Any], bytes]


def _kind(field: FieldDescriptor) -> str | None:
    """'scalar', 'repeated' or 'map' for fields upb and betterproto2 agree on, else None."""
    if field.containing_oneof is not None or field.type == FieldDescriptor.TYPE_ENUM:
        return None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        entry = field.message_type
        if not entry.GetOptions().map_entry:
            return None
        value = entry.fields_by_name["value"]
        if value.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_ENUM):
            return None
        return "map"
    return "repeated" if field.is_repeated else "scalar"


def _flat_fields(descriptor: Descriptor) -> list[tuple[str, str]] | None:
    fields = []
    for field in descriptor.fields:
        kind = _kind(field)
        if kind is None:
            return None
        fields.append((field.name, kind))
    return fields


def codec(message_type: Any) -> tuple[Parse, Serialize]:
    """(parse, serialize) for one betterproto2 message class."""
    descriptor = getattr(message_type, "DESCRIPTOR", None)
    fields = _flat_fields(descriptor) if descriptor is not None else None
    if fields is None or not all(hasattr(message_type(), name) for name, _ in fields):
        return message_type.parse, bytes
    upb = message_factory.GetMessageClass(descriptor)
    convert = {"scalar": lambda v: v, "repeated": list, "map": dict}
    converters = [(name, convert[kind]) for name, kind in fields]
    names = [name for name, _ in fields]

    def parse(data: bytes) -> Any:
        message = upb.FromString(data)
        return message_type(**{name: conv(getattr(message, name)) for name, conv in converters})

    def serialize(message: Any) -> bytes:
        result: bytes = upb(**{name: getattr(message, name) for name in names}).SerializeToString()
        return result

    return parse, serialize
