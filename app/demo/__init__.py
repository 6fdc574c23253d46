"""The bundled tiny demo model that ``hfserve demo`` (and ``make run``) builds offline."""
