"""The Kafka adapter: the only package of streamal that imports kafka-python.

It stays thin: client factories with streamal's settings (manual commits,
``acks=all``, Kafka's default murmur2 partitioner, tuned fetches), topic
creation with co-partitioning, and the plain values of
:mod:`streamal.service.records`, so that nothing else needs kafka-python types. Every error
it raises is a :class:`~streamal.service.errors.KafkaAdapterError` carrying the
topic, partition and offset concerned where known.

One job per module: :mod:`.configuration` (client settings, connecting),
:mod:`.consumer`, :mod:`.producer` and :mod:`.admin` (topics and layout).
"""

from streamal.service.kafka.admin import (
    broker_answers,
    check_copartitioning,
    cluster_id,
    ensure_topics,
    partition_counts,
)
from streamal.service.kafka.configuration import consumer_config, producer_config, topic_names
from streamal.service.kafka.consumer import KafkaSource, group_consumer, reader
from streamal.service.kafka.producer import KafkaSink, producer
from streamal.service.partitioning import partition_for_key  # what the producer's murmur2 gives
from streamal.service.records import Delivered, Record

__all__ = [
    "Delivered",
    "KafkaSink",
    "KafkaSource",
    "Record",
    "broker_answers",
    "check_copartitioning",
    "cluster_id",
    "consumer_config",
    "ensure_topics",
    "group_consumer",
    "partition_counts",
    "partition_for_key",
    "producer",
    "producer_config",
    "reader",
    "topic_names",
]
