"""Reading an HTML form post: the portal's and the staff console's."""

from typing import Any

from aiohttp import web


async def read_form(request: web.Request) -> Any:
    """The posted form; a body that is not a readable form is a 400, never a crash."""
    if request.content_type not in ("application/x-www-form-urlencoded",
                                    "multipart/form-data"):
        raise web.HTTPBadRequest(text="send the form as application/x-www-form-urlencoded")
    try:
        form = await request.post()
    except (ValueError, AssertionError, KeyError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"the form could not be read ({type(exc).__name__})"
                                 ) from None
    if any(isinstance(v, str) and "\x00" in v for v in form.values()):
        raise web.HTTPBadRequest(text="NUL characters are not allowed in text")
    return form
