"""HLS VOD and MP4 playback of library files (uploads, imports, recordings).

Pure parts (cut points, playlists) stay separate from the PyAV reading and from the
HTTP handlers, so a recording's fragmented MP4 goes through the same path as an upload.
"""
