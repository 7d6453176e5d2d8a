"""The service around the core: message contracts, settings, the Kafka adapter and a local broker."""
