from aiohttp import web

from gateway.http.keys import SERVICES

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ready, detail = await request.app[SERVICES].readiness()
    return web.json_response(
        {"status": "ready" if ready else "not ready", **detail}, status=200 if ready else 503
    )
