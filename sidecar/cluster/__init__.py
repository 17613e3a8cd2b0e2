"""The pipeline's ports over OpenSearch (opensearch-py). Never imports torch."""
