from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class File(_message.Message):
    __slots__ = ("name", "contents")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    contents: bytes
    def __init__(self, name: _Optional[str] = ..., contents: _Optional[bytes] = ...) -> None: ...

class Settings(_message.Message):
    __slots__ = ("version", "engine", "schema", "queries", "codegen")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    CODEGEN_FIELD_NUMBER: _ClassVar[int]
    version: str
    engine: str
    schema: _containers.RepeatedScalarFieldContainer[str]
    queries: _containers.RepeatedScalarFieldContainer[str]
    codegen: Codegen
    def __init__(self, version: _Optional[str] = ..., engine: _Optional[str] = ..., schema: _Optional[_Iterable[str]] = ..., queries: _Optional[_Iterable[str]] = ..., codegen: _Optional[_Union[Codegen, _Mapping]] = ...) -> None: ...

class Codegen(_message.Message):
    __slots__ = ("out", "plugin", "options", "env", "process", "wasm")
    class Process(_message.Message):
        __slots__ = ("cmd",)
        CMD_FIELD_NUMBER: _ClassVar[int]
        cmd: str
        def __init__(self, cmd: _Optional[str] = ...) -> None: ...
    class WASM(_message.Message):
        __slots__ = ("url", "sha256")
        URL_FIELD_NUMBER: _ClassVar[int]
        SHA256_FIELD_NUMBER: _ClassVar[int]
        url: str
        sha256: str
        def __init__(self, url: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...
    OUT_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ENV_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    WASM_FIELD_NUMBER: _ClassVar[int]
    out: str
    plugin: str
    options: bytes
    env: _containers.RepeatedScalarFieldContainer[str]
    process: Codegen.Process
    wasm: Codegen.WASM
    def __init__(self, out: _Optional[str] = ..., plugin: _Optional[str] = ..., options: _Optional[bytes] = ..., env: _Optional[_Iterable[str]] = ..., process: _Optional[_Union[Codegen.Process, _Mapping]] = ..., wasm: _Optional[_Union[Codegen.WASM, _Mapping]] = ...) -> None: ...

class Catalog(_message.Message):
    __slots__ = ("comment", "default_schema", "name", "schemas")
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    comment: str
    default_schema: str
    name: str
    schemas: _containers.RepeatedCompositeFieldContainer[Schema]
    def __init__(self, comment: _Optional[str] = ..., default_schema: _Optional[str] = ..., name: _Optional[str] = ..., schemas: _Optional[_Iterable[_Union[Schema, _Mapping]]] = ...) -> None: ...

class Schema(_message.Message):
    __slots__ = ("comment", "name", "tables", "enums", "composite_types")
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TABLES_FIELD_NUMBER: _ClassVar[int]
    ENUMS_FIELD_NUMBER: _ClassVar[int]
    COMPOSITE_TYPES_FIELD_NUMBER: _ClassVar[int]
    comment: str
    name: str
    tables: _containers.RepeatedCompositeFieldContainer[Table]
    enums: _containers.RepeatedCompositeFieldContainer[Enum]
    composite_types: _containers.RepeatedCompositeFieldContainer[CompositeType]
    def __init__(self, comment: _Optional[str] = ..., name: _Optional[str] = ..., tables: _Optional[_Iterable[_Union[Table, _Mapping]]] = ..., enums: _Optional[_Iterable[_Union[Enum, _Mapping]]] = ..., composite_types: _Optional[_Iterable[_Union[CompositeType, _Mapping]]] = ...) -> None: ...

class CompositeType(_message.Message):
    __slots__ = ("name", "comment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    comment: str
    def __init__(self, name: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class Enum(_message.Message):
    __slots__ = ("name", "vals", "comment")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    vals: _containers.RepeatedScalarFieldContainer[str]
    comment: str
    def __init__(self, name: _Optional[str] = ..., vals: _Optional[_Iterable[str]] = ..., comment: _Optional[str] = ...) -> None: ...

class Table(_message.Message):
    __slots__ = ("rel", "columns", "comment")
    REL_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    rel: Identifier
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    comment: str
    def __init__(self, rel: _Optional[_Union[Identifier, _Mapping]] = ..., columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., comment: _Optional[str] = ...) -> None: ...

class Identifier(_message.Message):
    __slots__ = ("catalog", "schema", "name")
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    catalog: str
    schema: str
    name: str
    def __init__(self, catalog: _Optional[str] = ..., schema: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Column(_message.Message):
    __slots__ = ("name", "not_null", "is_array", "comment", "length", "is_named_param", "is_func_call", "scope", "table", "table_alias", "type", "is_sqlc_slice", "embed_table", "original_name", "unsigned", "array_dims")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NOT_NULL_FIELD_NUMBER: _ClassVar[int]
    IS_ARRAY_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    IS_NAMED_PARAM_FIELD_NUMBER: _ClassVar[int]
    IS_FUNC_CALL_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    TABLE_ALIAS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    IS_SQLC_SLICE_FIELD_NUMBER: _ClassVar[int]
    EMBED_TABLE_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_NAME_FIELD_NUMBER: _ClassVar[int]
    UNSIGNED_FIELD_NUMBER: _ClassVar[int]
    ARRAY_DIMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    not_null: bool
    is_array: bool
    comment: str
    length: int
    is_named_param: bool
    is_func_call: bool
    scope: str
    table: Identifier
    table_alias: str
    type: Identifier
    is_sqlc_slice: bool
    embed_table: Identifier
    original_name: str
    unsigned: bool
    array_dims: int
    def __init__(self, name: _Optional[str] = ..., not_null: _Optional[bool] = ..., is_array: _Optional[bool] = ..., comment: _Optional[str] = ..., length: _Optional[int] = ..., is_named_param: _Optional[bool] = ..., is_func_call: _Optional[bool] = ..., scope: _Optional[str] = ..., table: _Optional[_Union[Identifier, _Mapping]] = ..., table_alias: _Optional[str] = ..., type: _Optional[_Union[Identifier, _Mapping]] = ..., is_sqlc_slice: _Optional[bool] = ..., embed_table: _Optional[_Union[Identifier, _Mapping]] = ..., original_name: _Optional[str] = ..., unsigned: _Optional[bool] = ..., array_dims: _Optional[int] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("text", "name", "cmd", "columns", "params", "comments", "filename", "insert_into_table")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CMD_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    COMMENTS_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    INSERT_INTO_TABLE_FIELD_NUMBER: _ClassVar[int]
    text: str
    name: str
    cmd: str
    columns: _containers.RepeatedCompositeFieldContainer[Column]
    params: _containers.RepeatedCompositeFieldContainer[Parameter]
    comments: _containers.RepeatedScalarFieldContainer[str]
    filename: str
    insert_into_table: Identifier
    def __init__(self, text: _Optional[str] = ..., name: _Optional[str] = ..., cmd: _Optional[str] = ..., columns: _Optional[_Iterable[_Union[Column, _Mapping]]] = ..., params: _Optional[_Iterable[_Union[Parameter, _Mapping]]] = ..., comments: _Optional[_Iterable[str]] = ..., filename: _Optional[str] = ..., insert_into_table: _Optional[_Union[Identifier, _Mapping]] = ...) -> None: ...

class Parameter(_message.Message):
    __slots__ = ("number", "column")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    number: int
    column: Column
    def __init__(self, number: _Optional[int] = ..., column: _Optional[_Union[Column, _Mapping]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("settings", "catalog", "queries", "sqlc_version", "plugin_options", "global_options")
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CATALOG_FIELD_NUMBER: _ClassVar[int]
    QUERIES_FIELD_NUMBER: _ClassVar[int]
    SQLC_VERSION_FIELD_NUMBER: _ClassVar[int]
    PLUGIN_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    settings: Settings
    catalog: Catalog
    queries: _containers.RepeatedCompositeFieldContainer[Query]
    sqlc_version: str
    plugin_options: bytes
    global_options: bytes
    def __init__(self, settings: _Optional[_Union[Settings, _Mapping]] = ..., catalog: _Optional[_Union[Catalog, _Mapping]] = ..., queries: _Optional[_Iterable[_Union[Query, _Mapping]]] = ..., sqlc_version: _Optional[str] = ..., plugin_options: _Optional[bytes] = ..., global_options: _Optional[bytes] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[File]
    def __init__(self, files: _Optional[_Iterable[_Union[File, _Mapping]]] = ...) -> None: ...
