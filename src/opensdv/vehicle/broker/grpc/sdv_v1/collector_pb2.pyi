from opensdv.vehicle.broker.grpc.sdv_v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpdateDatapointsRequest(_message.Message):
    __slots__ = ("datapoints",)
    class DatapointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: _types_pb2.Datapoint
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[_types_pb2.Datapoint, _Mapping]] = ...) -> None: ...
    DATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    datapoints: _containers.MessageMap[int, _types_pb2.Datapoint]
    def __init__(self, datapoints: _Optional[_Mapping[int, _types_pb2.Datapoint]] = ...) -> None: ...

class UpdateDatapointsReply(_message.Message):
    __slots__ = ("errors",)
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: _types_pb2.DatapointError
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[_types_pb2.DatapointError, str]] = ...) -> None: ...
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.ScalarMap[int, _types_pb2.DatapointError]
    def __init__(self, errors: _Optional[_Mapping[int, _types_pb2.DatapointError]] = ...) -> None: ...

class StreamDatapointsRequest(_message.Message):
    __slots__ = ("datapoints",)
    class DatapointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: _types_pb2.Datapoint
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[_types_pb2.Datapoint, _Mapping]] = ...) -> None: ...
    DATAPOINTS_FIELD_NUMBER: _ClassVar[int]
    datapoints: _containers.MessageMap[int, _types_pb2.Datapoint]
    def __init__(self, datapoints: _Optional[_Mapping[int, _types_pb2.Datapoint]] = ...) -> None: ...

class StreamDatapointsReply(_message.Message):
    __slots__ = ("errors",)
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: _types_pb2.DatapointError
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[_types_pb2.DatapointError, str]] = ...) -> None: ...
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.ScalarMap[int, _types_pb2.DatapointError]
    def __init__(self, errors: _Optional[_Mapping[int, _types_pb2.DatapointError]] = ...) -> None: ...

class RegisterDatapointsRequest(_message.Message):
    __slots__ = ("list",)
    LIST_FIELD_NUMBER: _ClassVar[int]
    list: _containers.RepeatedCompositeFieldContainer[RegistrationMetadata]
    def __init__(self, list: _Optional[_Iterable[_Union[RegistrationMetadata, _Mapping]]] = ...) -> None: ...

class RegistrationMetadata(_message.Message):
    __slots__ = ("name", "data_type", "description", "change_type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    data_type: _types_pb2.DataType
    description: str
    change_type: _types_pb2.ChangeType
    def __init__(self, name: _Optional[str] = ..., data_type: _Optional[_Union[_types_pb2.DataType, str]] = ..., description: _Optional[str] = ..., change_type: _Optional[_Union[_types_pb2.ChangeType, str]] = ...) -> None: ...

class RegisterDatapointsReply(_message.Message):
    __slots__ = ("results",)
    class ResultsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.ScalarMap[str, int]
    def __init__(self, results: _Optional[_Mapping[str, int]] = ...) -> None: ...
