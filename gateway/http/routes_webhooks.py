from aiohttp import web

from gateway.domain.timestamps import rfc3339
from gateway.http.auth import api_key
from gateway.http.keys import WEBHOOKS
from gateway.http.paging import page_request, page_response
from gateway.http.schemas import EndpointBody, read_json
from gateway.http.views import endpoint_json, event_json

routes = web.RouteTableDef()


@routes.post("/v1/webhook-endpoints")
async def create_endpoint(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    body = EndpointBody.model_validate(await read_json(request))
    created = await request.app[WEBHOOKS].endpoints.create(
        body.url, body.event_types, body.description
    )
    return web.json_response(endpoint_json(created.record, created.secret), status=201)


@routes.get("/v1/webhook-endpoints")
async def list_endpoints(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    records = await request.app[WEBHOOKS].endpoints.list()
    return web.json_response({"data": [endpoint_json(r) for r in records]})


@routes.delete("/v1/webhook-endpoints/{endpoint_id}")
async def delete_endpoint(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    await request.app[WEBHOOKS].endpoints.delete(request.match_info["endpoint_id"])
    return web.Response(status=204)


@routes.post("/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
async def rotate_secret(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    secret, until = await request.app[WEBHOOKS].endpoints.rotate(
        request.match_info["endpoint_id"])
    return web.json_response({"secret": secret, "previous_secret_expires_at": rfc3339(until)})


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    await api_key(request, "events:read")
    cursor, limit = page_request(request, "evt_")
    records = await request.app[WEBHOOKS].events.page(request.query.get("type"), cursor, limit)
    return page_response([event_json(r) for r in records], limit)


@routes.get("/v1/events/{event_id}")
async def get_event(request: web.Request) -> web.Response:
    await api_key(request, "events:read")
    record = await request.app[WEBHOOKS].events.get(request.match_info["event_id"])
    return web.json_response(event_json(record))


@routes.post("/v1/events/{event_id}/redeliver")
async def redeliver_event(request: web.Request) -> web.Response:
    await api_key(request, "webhooks:manage")
    queued = await request.app[WEBHOOKS].events.redeliver(request.match_info["event_id"])
    return web.json_response({"queued": queued}, status=202)
