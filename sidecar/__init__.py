"""Log anomaly detection sidecar for Elasticsearch / OpenSearch."""

__version__ = "0.1.0"
