"""Pure media formats and codecs: the frame model, FLV tag bodies, H.264/H.265/AV1/VP9/AAC/Opus
configuration parsing. No asyncio, sockets or clocks here; malformed peer bytes raise only
``errors.MediaFormatError``.
"""
