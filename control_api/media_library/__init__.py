"""The media library: resumable tus uploads, URL imports and probing, on top of the store.

``MediaLibrary`` (library.py) composes the parts; the HTTP side lives in
``control_api.routes`` (uploads, media, folders, tags, tasks).
"""
