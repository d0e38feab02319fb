"""Reading an uploaded file: the one place that enforces the 20 MB limit per file, recognises the type by
content and names the field in every refusal. (The dispatcher closes uploaded files after each request.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.datastructures import UploadFile

from .. import media
from ..api import MAX_UPLOAD, TOO_LARGE_UPLOAD
from ..endpoints import Call
from ..envelope import ApiError, bad_param


async def read_upload(call: Call, names: tuple[str, ...], allowed: tuple[str, ...],
                      sniff: Callable[[bytes], media.Kind | None] = media.sniff) -> tuple[bytes, media.Kind, str]:
    """The uploaded file's bytes, its kind (by content) and its sanitised name. 400 naming the field when
    it is missing, empty or not an allowed kind; 413 over 20 MB."""
    upload: UploadFile | None = next((call.params[n] for n in names if call.params.get(n) is not None), None)
    field = next((n for n in names if call.params.get(n) is not None), names[0])
    accepted = ", ".join(k.upper() for k in allowed)
    if upload is None:
        raise bad_param(names[0], f"required: a {accepted} file sent as multipart/form-data")
    if upload.size is not None and upload.size > MAX_UPLOAD:
        raise ApiError(413, f"{TOO_LARGE_UPLOAD} ({field} is {upload.size} bytes)")
    data = await upload.read()
    if len(data) > MAX_UPLOAD:
        raise ApiError(413, f"{TOO_LARGE_UPLOAD} ({field} is {len(data)} bytes)")
    if not data:
        raise bad_param(field, "the file is empty")
    kind = sniff(data)
    if kind is None or kind.name not in allowed:
        what = "an unrecognised format" if kind is None else kind.name.upper()
        raise bad_param(field, f"must be a {accepted} file; its content is {what} (types are recognised by "
                               "content, not by file name or Content-Type)")
    return data, kind, media.safe_name(upload.filename, kind)


async def in_thread(field: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run Pillow work off the event loop; a MediaError becomes a 400 naming `field`."""
    try:
        return await asyncio.to_thread(fn, *args)
    except media.MediaError as exc:
        raise bad_param(field, str(exc)) from None
