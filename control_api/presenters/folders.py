"""How a folder is shown, with the count of media in it."""

from __future__ import annotations

from control_api.schemas.folders import FolderOut
from control_api.store.folders import FolderView


def folder_out(view: FolderView) -> FolderOut:
    row = view.row
    return FolderOut(
        folder_id=row.id,
        name=row.name,
        parent_id=row.parent_id,
        media_count=view.media_count,
        created_at=row.created_at,
    )
