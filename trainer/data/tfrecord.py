"""The shard record format: one ``tf.train.Example`` per image with features ``image`` (the original JPEG bytes),
``label`` (int64) and ``name`` (the file name), framed as TFRecord.

Writing needs TensorFlow; reading back what a manifest check needs (labels, one image) does not: the frames are
parsed here and the Example with protobuf, so a launch checks a prepared dataset without importing TensorFlow.
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path

_HEADER = struct.Struct("<QI")
_FOOTER = 4


def example(blob: bytes, label: int, name: str) -> bytes:
    """One serialized Example as the input pipeline parses it."""
    import tensorflow as tf

    feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[blob])),
               "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
               "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


@dataclass
class ShardScan:
    """What one read of a shard file shows: its sha256, how many examples it holds, their labels, and the first
    example's image bytes. ``problem`` says why the file is not a well-formed shard (None when it is)."""

    sha256: str
    examples: int = 0
    labels: set[int] = field(default_factory=set)
    first_image: bytes | None = None
    problem: str | None = None


def scan_shard(path: Path) -> ShardScan:
    """Read ``path`` once, hashing its bytes and parsing every record (a shard is held in memory: ~15 MB)."""
    blob = path.read_bytes()
    scan = ShardScan(sha256=hashlib.sha256(blob).hexdigest())
    from google.protobuf.message import DecodeError

    view, pos, message = memoryview(blob), 0, _example_class()
    while pos < len(blob):
        if pos + _HEADER.size > len(blob):
            scan.problem = "ends inside a record header"
            break
        length = _HEADER.unpack_from(view, pos)[0]
        start, pos = pos + _HEADER.size, pos + _HEADER.size + length + _FOOTER
        if pos > len(blob):
            scan.problem = f"record {scan.examples + 1} is cut short"
            break
        label = image = None
        try:
            for entry in message.FromString(view[start:start + length]).features.feature:
                if entry.key == "label":
                    label = entry.value.int64_list.value[0]
                elif entry.key == "image" and scan.first_image is None:
                    image = entry.value.bytes_list.value[0]
        except (DecodeError, IndexError):
            label = None
        if label is None:
            scan.problem = f"record {scan.examples + 1} is not an Example with a label"
            break
        scan.examples += 1
        scan.labels.add(label)
        if scan.first_image is None:
            scan.first_image = image
    return scan


_EXAMPLE = None


def _example_class():
    """``tf.train.Example``'s wire format declared with protobuf alone (the feature map as its repeated entries,
    which is the same on the wire); only the fields read here are declared."""
    global _EXAMPLE
    if _EXAMPLE is not None:
        return _EXAMPLE
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="gnsweep_shard_example.proto", package="gnsweep_shard",
                                             syntax="proto3")
    opt, rep = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL, descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
    T = descriptor_pb2.FieldDescriptorProto

    def message(name: str, *fields: tuple[str, int, int, int, str | None]) -> None:
        m = fdp.message_type.add(name=name)
        for fname, number, label, ftype, type_name in fields:
            f = m.field.add(name=fname, number=number, label=label, type=ftype)
            if type_name:
                f.type_name = f".gnsweep_shard.{type_name}"

    message("BytesList", ("value", 1, rep, T.TYPE_BYTES, None))
    message("Int64List", ("value", 1, rep, T.TYPE_INT64, None))
    message("Feature", ("bytes_list", 1, opt, T.TYPE_MESSAGE, "BytesList"),
            ("int64_list", 3, opt, T.TYPE_MESSAGE, "Int64List"))
    message("FeatureEntry", ("key", 1, opt, T.TYPE_STRING, None), ("value", 2, opt, T.TYPE_MESSAGE, "Feature"))
    message("Features", ("feature", 1, rep, T.TYPE_MESSAGE, "FeatureEntry"))
    message("Example", ("features", 1, opt, T.TYPE_MESSAGE, "Features"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    _EXAMPLE = message_factory.GetMessageClass(pool.FindMessageTypeByName("gnsweep_shard.Example"))
    return _EXAMPLE
