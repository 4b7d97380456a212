"""Health on the public listener; readiness and metrics on the operations listener only
(`[server] metrics_listen`): they show logins, signups and chain progress as they happen."""

from aiohttp import web

from gateway.http.keys import OPS, PREFIX
from gateway.http.openapi import document

routes = web.RouteTableDef()  # public
ops_routes = web.RouteTableDef()  # the operations listener


@routes.get("/healthz")
@ops_routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@ops_routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ready, detail = await request.app[OPS].readiness()
    return web.json_response(
        {"status": "ready" if ready else "not ready", **detail}, status=200 if ready else 503
    )


@routes.get("/v1/openapi.json")
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[PREFIX],
                                      request.app[OPS].vocabulary))


@ops_routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    render = request.app[OPS].metrics
    if render is None:
        raise web.HTTPNotFound()
    body, content_type = await render()
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = content_type
    return resp
