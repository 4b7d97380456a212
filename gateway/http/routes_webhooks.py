from aiohttp import web

from gateway.http.auth import api_key
from gateway.http.keys import SERVICES
from gateway.http.schemas import EndpointBody, read_json
from gateway.http.views import endpoint_json

routes = web.RouteTableDef()


@routes.post("/v1/webhook-endpoints")
async def create_endpoint(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    body = EndpointBody.model_validate(await read_json(request))
    created = await request.app[SERVICES].endpoints.create(
        body.url, body.event_types, body.description
    )
    return web.json_response(endpoint_json(created.record, created.secret), status=201)


@routes.get("/v1/webhook-endpoints")
async def list_endpoints(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    records = await request.app[SERVICES].endpoints.list()
    return web.json_response({"data": [endpoint_json(r) for r in records]})


@routes.delete("/v1/webhook-endpoints/{endpoint_id}")
async def delete_endpoint(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    await request.app[SERVICES].endpoints.delete(request.match_info["endpoint_id"])
    return web.Response(status=204)
