"""Evaluator adapters: OpenSearch, the indexing handler, the gRPC API, KPI snapshots."""
