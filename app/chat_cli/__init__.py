"""``hfserve chat``: a terminal client for hfserve or any OpenAI-compatible server. A client only: it
speaks HTTP and imports nothing of the server (an import-linter contract keeps it so)."""
