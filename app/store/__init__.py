"""State that outlives a request: one small store interface, with memory, SQLite and Redis backends."""
