"""Datasets for a trial: preparing Tiny ImageNet (directory or official zip) or the built-in digits as TFRecord shards,
checking a prepared dataset, and the tf.data input pipeline over its shards.

A prepared dataset is a directory of ``<split>-NNNNN-of-NNNNN.tfrecord`` shards holding the original JPEG bytes
(features ``image``, ``label``, ``name``) plus ``dataset.json`` (``DatasetInfo``), in a local directory or in
object storage. Each module holds one part: ``preparation`` (check a spec's dataset, say where it is prepared,
prepare it), ``shapes`` (the known sizes of Tiny ImageNet and the digits, before one is prepared), ``manifest``
(dataset.json and its checks), ``remote`` (a dataset in object storage), ``cache`` (a node's checked local copy of
one), ``sources`` and ``trees`` (reading raw datasets), ``shards`` and ``tfrecord`` (writing and reading records),
``download`` (the official archive), ``scratch`` (temporary folders a killed run leaves), ``progress``, and
``pipeline`` (tf.data).
Importing this package never imports TensorFlow.
"""
from trainer.data.manifest import FORMAT_VERSION, INFO_FILE, LABEL_RULE, DataError, DatasetInfo, load_info, verify
from trainer.data.preparation import check_dataset, check_prepared, prepare, resolve_dataset

__all__ = ["FORMAT_VERSION", "INFO_FILE", "LABEL_RULE", "DataError", "DatasetInfo", "check_dataset", "check_prepared",
           "load_info", "prepare", "resolve_dataset", "verify"]
