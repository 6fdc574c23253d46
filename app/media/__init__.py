"""Media for generation requests: one safe fetch path, and decoding of images, audio and video.

Imports nothing of ours: it raises ``MediaError`` and serving turns it into an HTTP error naming the
content part. Everything here blocks (network, ffmpeg, PIL): call it off the event loop.
"""
