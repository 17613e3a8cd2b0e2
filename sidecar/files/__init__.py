"""The pipeline's ports over JSON-lines files: the embedded, cluster-free mode."""
