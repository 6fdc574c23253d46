"""Per-choice output parsers: model text in, content / reasoning / tool-call deltas out."""
