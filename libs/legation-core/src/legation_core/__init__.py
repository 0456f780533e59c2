"""Legation's shared runtime, used by every service.

A message's life in a service: :class:`~legation_core.consumer.ConsumerLoop` decodes it with
:class:`~legation_core.codec.EventCodec`, hands it to the service's handler (plain domain
code), produces what the handler returns with
:class:`~legation_core.kafka.EventProducer`, and commits only then.
:class:`~legation_core.lifecycle.ServiceRuntime` wires that loop to config, metrics, health,
gRPC and SIGTERM.
"""
