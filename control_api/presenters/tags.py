"""How a tag is shown, with the count of media carrying it."""

from __future__ import annotations

from control_api.schemas.tags import TagOut
from control_api.store.tags import TagView


def tag_out(view: TagView) -> TagOut:
    return TagOut(tag_id=view.row.id, name=view.row.name, media_count=view.media_count)
