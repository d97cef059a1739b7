from opensdv.vehicle.broker.grpc.sdv_v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetDatapointsRequest(_message.Message):
    __slots__ = ("datapoints",)
    DATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    datapoints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, datapoints: _Optional[_Iterable[str]] = ...) -> None: ...

class GetDatapointsReply(_message.Message):
    __slots__ = ("datapoints",)
    class DatapointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Datapoint
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Datapoint, _Mapping]] = ...) -> None: ...
    DATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    datapoints: _containers.MessageMap[str, _types_pb2.Datapoint]
    def __init__(self, datapoints: _Optional[_Mapping[str, _types_pb2.Datapoint]] = ...) -> None: ...

class SetDatapointsRequest(_message.Message):
    __slots__ = ("datapoints",)
    class DatapointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Datapoint
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Datapoint, _Mapping]] = ...) -> None: ...
    DATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    datapoints: _containers.MessageMap[str, _types_pb2.Datapoint]
    def __init__(self, datapoints: _Optional[_Mapping[str, _types_pb2.Datapoint]] = ...) -> None: ...

class SetDatapointsReply(_message.Message):
    __slots__ = ("errors",)
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.DatapointError
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.DatapointError, str]] = ...) -> None: ...
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.ScalarMap[str, _types_pb2.DatapointError]
    def __init__(self, errors: _Optional[_Mapping[str, _types_pb2.DatapointError]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("query",)
    QUERY_FIELD_NUMBER: _ClassVar[int]
    query: str
    def __init__(self, query: _Optional[str] = ...) -> None: ...

class SubscribeReply(_message.Message):
    __slots__ = ("fields",)
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Datapoint
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Datapoint, _Mapping]] = ...) -> None: ...
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: _containers.MessageMap[str, _types_pb2.Datapoint]
    def __init__(self, fields: _Optional[_Mapping[str, _types_pb2.Datapoint]] = ...) -> None: ...

class GetMetadataRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetMetadataReply(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: _containers.RepeatedCompositeFieldContainer[_types_pb2.Metadata]
    def __init__(self, list: _Optional[_Iterable[_Union[_types_pb2.Metadata, _Mapping]]] = ...) -> None: ...
