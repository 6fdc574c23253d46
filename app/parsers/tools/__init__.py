"""Tool-call parsers, one module per output format."""
