"""Streams: the only package that talks to Kafka and Faust (engine, agents, exporter, simulator)."""
