"""Recording: a bus reader per recorded session writes fragmented MP4 to disk; when the
session ends the control plane turns the files into media items of the library.
"""
